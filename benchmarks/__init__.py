"""Benchmarks: each ``bench_<name>.py`` exposes ``main(argv)``; ``python -m benchmarks.run_all`` runs them."""
