"""Imports go only downward: utils/ (bottom) <- datasets/, models/ <- config, engine <- entry points
(main.py, main_KD.py, get_flops.py, visualize.py, ...) <- tools/, benchmarks/. A library module that
imports a layer above it (or a sibling library) fails here, naming the module and the import."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What each library package may import from the project (besides itself).
ALLOWED = {'utils': set(), 'datasets': {'utils'}, 'models': {'utils'}}
TOP_LEVEL = {os.path.splitext(n)[0] for n in os.listdir(ROOT) if n.endswith('.py')} | {
    n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, '__init__.py'))}


def project_imports(path, package):
    """(line, top-level project name) of every import in the file, at any depth (lazy ones too)."""
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [node.module or '']
        else:
            continue
        for name in names:
            top = name.split('.')[0]
            if top in TOP_LEVEL:
                yield node.lineno, top


def library_modules():
    for package in ALLOWED:
        for name in sorted(os.listdir(os.path.join(ROOT, package))):
            if name.endswith('.py'):
                yield package, os.path.join(package, name)


@pytest.mark.parametrize('package, module', list(library_modules()), ids=lambda v: v if '/' in v else '')
def test_library_modules_import_only_downward(package, module):
    upward = [f'{module}:{line} imports {top}' for line, top in project_imports(os.path.join(ROOT, module), package)
              if top != package and top not in ALLOWED[package]]
    assert not upward, 'a library imports upward (move the code, or its command line into tools/): ' + '; '.join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def main():\n    from config import load_config_file\n')
    assert list(project_imports(str(bad), 'datasets')) == [(2, 'config')]
