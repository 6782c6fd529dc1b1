"""Benchmark scripts (`make bench`); their results are in results/.

Each runs from the repository root as a module (`python -m benchmarks.bench_pipeline`; most
take `--quick` for a smoke run), and imports `benchmarks`, `tests.support` and `modelops_serving`
as installed or found there: none edits `sys.path`.
"""
