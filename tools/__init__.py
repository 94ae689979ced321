"""Command-line tools above the libraries: `python -m tools.<name>` from the repository root.

They may import anything (config, models, datasets, utils, engine, the entry points); nothing in the
libraries imports them. See README.md, "Layout".
"""
