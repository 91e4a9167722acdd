"""Measurements of the suite itself. Run one with `python -m benchmarks NAME` (see __main__)."""
