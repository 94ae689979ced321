"""Exact resume with loader workers: main.py killed with SIGKILL after an epoch's checkpoint and
started again with the same command ends with the same weights, bit for bit, as an uninterrupted
run. Every draw of the input path (frame offsets, crop, flip, colour jitter, grayscale, Mixup/CutMix)
is keyed on (SEED, epoch, clip key) or (SEED, epoch, step, rank), so persistent workers carry no
random state across epochs."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers.runs import ROOT, run, run_dir, write_config
from tests.helpers.videos import make_dataset

pytestmark = pytest.mark.slow

EPOCHS = 3


def command(cfg, output):
    return ['main.py', '--cfg', cfg, '--output', str(output)]


def kill_after_first_checkpoint(args, output, timeout=600):
    """Start `python args`, wait for ckpt_epoch_0.pth, SIGKILL the process group; returns the
    checkpoints present when it died."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            found = [p for p in output.rglob('ckpt_epoch_*.pth')]
            if found:
                os.killpg(proc.pid, signal.SIGKILL)  # the run and its loader workers
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return sorted(p.name for p in output.rglob('ckpt_epoch_*.pth'))


@pytest.mark.parametrize('num_sample, amp', [(1, 'O0'), (2, 'float16')],
                         ids=['float32', 'AUG.NUM_SAMPLE 2, float16 + GradScaler'])
def test_kill_and_restart_with_two_workers_ends_bit_identical(tmp_path, num_sample, amp):
    """Also with AUG.NUM_SAMPLE 2 (two clips of each decoded video, each drawn from its own key)
    under the recipe's float16 autocast + GradScaler, whose scale and growth tracker resume too."""
    data = make_dataset(tmp_path / 'data', num_classes=3, videos_per_class=4, num_frames=10, size=(40, 32),
                        val_per_class=1)
    cfg = write_config(tmp_path / 'tiny.yaml', *data, num_classes=3, extra={
        'DATA': {'NUM_WORKERS': 2},
        'TRAIN': {'EPOCHS': EPOCHS},
        'AUG': {'MIXUP': 0.8, 'CUTMIX': 1.0, 'COLOR_JITTER_PROB': 0.8, 'GRAY_SCALE': 0.2, 'NUM_SAMPLE': num_sample},
        **({'AMP_OPT_LEVEL': 'O1', 'AMP_DTYPE': 'float16'} if amp == 'float16' else {}),
    })
    run(command(cfg, tmp_path / 'whole'))

    killed = tmp_path / 'killed'
    present = kill_after_first_checkpoint(command(cfg, killed), killed)
    assert present and f'ckpt_epoch_{EPOCHS - 1}.pth' not in present, present
    _, log = run(command(cfg, killed))  # the same command: auto-resume
    assert 'resumed from' in log and 'Train: [0/3]' not in log

    final = f'ckpt_epoch_{EPOCHS - 1}.pth'
    whole = torch.load(os.path.join(run_dir(tmp_path / 'whole'), final), weights_only=True)
    resumed = torch.load(os.path.join(run_dir(killed), final), weights_only=True)
    a, b = whole['model'], resumed['model']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed['scaler'] == whole['scaler'] and bool(whole['scaler']) == (amp == 'float16')
