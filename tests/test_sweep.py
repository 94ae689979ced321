"""tools.sweep: students over a grid from one cached teacher. A 2 x 1 grid end to end (table, CSV,
heat map, the baseline trained alone), a sweep killed mid-cell and run again (finished cells skipped,
the cell resumed), a cell that fails, the launchers' dry runs, and each input refused up front."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import matplotlib.colors
import matplotlib.image
import pytest
import torch

from config import load_config_file
from tests.helpers.runs import ROOT, final_record, run, run_inline, save_tiny_teacher, teacher_section, write_config
from tests.helpers.videos import make_dataset
from utils.sweep import GridError, cells, heat_map, parse_grid
from utils.teacher_cache import TeacherCacheWriter


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(tmp, KD config, student config): tiny data, a saved (random) tiny teacher, 2 epochs,
    2 clips x 1 crop at test time, a checkpoint every epoch."""
    tmp = tmp_path_factory.mktemp('sweep')
    data = make_dataset(tmp / 'data', num_classes=3, videos_per_class=2, num_frames=10, size=(40, 32),
                        val_per_class=1)
    teacher = save_tiny_teacher(tmp / 'teacher.pth')
    common = {'TRAIN': {'EPOCHS': 2}, 'TEST': {'EVAL_FREQ': 0, 'NUM_CLIP': 2, 'NUM_CROP': 1}}
    kd = write_config(tmp / 'kd.yaml', *data, 3, extra={
        **common, 'MODEL': {'NAME': 'student'}, 'KD': {'EVAL_TEACHER': False},
        'TEACHER_MODEL': teacher_section(teacher)})
    alone = write_config(tmp / 'alone.yaml', *data, 3, extra={**common, 'MODEL': {'NAME': 'alone'}})
    return tmp, kd, alone


@pytest.fixture(scope='module')
def cache(setup):
    """A teacher cache of 3 epochs for the tests that are not about making one."""
    tmp, kd, _ = setup
    run(['main_KD.py', '--cfg', kd, '--cache-teacher', str(tmp / 'cache'), 'TRAIN.EPOCHS', '3'])
    return str(tmp / 'cache')


def sweep_inline(monkeypatch, capsys, kd, out, *words):
    """(exit status, console) of tools.sweep run in this process (its cells are subprocesses)."""
    code = run_inline('tools.sweep', ['--cfg', kd, '--out', str(out), *words], monkeypatch)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def sweep_args(kd, out, *words):
    return ['-m', 'tools.sweep', '--cfg', kd, '--out', str(out), *words]


def read_csv(out):
    with open(os.path.join(out, 'sweep.csv'), newline='') as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_two_by_one_grid_end_to_end(setup, monkeypatch, capsys):
    tmp, kd, alone = setup
    out = tmp / 'grid'
    code, log = sweep_inline(monkeypatch, capsys, kd, out, '--baseline', alone, 'KD.ALPHA', '0.2,0.9',
                             'KD.TEMPERATURE', '4')
    assert code == 0, log
    assert f'caching the teacher into {out}/teacher_cache' in log
    assert '[1/3] KD.ALPHA 0.2 KD.TEMPERATURE 4: top-1' in log and '2 left, ETA' in log
    assert '[3/3] student alone: top-1' in log

    rows = read_csv(out)
    assert [(r['KD.ALPHA'], r['KD.TEMPERATURE'], r['status']) for r in rows] == [
        ('baseline', '', 'done'), ('0.2', '4', 'done'), ('0.9', '4', 'done')]
    for row in rows:  # each row is its run's final 2-view test, and each cell trained its own values
        final = final_record(row['run'])
        assert (float(row['top1']), float(row['top5'])) == (final['test_acc1'], final['test_acc5'])
        assert row['views'] == '2' and final['test_num_views'] == 2
        cfg = load_config_file(os.path.join(row['run'], 'config.yaml'))
        if row['KD.ALPHA'] != 'baseline':
            assert (cfg.KD.ALPHA, cfg.KD.TEMPERATURE) == (float(row['KD.ALPHA']), 4.0)
            assert cfg.KD.TEACHER_CACHE == str(out / 'teacher_cache')
            assert 'teacher logits replayed from a cache' in open(os.path.join(row['run'], 'log_rank0.txt')).read()
        else:
            assert cfg.MODEL.NAME == 'alone'
    table = open(out / 'sweep.md').read()
    assert '| KD.ALPHA | KD.TEMPERATURE | top-1 | top-5 | views |' in table and '| student alone |' in table
    assert f'| 0.9 | 4 | {float(rows[2]["top1"]):.2f} |' in table
    image = matplotlib.image.imread(str(out / 'sweep.png'))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 200


@pytest.mark.slow
def test_a_sweep_killed_mid_cell_skips_finished_cells_and_resumes_the_cell(setup, cache, monkeypatch, capsys):
    tmp, kd, _ = setup
    out = tmp / 'killed'
    words = ['--cache', cache, 'KD.ALPHA', '0.3,0.6', '--opts', 'TRAIN.EPOCHS', '3']
    second = out / 'cells' / 'KD.ALPHA_0.6' / 'tiny' / 'student' / 'LR_0.5_EP_3_OPT_sgd_FRAMES_4'
    proc = subprocess.Popen([sys.executable, *sweep_args(kd, out, *words)], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        deadline = time.time() + 300
        while not (second / 'ckpt_epoch_0.pth').exists():
            assert proc.poll() is None and time.time() < deadline, 'the sweep ended before the 2nd cell saved'
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its running cell, as a crash would
        proc.wait()
    assert not (second / 'ckpt_epoch_2.pth').exists()

    # Run again, with a finished run folder as the baseline (here the first cell's, for its numbers).
    first = str(out / 'cells' / 'KD.ALPHA_0.3' / 'tiny' / 'student' / 'LR_0.5_EP_3_OPT_sgd_FRAMES_4')
    code, log = sweep_inline(monkeypatch, capsys, kd, out, *words, '--baseline', first)
    assert code == 0, log
    assert '[1/2] KD.ALPHA 0.3: finished before' in log and '[2/2] KD.ALPHA 0.6: top-1' in log
    assert 'resumed from' in open(out / 'logs' / 'KD.ALPHA_0.6.log').read().split('\n== ')[-1]
    rows = read_csv(out)
    assert [r['status'] for r in rows] == ['done', 'done', 'done']
    assert rows[0]['KD.ALPHA'] == 'baseline' and rows[0]['run'] == first and rows[0]['top1'] == rows[1]['top1']


@pytest.mark.slow
def test_a_failing_cell_is_marked_and_the_sweep_goes_on(setup, cache, monkeypatch, capsys):
    """A cell that fails while it trains (a drop-path rate above 1 reaches the blocks as a negative
    keep probability: config.validate cannot know it is wrong, torch raises at the first step)."""
    tmp, kd, _ = setup
    out = tmp / 'failing'
    code, log = sweep_inline(monkeypatch, capsys, kd, out, '--cache', cache, 'MODEL.DROP_PATH_RATE', '3.0,0.0',
                             '--opts', 'TRAIN.EPOCHS', '1')
    assert code == 1, log
    message = re.search(r'\[1/2\] MODEL.DROP_PATH_RATE 3.0: FAILED \((RuntimeError: bernoulli_ expects p [^;]*);',
                        log).group(1)
    assert '[2/2] MODEL.DROP_PATH_RATE 0.0: top-1' in log
    rows = read_csv(out)
    assert [(r['status'], r['error']) for r in rows] == [('failed', message), ('done', '')]
    assert '| 3.0 | failed |' in open(out / 'sweep.md').read()
    assert os.path.isfile(out / 'sweep.png')


@pytest.mark.slow
def test_gpus_run_the_cache_and_each_cell_under_torchrun(setup, monkeypatch, capsys):
    """--gpus 2 on a CPU: two gloo processes per run (the cache's world size is 2)."""
    tmp, kd, _ = setup
    out = tmp / 'torchrun'
    code, log = sweep_inline(monkeypatch, capsys, kd, out, '--gpus', '2', 'KD.ALPHA', '0.5',
                             '--opts', 'TRAIN.EPOCHS', '1')
    assert code == 0, log
    assert json.load(open(out / 'teacher_cache' / 'meta.json'))['fingerprint']['world size'] == 2
    run_log = open(os.path.join(read_csv(out)[0]['run'], 'log_rank0.txt')).read()
    assert 'world size 2' in run_log and 'teacher logits replayed from a cache' in run_log


@pytest.mark.parametrize('ds', ['ucf101', 'ucf50', 'hmdb51'])
def test_the_launchers_dry_run_the_paper_grid(ds):
    script = os.path.join(ROOT, 'scripts', ds, 'ablation_kd.sh')
    assert os.access(script, os.X_OK)
    proc = subprocess.run(['bash', script, '--dry-run'], capture_output=True, text=True,
                          env=dict(os.environ, PY=sys.executable), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    torchrun = f'{sys.executable} -m torch.distributed.run --standalone --nproc_per_node 3 '
    assert all(line.startswith(torchrun) for line in lines)
    out = f'output/{ds}/ablation_kd'
    assert f'main_KD.py --cfg configs/{ds}/VFL-Net_kd.yaml --cache-teacher {out}/teacher_cache ' \
           'DATA.NUM_FRAMES 8 TRAIN.EPOCHS 120' in lines[0]
    cells = [line.split(' TRAIN.AUTO_RESUME True ')[1] for line in lines[1:-1]]
    assert cells == [f'KD.ALPHA {a} KD.TEMPERATURE {t} KD.TEACHER_CACHE {out}/teacher_cache'
                     for a in ('0.2', '0.3', '0.5', '0.9') for t in ('1', '4', '10')]
    assert f'main.py --cfg configs/{ds}/VFL-Net.yaml --output {out}/baseline DATA.NUM_FRAMES 8 ' \
           'TRAIN.AUTO_RESUME True' in lines[-1]


def documented_sweeps():
    text = open(os.path.join(ROOT, 'docs', 'ablation.md')).read()
    lines = [line for block in re.findall(r'```bash\n(.*?)```', text, re.S)
             for line in block.replace('\\\n', ' ').splitlines()]
    return [line for line in lines if 'python -m tools.sweep' in line]


@pytest.mark.parametrize('command', documented_sweeps(), ids=lambda c: c.split('--cfg ')[1].split()[0])
def test_the_documented_sweeps_dry_run(command, tmp_path):
    cfg = command.split('--cfg ')[1].split()[0]
    cells = {'configs/demo/student_kd.yaml': 9, 'configs/ucf101/VFL-Net_kd.yaml': 12}[cfg]
    command = command.replace('python -m', f'{sys.executable} -m') + f' --out {tmp_path} --dry-run'
    proc = subprocess.run(['bash', '-c', command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum('main_KD.py' in line and '--output' in line for line in lines) == cells
    assert sum('main.py' in line for line in lines) == 1  # the student alone


def test_grid_parsing():
    assert parse_grid(['KD.ALPHA', '0.2,0.5', 'KD.TEMPERATURE', '4']) == [
        ('KD.ALPHA', ['0.2', '0.5']), ('KD.TEMPERATURE', ['4'])]
    for words, message in [([], 'empty grid'), (['KD.ALPHA'], 'odd list'), (['KD.ALPHA', '0.2,'], 'empty value'),
                           (['KD.ALPHA', '1', 'KD.ALPHA', '2'], 'given twice'), (['KD.ALPHA', '1,1'], 'repeated')]:
        with pytest.raises(GridError, match=message):
            parse_grid(words)


def refused(setup, monkeypatch, capsys, *words):
    tmp, kd, _ = setup
    out = tmp / 'refused'
    rc = run_inline('tools.sweep', ['--cfg', kd, '--out', str(out), *words], monkeypatch)
    assert rc == 2 and not os.path.exists(out / 'logs')  # nothing was started
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and '\n' not in err
    return err


def test_an_empty_grid_is_refused(setup, monkeypatch, capsys):
    assert 'empty grid' in refused(setup, monkeypatch, capsys)


def test_an_unknown_key_is_refused_naming_it(setup, monkeypatch, capsys):
    assert 'KD.ALPHAA' in refused(setup, monkeypatch, capsys, 'KD.ALPHAA', '0.2,0.5')
    assert 'TRAIN.NOPE' in refused(setup, monkeypatch, capsys, 'KD.ALPHA', '0.2', '--opts', 'TRAIN.NOPE', '1')


def test_a_grid_key_the_teacher_cache_depends_on_is_refused(setup, monkeypatch, capsys):
    err = refused(setup, monkeypatch, capsys, 'DATA.BATCH_SIZE', '2,4')
    assert 'grid cell DATA.BATCH_SIZE 4 changes DATA.BATCH_SIZE' in err


def test_a_cache_made_under_other_settings_is_refused_naming_the_key(setup, monkeypatch, capsys):
    tmp, kd, _ = setup
    cache = str(tmp / 'other_cache')
    TeacherCacheWriter(cache, load_config_file(kd, ['SEED', '5']), 1, 0, 3).write_meta()
    err = refused(setup, monkeypatch, capsys, '--cache', cache, 'KD.ALPHA', '0.2,0.5')
    assert f'teacher cache {cache} was made with SEED 5, this run has 0' in err


def test_a_cell_folder_of_other_settings_is_refused_naming_the_keys(setup, monkeypatch, capsys, tmp_path):
    _, kd, _ = setup
    folder = tmp_path / 'cells' / 'KD.ALPHA_0.2' / 'tiny' / 'student' / 'LR_0.5_EP_2_OPT_sgd_FRAMES_4'
    folder.mkdir(parents=True)
    (folder / 'config.yaml').write_text(load_config_file(kd, ['SEED', '3', 'KD.ALPHA', '0.2']).dump())
    rc = run_inline('tools.sweep', ['--cfg', kd, '--out', str(tmp_path), 'KD.ALPHA', '0.2'], monkeypatch)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f'error: {folder} holds a run of other settings (')
    assert 'SEED 3 there, 0 now' in err


def test_a_baseline_that_is_not_a_finished_run_is_refused(setup, monkeypatch, capsys, tmp_path):
    err = refused(setup, monkeypatch, capsys, '--baseline', str(tmp_path), 'KD.ALPHA', '0.2')
    assert f'--baseline {tmp_path}: no final evaluation' in err
    assert 'neither a run folder nor a config file' in refused(setup, monkeypatch, capsys, '--baseline',
                                                                str(tmp_path / 'nope'), 'KD.ALPHA', '0.2')


def test_the_error_of_a_failed_run_is_its_exception_line_under_torchrun_too(tmp_path):
    from tools.sweep import last_error_line
    log = tmp_path / 'cell.log'
    log.write_text('earlier attempt\nValueError: old\n')
    start = log.stat().st_size
    with open(log, 'a') as f:  # the end of a failed `torchrun --nproc_per_node 2 main.py` (abridged)
        f.write("[rank0]:     raise ValueError(f\"TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw'\")\n"
                "[rank0]: ValueError: TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got 'nope'\n"
                '    raise ChildFailedError(\n'
                'torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n'
                '============================================================\nmain.py FAILED\n'
                '  error_file: <N/A>\n============================================================\n')
    assert last_error_line(log, start) == "ValueError: TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got 'nope'"
    with open(log, 'a') as f:
        start = f.tell()
        f.write('some output\nerror: data/x.csv: no such file\n\n')
    assert last_error_line(log, start) == 'error: data/x.csv: no such file'
    with open(log, 'a') as f:
        start = f.tell()
        f.write('Killed\n')
    assert last_error_line(log, start) == 'Killed'


def test_the_heat_map_has_a_panel_per_value_of_a_third_key_and_greys_failed_cells(tmp_path):
    grid = parse_grid(['KD.ALPHA', '0.2,0.9', 'KD.TEMPERATURE', '1,4,10', 'SEED', '0,1'])
    results = [dict(cell=cell, status='done', acc1=10.0 * i, run='r') for i, cell in enumerate(cells(grid))]
    results[3] = dict(results[3], status='failed', acc1=None)
    baseline = dict(cell=(), status='done', acc1=5.0, run='b')
    one = matplotlib.image.imread(heat_map(str(tmp_path / 'one.png'), grid[:2], results[::2], baseline))
    two = matplotlib.image.imread(heat_map(str(tmp_path / 'two.png'), grid, results, baseline))
    assert two.shape[1] > 1.4 * one.shape[1]  # two panels of 2 x 3 beside the baseline instead of one
    grey = (abs(two[..., :3] - matplotlib.colors.to_rgb('lightgrey')) < 1 / 255).all(-1)
    assert grey.sum() > 500  # the failed cell's square
