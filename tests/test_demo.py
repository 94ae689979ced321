"""The README's two commands: the test command is what CI runs, and the demo command runs here in
a reduced form (few clips, one epoch) through generate -> teacher -> student -> KD -> table + plot."""
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
    text = open(os.path.join(ROOT, 'README.md')).read()
    block = re.search(r'```bash\n(.*?)```', text, re.S).group(1)
    return [line.split('#')[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_demo_and_test_commands_and_ci_runs_the_test_one():
    demo, tests = readme_commands()
    assert demo == 'bash scripts/demo.sh'
    assert tests in open(os.path.join(ROOT, '.ci', 'run')).read()


@pytest.mark.slow
def test_reduced_demo_runs_end_to_end(tmp_path):
    env = dict(os.environ, PY=sys.executable, DEMO_DATA=str(tmp_path / 'data'), DEMO_OUT=str(tmp_path / 'out'),
               DEMO_CLIPS='4', DEMO_VAL='2', DEMO_EPOCHS='1', OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    demo = readme_commands()[0].split()
    proc = subprocess.run(demo, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    for step in ('generating the demo data', '1/3 teacher', '2/3 student alone', '3/3 distilled student'):
        assert step in out
    assert re.search(r'teacher top-1 [\d.]+%', out)
    # the two students train side by side: each progress line says whose it is
    for model in ('student', 'distilled'):
        assert re.search(r'^\[%s\] +EPOCH 0 training' % model, out, re.M), out[-3000:]
    rows = re.findall(r'^\| (teacher|student|distilled) +\| +([\d.]+)M \| +([\d.]+) \| +([\d.]+) \| +([\d.]+) \| +6 \|$',
                      out, re.M)
    assert [r[0] for r in rows] == ['teacher', 'student', 'distilled']
    params = {r[0]: float(r[1]) for r in rows}
    assert params['teacher'] > params['student'] == params['distilled']
    assert open(tmp_path / 'out' / 'summary.md').read().count('\n') == 5
    with Image.open(tmp_path / 'out' / 'curves.png') as img:
        assert img.width > 400 and img.height > 300


def _demo_section():
    return open(os.path.join(ROOT, 'docs', 'demo.md')).read()


def _demo_default(name):
    script = open(os.path.join(ROOT, 'scripts', 'demo.sh')).read()
    return int(re.search(r'\b%s=\$\{DEMO_%s:-(\d+)\}' % (name, name), script).group(1))


def test_docs_describe_the_demo_that_scripts_demo_sh_runs():
    """The clip counts, chance level and model sizes in docs/demo.md are those of demo.sh and its configs,
    and the table of seeds shows the targets the demo is built for (issue 19)."""
    from config import load_config_file
    from datasets.synthetic import DEFAULT_CLASSES
    from models import build_model
    from models.flops import count

    section = _demo_section()
    classes = len(DEFAULT_CLASSES)
    train, val = _demo_default('CLIPS') * classes, _demo_default('VAL') * classes
    assert f'generates {train + val} short clips' in section
    assert f'{train} to train, {val} to validate' in section
    assert all(f'`{name}`' in section for name in DEFAULT_CLASSES)
    chance = f'chance is {100 / classes:.1f}%'
    assert chance in section and chance in open(os.path.join(ROOT, 'scripts', 'demo.sh')).read()

    sizes = {}
    for name in ('teacher', 'student'):
        cfg = load_config_file(os.path.join(ROOT, 'configs', 'demo', f'{name}.yaml'))
        assert cfg.MODEL.NUM_CLASSES == classes
        params, gflops, _ = count(build_model(cfg), cfg.DATA.NUM_FRAMES, cfg.DATA.INPUT_SIZE)
        sizes[name] = f'{params / 1e6:.3f}M parameters, {gflops:.3f} GFLOPs'
    assert f'teacher {sizes["teacher"]} per clip; student {sizes["student"]}' in section

    rows = re.findall(r'^\| (\d) \| ([\d.]+) \| ([\d.]+) \| \*\*([\d.]+)\*\* \| (\d+) s \|$', section, re.M)
    assert [r[0] for r in rows] == ['0', '1', '2', '3', '4']
    for _, teacher, alone, distilled, seconds in rows:
        teacher, alone, distilled = float(teacher), float(alone), float(distilled)
        assert teacher >= 80 and alone >= 2 * 100 / classes and distilled >= alone + 5
        assert int(seconds) <= 240
    # README's first line and demo.sh's header give the time of the table, not another figure.
    times = [int(r[4]) for r in rows]
    readme_line = open(os.path.join(ROOT, 'README.md')).read().split('\n')[3]
    assert 'bash scripts/demo.sh' in readme_line and f'{max(times)} s on 2 cores' in readme_line
    header = open(os.path.join(ROOT, 'scripts', 'demo.sh')).read().split('\nset ')[0]
    assert f'{min(times)} to {max(times)} s on a 2-core' in header
