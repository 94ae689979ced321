"""Command-line tools, `python -m tools.<name>` from the repository root: each is a thin command line
(arguments, printing, exit status) over library functions.

They import the libraries (utils, datasets, models), config and engine; never an entry point, a
benchmark, a test or each other, and nothing imports them (tests/test_imports.py). See docs/development.md.
"""
