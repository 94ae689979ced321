"""Every command the documentation gives (README.md, DATA.md, INSTALL.md, docs/, scripts/) exists and
its `--help` runs as written, and each reports a user mistake (a missing file, a wrong value) as one
line `error: ...` with exit status 2.

The commands are read from the documents themselves, so a command renamed in the code but not in
the docs (or the other way round) fails here. They run in this process, as `python X.py` or
`python -m X` would run them (`runpy`, with `__name__ == '__main__'` and sys.argv set)."""
import glob
import os
import re

import pytest

from tests.helpers.runs import ROOT, run_inline

DOCUMENTS = ['README.md', 'DATA.md', 'INSTALL.md', *sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md'))),
             *sorted(glob.glob(os.path.join(ROOT, 'scripts', '**', '*.sh'), recursive=True))]
# What starts a command in the documents; what follows is `-m module` or (after launcher options) a file.
LAUNCHERS = {'python', 'python3', '$PY', '${PY}', '.venv/bin/python', 'torchrun'}
MODULE = re.compile(r'[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*')
PROJECT = {os.path.splitext(n)[0] for n in os.listdir(ROOT) if n.endswith('.py')} | {
    n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, '__init__.py'))}


def commands_in(text):
    """The project commands in a document: 'main.py' for `python main.py ...` or `torchrun ...
    main.py`, 'tools.predict' for `python -m tools.predict ...`; other modules (pytest, pip, venv)
    are not the project's."""
    text = text.replace('\\\n', ' ')  # shell line continuations
    found = []
    for line in text.splitlines():
        tokens = [t.strip('"\'`;|()') for t in line.split()]
        for i, token in enumerate(tokens):
            if token not in LAUNCHERS:
                continue
            rest = tokens[i + 1:]
            if rest[:1] == ['-m'] and len(rest) > 1:
                if MODULE.fullmatch(rest[1]) and rest[1].split('.')[0] in PROJECT:  # not tools.<name>
                    found.append(rest[1])
            elif token == 'torchrun':
                found += [t for t in rest if t.endswith('.py')][:1]
            elif rest and rest[0].endswith('.py'):
                found.append(rest[0])
    return found


def documented_commands():
    commands = set()
    for path in DOCUMENTS:
        with open(os.path.join(ROOT, path)) as f:
            commands.update(commands_in(f.read()))
    return sorted(commands)


COMMANDS = documented_commands()


def test_the_documents_give_the_commands_users_need():
    for command in ('main.py', 'main_KD.py', 'get_flops.py', 'tools.predict', 'tools.export', 'tools.visualize',
                    'tools.make_demo_data', 'tools.splits', 'tools.plot', 'tools.check_data', 'tools.summary',
                    'tools.convert', 'benchmarks.bench_model'):
        assert command in COMMANDS


def test_the_parser_reads_launchers_files_and_modules():
    text = ('torchrun --nproc_per_node 3 main.py --cfg c.yaml\n$PY -m tools.plot a --out b\n'
            '"$PY" -m venv .venv\n.venv/bin/python -m pytest -q\nsrun torchrun --nnodes "$N" \\\n    main_KD.py\n'
            'python3 get_flops.py --cfg x\n`python -m datasets.synthetic --out d`\nsee models/registry.py\n')
    assert commands_in(text) == ['main.py', 'tools.plot', 'main_KD.py', 'get_flops.py', 'datasets.synthetic']


@pytest.mark.parametrize('command', COMMANDS)
def test_help_runs_as_documented(command, monkeypatch, capsys):
    code = run_inline(command, ['--help'], monkeypatch)
    out = capsys.readouterr().out
    assert code == 0 and out.startswith('usage: '), f'`{command} --help` exited {code}:\n{out[-2000:]}'


# A mistake in the input of each command (except the benchmarks, which take only sizes): the missing
# config, or a folder that is not a run.
MISTAKES = {
    'main.py': ['--cfg', '{missing}'],
    'main_KD.py': ['--cfg', '{missing}'],
    'get_flops.py': ['--cfg', '{missing}'],
    'tools.check_data': ['--cfg', '{missing}'],
    'tools.convert': ['src.pth', '{tmp}/dst.pth', '--cfg', '{missing}'],
    'tools.convert_annotations': ['kinetics', '{missing}', '{tmp}/train.csv', '--labels',
                                  'labels/kinetics_400_labels.csv'],
    'tools.export': ['--cfg', '{missing}', '--checkpoint', 'x.pth', '--out', '{tmp}/x.onnx'],
    'tools.eval_onnx': ['--cfg', '{missing}', '--onnx', 'x.onnx'],
    'tools.predict': ['--cfg', '{missing}', '--checkpoint', 'x.pth', 'x.avi'],
    'tools.visualize': ['--cfg', '{missing}', '--checkpoint', 'x.pth', '--video', 'x.avi', '--out', '{tmp}/v'],
    'tools.make_demo_data': ['--out', '{tmp}/demo', '--size', '31'],
    'tools.splits': ['leakage', '{missing}', '{missing}'],
    'tools.plot': ['{tmp}', '--out', '{tmp}/p.png'],
    'tools.summary': ['run={tmp}'],
    'tools.sweep': ['--cfg', '{missing}', '--out', '{tmp}/sweep', 'KD.ALPHA', '0.2,0.5'],
}
NEEDLE = {'tools.make_demo_data': 'even', 'tools.plot': '{tmp}', 'tools.summary': '{tmp}'}

# A wrong value for each command (benchmarks included), on a config that exists: (arguments, what the
# one error line must name). Config values are checked when the config loads (config.validate), the
# command's own arguments by its parser (utils.cli.CommandParser).
CFG, KD_CFG = 'configs/demo/student.yaml', 'configs/demo/student_kd.yaml'
WRONG_VALUES = {
    'main.py': (['--cfg', CFG, 'TEST.NUM_CROP', '2'], 'TEST.NUM_CROP must be 1 or 3, got 2'),
    'main_KD.py': (['--cfg', KD_CFG, 'AMP_OPT_LEVEL', 'O3'], "AMP_OPT_LEVEL must be O0, O1 or O2, got 'O3'"),
    'get_flops.py': (['--cfg', CFG, '--opts', 'TRAIN.LR_SCHEDULER.NAME', 'poly'], "TRAIN.LR_SCHEDULER.NAME must be"),
    'tools.check_data': (['--cfg', CFG, 'DATA.DECODER', 'opencv'], "DATA.DECODER must be 'decord' or 'pyav'"),
    'tools.convert': (['src.pth', '{tmp}/dst.pth', '--cfg', CFG, 'TRAIN.OPTIMIZER.NAME', 'adam'],
                      "TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got 'adam'"),
    'tools.convert_annotations': (['kinetics', 'x.csv', '{tmp}/o.csv', '--labels', 'labels/kinetics_400_labels.csv',
                                   '--skip-missing'], '--skip-missing needs --root'),
    'tools.export': (['--cfg', CFG, '--checkpoint', 'x.pth', '--out', '{tmp}/x.onnx', 'DATA.NUM_FRAMES', 'four'],
                     'DATA.NUM_FRAMES'),
    'tools.predict': (['--cfg', CFG, '--checkpoint', 'x.pth', 'x.avi', '--views', '4x2'], '--views 4x2'),
    'tools.visualize': (['--cfg', CFG, '--checkpoint', 'x.pth', '--video', 'x.avi', '--out', '{tmp}/v', '--alpha', '2'],
                        '--alpha must be in [0, 1], got 2.0'),
    'tools.make_demo_data': (['--out', '{tmp}/demo', '--shake', '-1'], 'shake must be >= 0'),
    'tools.splits': (['folders', '--root', '{tmp}', '--out', '{tmp}/o', '--val-fraction', 'half'], "'half'"),
    'tools.plot': (['{tmp}/log.jsonl', '--out', '{tmp}/p.png'], "'epoch' must be an integer, got 'one'"),
    'tools.summary': (['--per-class', '{tmp}', '--limit', 'ten'], "'ten'"),
    'tools.sweep': (['--cfg', KD_CFG, '--out', '{tmp}/sweep', '--gpus', 'two', 'KD.ALPHA', '0.2,0.5'], "'two'"),
    'tools.eval_onnx': (['--cfg', CFG, '--onnx', 'x.onnx', 'TEST.NUM_CROP', '2'], 'TEST.NUM_CROP must be 1 or 3, got 2'),
    'benchmarks.bench_deploy': (['--batches', 'x'], "'x'"),
    'benchmarks.bench_data': (['--workers', 'many'], "'many'"),
    'benchmarks.bench_decode': (['--videos', 'many'], "'many'"),
    'benchmarks.bench_gpu': (['--steps', 'x'], "'x'"),
    'benchmarks.bench_kd': (['--steps', 'x'], "'x'"),
    'benchmarks.bench_model': (['--batch', 'x'], "'x'"),
}


def test_every_documented_command_has_a_mistake_case():
    assert sorted(MISTAKES) == [c for c in COMMANDS if not c.startswith('benchmarks.')]


@pytest.mark.parametrize('command', sorted(MISTAKES))
def test_a_user_mistake_is_one_error_line_and_status_2(command, tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / 'nowhere.yaml')
    args = [a.format(missing=missing, tmp=tmp_path) for a in MISTAKES[command]]
    code = run_inline(command, args, monkeypatch)
    err = capsys.readouterr().err
    needle = NEEDLE.get(command, '{missing}').format(missing=missing, tmp=tmp_path)
    assert code == 2, err
    assert re.fullmatch(r'error: [^\n]+\n', err) and needle in err, err


def test_every_documented_command_has_a_wrong_value_case():
    assert [c for c in COMMANDS if c not in WRONG_VALUES] == []


@pytest.mark.parametrize('command', sorted(c for c in WRONG_VALUES if c in COMMANDS))
def test_a_wrong_value_is_one_error_line_and_status_2(command, tmp_path, monkeypatch, capsys):
    (tmp_path / 'log.jsonl').write_text('{"epoch": "one", "train_loss": 1.0}\n')
    args, needle = WRONG_VALUES[command]
    code = run_inline(command, [a.format(tmp=tmp_path) for a in args], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2, err
    assert re.fullmatch(r'error: [^\n]+\n', err) and needle in err, err


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='checks the refusal where the benchmark cannot run')
def test_bench_gpu_without_a_gpu_is_a_user_error_naming_the_dry_run(monkeypatch, capsys):
    code = run_inline('benchmarks.bench_gpu', ['--steps', '1'], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and re.fullmatch(r'error: [^\n]+\n', err) and '--device cpu runs it as a dry run' in err, err
