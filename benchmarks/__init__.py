"""Benchmarks: the real server under load, on 127.0.0.1, reporting numbers (never pass/fail).

Run one from the repository root, e.g. ``.venv/bin/python -m benchmarks.load``.
``harness`` starts servers and connects agents; ``traffic`` is the load generator they share.
"""
