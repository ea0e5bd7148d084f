"""Benchmark cases, one module per area; see tools/bench.py."""
