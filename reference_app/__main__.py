"""``python -m reference_app``: the same as the ``cobrowse-server`` console script."""

from reference_app.cli import main

main()
