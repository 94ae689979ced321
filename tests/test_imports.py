"""Imports follow the layers, bottom to top: utils/ <- datasets/, models/ <- config <- engine <- the
entry points (main.py, main_KD.py, get_flops.py), tools/, benchmarks/ <- tests/. No entry point
imports another, tools/ and benchmarks/ import the libraries, config and engine (never an entry
point, never each other, never tests/), and no library holds a `__main__` block (its command line
belongs in tools/). Any module that breaks a rule fails here, naming the module and the import."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARIES = {'utils', 'datasets', 'models'}
COMMANDS = {'main', 'main_KD', 'get_flops'}  # the seed's entry points, top-level files
# What each layer may import from the project besides itself.
ALLOWED = {
    'utils': set(),
    'datasets': {'utils'},
    'models': {'utils'},
    'config': {'utils'},
    'engine': LIBRARIES | {'config'},
    **{command: LIBRARIES | {'config', 'engine'} for command in COMMANDS},
    'tools': LIBRARIES | {'config', 'engine'},
    'benchmarks': LIBRARIES | {'config', 'engine'},
    'tests': None,  # anything
}
TOP_LEVEL = {os.path.splitext(n)[0] for n in os.listdir(ROOT) if n.endswith('.py')} | {
    n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, '__init__.py'))}


def project_imports(path, layer):
    """(line, top-level project name) of every import in the file, at any depth (lazy ones too)."""
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [layer] if node.level else [node.module or '']
        else:
            continue
        for name in names:
            top = name.split('.')[0]
            if top in TOP_LEVEL:
                yield node.lineno, top


def violations(path, layer):
    """'file:line imports X' for each import of `path` (in `layer`) that its layer does not allow."""
    allowed = ALLOWED[layer]
    if allowed is None:
        return []
    return [f'{os.path.relpath(path, ROOT)}:{line} imports {top}' for line, top in project_imports(path, layer)
            if top != layer and top not in allowed]


def has_main_block(path):
    """True when the file has a top-level `if __name__ == '__main__':`."""
    for node in ast.parse(open(path).read(), path).body:
        if isinstance(node, ast.If) and '__main__' in ast.dump(node.test):
            return True
    return False


def project_modules():
    """(layer, path) of every Python file of the project: top-level files, and packages' files."""
    for name in sorted(TOP_LEVEL):
        if os.path.isfile(os.path.join(ROOT, name + '.py')):
            yield name, os.path.join(ROOT, name + '.py')
        else:
            for folder, _, files in sorted(os.walk(os.path.join(ROOT, name))):
                for file in sorted(files):
                    if file.endswith('.py'):
                        yield name, os.path.join(folder, file)


MODULES = list(project_modules())


def test_every_top_level_module_has_a_layer():
    """A new top-level file or package is placed in ALLOWED before it can import or be imported."""
    assert sorted(TOP_LEVEL - set(ALLOWED)) == []


@pytest.mark.parametrize('layer, path', MODULES, ids=[os.path.relpath(p, ROOT) for _, p in MODULES])
def test_imports_follow_the_layers(layer, path):
    wrong = violations(path, layer)
    assert not wrong, ('an import against the layers (move the shared code into a library, engine or '
                       'config; a command line goes into tools/): ' + '; '.join(wrong))


@pytest.mark.parametrize('path', [p for layer, p in MODULES if layer in LIBRARIES],
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_libraries_have_no_command_line(path):
    assert not has_main_block(path), f'{os.path.relpath(path, ROOT)} has a __main__ block: move it into tools/'


@pytest.mark.parametrize('layer, source, culprit', [
    ('datasets', 'def main():\n    from config import load_config_file\n', 'config'),
    ('models', 'from datasets import decode\n', 'datasets'),
    ('config', 'import engine\n', 'engine'),
    ('main_KD', 'from main import parse_option\n', 'main'),
    ('engine', 'import get_flops\n', 'get_flops'),
    ('tools', 'from get_flops import count\n', 'get_flops'),
    ('tools', 'import benchmarks.bench_model\n', 'benchmarks'),
    ('benchmarks', 'from tests.helpers.videos import make_dataset\n', 'tests'),
    ('benchmarks', 'from tools.export import main\n', 'tools'),
    ('utils', 'from tests import conftest\n', 'tests'),
])
def test_the_check_sees_an_import_against_the_layers(tmp_path, layer, source, culprit):
    bad = tmp_path / 'bad.py'
    bad.write_text(source + 'from utils.errors import UserError\n')
    found = violations(str(bad), layer)
    assert len(found) == 1 and found[0].endswith(f'imports {culprit}'), found
    assert violations(str(bad), 'tests') == []  # tests may import anything


def test_the_check_sees_a_main_block(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('def main():\n    pass\n\n\nif __name__ == "__main__":\n    main()\n')
    assert has_main_block(str(bad))
    bad.write_text('NAMES = ("__main__", "engine")\n')
    assert not has_main_block(str(bad))
