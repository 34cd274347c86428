"""Benchmarks of SPEC section 9: run ``python -m benchmarks.run`` from the repository root."""
