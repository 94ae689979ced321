"""Docs that cannot drift: every shell command in README.md, INSTALL.md, DATA.md and docs/*.md runs.

Commands are read from the documents' ```bash blocks (a page added to docs/ is picked up by the
glob). Each line is one of:
- unmarked: run as written, in this process (`run_inline`), in a scratch copy of the repository
  whose paths the SUBSTITUTIONS table below fills with tiny data; it must exit 0, or the status its
  comment gives (`# exit status 1`);
- marked `# needs: ...` (a GPU, a real dataset or checkpoint, minutes of measurement), on its line
  or alone on a line above it in its block: its `--help` runs, the repository files it names exist, and its
  config loads with its overrides (a script: `bash -n`, and the config of its torchrun line);
- marked `# runs in: FILE`: another test or CI runs it; FILE must hold the command, and it is
  checked like a `needs:` command;
- not the project's (pip, venv, pytest): only the listed kinds are allowed.
Commands must not hide in unlabelled blocks: a ``` block without a language fails here.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests.helpers.runs import ROOT, run_inline

DOCUMENTS = ['README.md', 'INSTALL.md', 'DATA.md',
             *sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))]

# What the scratch repository holds at the paths the documents name (everything else there is the
# repository's own: configs/, labels/, scripts/, the shipped data/<dataset>/ lists, linked).
SUBSTITUTIONS = {
    'data/demo': 'the demo data at 2 training and 1 validation clips per class (tools.make_demo_data, '
                 'demo.sh\'s size, frames and shake)',
    'output/demo/demo/<teacher|student|distilled>/<run>/ckpt_epoch_<last>.pth':
        'one epoch of configs/demo/student.yaml on that data (batch 4), copied into the run folder '
        'and under the checkpoint name each demo config produces',
    'data/ucf50_official, my_videos': 'two class folders of empty .avi files named with UCF groups 1-25',
}
# The README's two commands, run elsewhere: the demo shrunken by tests/test_demo.py, the suite by CI.
ELSEWHERE = {'bash scripts/demo.sh': 'tests/test_demo.py', 'bash scripts/setup.sh': '.ci/run',
             '.venv/bin/python -m pytest -q -n 2': '.ci/run'}
# Commands that are not the project's, and what the docs test checks of them.
OTHER = (r'pip install .*', r'source \.venv/bin/activate', r'python3? -m venv \.venv',
         r'(\.venv/bin/)?python3? -m pytest( .*)?')
LAUNCHERS = ('python', 'python3', '.venv/bin/python', 'torchrun')


def blocks(text):
    """(language, first line number, lines) of every fenced block."""
    found, lines, i = [], text.split('\n'), 0
    while i < len(lines):
        fence = re.match(r'\s*```(\w*)', lines[i])
        if fence:
            start, body = i + 1, []
            i += 1
            while not lines[i].strip().startswith('```'):
                body.append(lines[i].strip())
                i += 1
            found.append((fence.group(1), start + 1, body))
        i += 1
    return found


def split_comment(line):
    """(command, comment) of a shell line: the comment starts at ' #' outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if char in '"\'' and quote in (None, char):
            quote = None if quote else char
        elif char == '#' and quote is None and (i == 0 or line[i - 1] == ' '):
            return line[:i].strip(), line[i + 1:].strip()
    return line.strip(), ''


def commands(path, text=None):
    """(where, command text, mark) for each command of a document's bash blocks; mark is
    ('needs', what), ('runs in', file), ('exit', status) or None (ELSEWHERE gives a mark to the
    README's own two commands)."""
    found = []
    text = open(os.path.join(ROOT, path)).read() if text is None else text
    for lang, first, body in blocks(text):
        if lang not in ('bash', 'sh'):
            continue
        block_mark, pending, start = None, '', None
        for n, line in enumerate(body, first):
            command, comment = split_comment(line)
            mark = re.search(r'(needs|runs in):\s*(.+)', comment)
            if not command:
                if mark:  # a mark alone on its line: for the commands after it in the block
                    block_mark = (mark.group(1), mark.group(2))
                continue
            start = start or n
            pending += ' ' + command.rstrip('\\')
            if command.endswith('\\'):
                continue
            status = re.match(r'exit status (\d+)', comment)
            line_mark = (mark.group(1), mark.group(2)) if mark else None
            exit_mark = ('exit', int(status.group(1))) if status else None
            for part in pending.split('&&'):
                part = ' '.join(part.split())
                elsewhere = ('runs in', ELSEWHERE[part]) if part in ELSEWHERE else None
                found.append((f'{path}:{start}', part, line_mark or block_mark or exit_mark or elsewhere))
            pending, start = '', None
    return found


def program(command):
    """(kind, name, args): ('py', 'main.py' or 'tools.predict', args), ('sh', script, args) or
    ('other', None, None)."""
    tokens = []
    for token in shlex.split(command):
        if token in ('>', '>>', '2>&1', '|', ';', '<') or token.startswith(('>', '2>')):
            break  # redirections and pipes are the shell's
        if token != '...':
            tokens.append(token)
    for i, token in enumerate(tokens):
        rest = tokens[i + 1:]
        if token == 'bash' and rest and rest[0].endswith('.sh'):
            return 'sh', rest[0], rest[1:]
        if token == 'torchrun':
            j = next(k for k, t in enumerate(rest) if t.endswith('.py'))
            return 'py', rest[j], rest[j + 1:]
        if token in LAUNCHERS and rest[:1] == ['-m'] and rest[1].split('.')[0] in ('tools', 'benchmarks'):
            return 'py', rest[1], rest[2:]
        if token in LAUNCHERS and rest and rest[0].endswith('.py'):
            return 'py', rest[0], rest[1:]
    return 'other', None, None


def config_of(args):
    """(--cfg file, overrides) of a command line: --opts pairs and trailing KEY VALUE pairs."""
    from utils.cli import split_trailing_overrides

    if '--cfg' not in args:
        return None, []
    cfg = args[args.index('--cfg') + 1]
    opts = []
    if '--opts' in args:
        i = args.index('--opts') + 1
        while i < len(args) and not args[i].startswith('--'):
            opts.append(args[i])
            i += 1
    pairs = split_trailing_overrides(args)[1]  # tools.sweep's grid KEY V1,V2: checked at its first value
    return cfg, opts + [v.split(',')[0] for v in pairs]


ALL = [c for doc in DOCUMENTS for c in commands(doc)]


def test_the_parser_reads_blocks_marks_and_continuations():
    text = ('```bash\n# needs: gpus\ntorchrun --nproc_per_node 2 main.py --cfg a.yaml \\\n    --opts X.Y 1\n'
            'python -m tools.plot a --out b.png   # exit status 1\n```\n```text\npython nothing.py\n```\n'
            '```bash\npython get_flops.py --cfg c.yaml TEST.NUM_CLIP 4   # needs: minutes\n'
            'bash scripts/setup.sh && python -m pytest -q   # runs in: .ci/run\n```\n')
    found = commands('case.md', text)
    assert [(c, m) for _, c, m in found] == [
        ('torchrun --nproc_per_node 2 main.py --cfg a.yaml --opts X.Y 1', ('needs', 'gpus')),
        ('python -m tools.plot a --out b.png', ('needs', 'gpus')),
        ('python get_flops.py --cfg c.yaml TEST.NUM_CLIP 4', ('needs', 'minutes')),
        ('bash scripts/setup.sh', ('runs in', '.ci/run')), ('python -m pytest -q', ('runs in', '.ci/run'))]
    assert program(found[0][1]) == ('py', 'main.py', ['--cfg', 'a.yaml', '--opts', 'X.Y', '1'])
    assert config_of(program(found[2][1])[2]) == ('c.yaml', ['TEST.NUM_CLIP', '4'])
    assert split_comment('srun x "$head:29500" # c') == ('srun x "$head:29500"', 'c')


@pytest.mark.parametrize('doc', DOCUMENTS)
def test_every_block_has_a_language(doc):
    text = open(os.path.join(ROOT, doc)).read()
    fences = re.findall(r'^\s*```(\w*)', text, re.M)
    assert len(fences) % 2 == 0, f'{doc}: an unclosed ``` block'
    unlabelled = [i for i, lang in enumerate(fences[0::2]) if not lang]
    assert not unlabelled, f'{doc}: ``` blocks need a language (bash for commands, text for listings)'


def test_the_documents_have_commands_and_the_readme_links_every_page():
    assert len(ALL) > 40
    readme = open(os.path.join(ROOT, 'README.md')).read()
    pages = [d for d in DOCUMENTS if d.startswith('docs/')] + ['INSTALL.md', 'DATA.md']
    assert [p for p in pages if f']({p})' not in readme] == []
    assert len(readme.splitlines()) <= 150
    for doc in DOCUMENTS:  # every relative link points at a file of the repository
        text = open(os.path.join(ROOT, doc)).read()
        for target in re.findall(r'\]\(([^)#:]+)(?:#[^)]*)?\)', text):
            assert os.path.exists(os.path.join(ROOT, os.path.dirname(doc), target)), f'{doc}: link {target}'


_helped = {}


def _check_without_running(where, command, mark, monkeypatch, capsys):
    """--help, the repository files named, the config with its overrides (a script: bash -n and
    its torchrun line's config)."""
    from config import load_config_file

    kind, name, args = program(command)
    if kind == 'other':
        assert mark or any(re.fullmatch(p, command) for p in OTHER), f'{where}: `{command}` is not a known command'
        return
    for token in args:
        if token.startswith(('configs/', 'labels/', 'scripts/')):
            assert os.path.exists(os.path.join(ROOT, token)), f'{where}: {token} does not exist'
    if kind == 'sh':
        script = os.path.join(ROOT, name)
        assert os.path.isfile(script), f'{where}: {name} does not exist'
        assert subprocess.run(['bash', '-n', script]).returncode == 0, f'{where}: {name} is not valid bash'
        for line in open(script).read().replace('\\\n', ' ').splitlines():
            if 'torchrun' in line and '--cfg' in line:
                cfg, opts = config_of(program(line.replace('"$@"', ' '.join(args)))[2])
                pairs = [(k, v) for k, v in zip(opts[0::2], opts[1::2]) if '$' not in v]  # the script's variables
                load_config_file(os.path.join(ROOT, cfg), [x for pair in pairs for x in pair])
        return
    if name not in _helped:
        _helped[name] = run_inline(name, ['--help'], monkeypatch)
        capsys.readouterr()
    assert _helped[name] == 0, f'{where}: `{name} --help` exited {_helped[name]}'
    cfg, opts = config_of(args)
    if cfg:
        load_config_file(os.path.join(ROOT, cfg), opts)


@pytest.mark.parametrize('doc', DOCUMENTS)
def test_marked_commands_help_and_config(doc, monkeypatch, capsys):
    """Commands that need a GPU, a dataset or minutes, or that another test runs: --help and config."""
    for where, command, mark in commands(doc):
        if mark and mark[0] == 'runs in':
            held = open(os.path.join(ROOT, mark[1].split()[0])).read()
            kind, name, args = program(command)
            cfg, _ = config_of(args or [])
            for piece in (name or command, cfg):
                assert piece is None or piece in held, f'{where}: {mark[1]} does not run `{command}`'
        if mark and mark[0] in ('needs', 'runs in') or program(command)[0] == 'other':
            _check_without_running(where, command, mark, monkeypatch, capsys)


@pytest.fixture(scope='module')
def scratch(tmp_path_factory):
    """A scratch repository: the repository's configs, labels, scripts and shipped lists, and the
    SUBSTITUTIONS at the documented paths."""
    from config import load_config_file, output_dir
    from tests.helpers.runs import logging_restored

    root = tmp_path_factory.mktemp('repo')
    for name in ('configs', 'labels', 'scripts'):
        os.symlink(os.path.join(ROOT, name), root / name)
    (root / 'data').mkdir()
    for name in os.listdir(os.path.join(ROOT, 'data')):
        if name != 'demo':
            os.symlink(os.path.join(ROOT, 'data', name), root / 'data' / name)
    with pytest.MonkeyPatch.context() as mp, logging_restored():
        mp.chdir(root)
        assert run_inline('tools.make_demo_data', ['--out', 'data/demo', '--clips-per-class', '2', '--val-per-class',
                                                   '1', '--size', '40', '--frames', '16', '--shake', '10'], mp) == 0
        assert run_inline('main.py', ['--cfg', 'configs/demo/student.yaml', '--output', 'trained', 'TRAIN.EPOCHS', '1',
                                      'DATA.BATCH_SIZE', '4', 'DATA.NUM_WORKERS', '0', 'TEST.NUM_CLIP', '1'], mp) == 0
    trained = glob.glob(str(root / 'trained' / '*' / '*' / '*'))[0]
    for name in ('teacher', 'student', 'student_kd'):
        config = load_config_file(os.path.join(ROOT, 'configs', 'demo', f'{name}.yaml'), ['OUTPUT', 'output/demo'])
        run = root / output_dir(config)
        shutil.copytree(trained, run)
        os.rename(run / 'ckpt_epoch_0.pth', run / f'ckpt_epoch_{config.TRAIN.EPOCHS - 1}.pth')
    for tree in ('data/ucf50_official', 'my_videos'):
        for cls in ('Basketball', 'Biking'):
            os.makedirs(root / tree / cls)
            for group in range(1, 26):
                open(root / tree / cls / f'v_{cls}_g{group:02d}_c01.avi', 'w').close()
    return root


@pytest.mark.slow
def test_unmarked_commands_run_as_documented(scratch, monkeypatch, capsys):
    """Each unmarked command, in document order, in the scratch repository; its exit status is 0 or
    the one its comment gives."""
    monkeypatch.chdir(scratch)
    failures, done = [], set()
    readme = open(os.path.join(ROOT, 'README.md')).read()
    for where, command, mark in ALL:
        kind, name, args = program(command)
        if mark and mark[0] != 'exit' or kind == 'other' or command in done:
            continue
        done.add(command)
        assert kind == 'py', f'{where}: `{command}` runs a script: mark it `# needs: ...` or `# runs in: ...`'
        code = run_inline(name, args, monkeypatch)
        out = capsys.readouterr()
        expected = mark[1] if mark else 0
        if code != expected:
            failures.append(f'{where}: `{command}` exited {code}, not {expected}:\n{(out.out + out.err)[-1500:]}')
        if name == 'get_flops.py':  # the figures it prints are README's model zoo row
            figures = re.search(r'params: ([\d.]+M).*\nGFLOPs: ([\d.]+)', out.out)
            row = f'| `{os.path.basename(config_of(args)[0])}` | {figures.group(1)} | {figures.group(2)} |'
            assert row in readme, f'{where}: README has no zoo row {row}'
    assert len(done) >= 10 and not failures, '\n\n'.join(failures)
