"""Benchmarks (``make bench``). Results are recorded in docs/benchmarks.md."""
