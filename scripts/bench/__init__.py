"""Measure speed and footprint and write docs/BENCHMARKS.md (``make bench``)."""
