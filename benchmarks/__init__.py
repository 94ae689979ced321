"""Side-by-side speed measurements, run from the repository root as `python -m benchmarks.<name>`."""
