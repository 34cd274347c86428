"""Rewriters for what the agent is served: stylesheets (``css``, with ``charset``) and snapshots."""
