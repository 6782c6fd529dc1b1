"""Benchmark scripts (`make bench`); their results are in results/."""
