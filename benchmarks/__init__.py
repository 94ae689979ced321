"""Side-by-side speed measurements, run from the repository root as `python -m benchmarks.<name>`.
They import the libraries, config and engine, never tests/ (tests/test_imports.py)."""
