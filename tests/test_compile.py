"""TRAIN.COMPILE end to end: main_KD.py under torchrun x2 with the DDP-wrapped student compiled
(as PyTorch's DDP notes) and the frozen teacher compiled, saving checkpoints with the plain parameter names. The
aot_eager backend captures the same graphs as inductor without generating C++ kernels (minutes on
two cores); tests/test_model.py checks inductor's numerics on a tiny model."""
import os
import re

import pytest
import torch

from tests.helpers.runs import run, run_dir, teacher_section, write_config
from tests.helpers.videos import make_dataset

pytestmark = pytest.mark.slow


def test_compiled_distillation_under_ddp_saves_plain_checkpoints(tmp_path, trained_teacher):
    train, val, labels = make_dataset(tmp_path / 'data', num_classes=3, videos_per_class=4, num_frames=10,
                                      size=(40, 32), val_per_class=1)
    eager_keys = set(torch.load(trained_teacher, weights_only=True)['model'])

    kd_cfg = write_config(tmp_path / 'kd.yaml', train, val, labels, 3, extra={
        'MODEL': {'NAME': 'student', 'FOCAL': {'EMBED_DIM': 16, 'DEPTHS': [1, 1, 1, 1]}},
        'TRAIN': {'EPOCHS': 1, 'COMPILE': True, 'COMPILE_BACKEND': 'aot_eager'},
        'TEACHER_MODEL': teacher_section(trained_teacher)})
    _, log = run(['main_KD.py', '--cfg', kd_cfg, '--output', str(tmp_path / 'kd')], torchrun=2, timeout=1500)
    assert 'TRAIN.COMPILE: torch.compile of the training model, backend aot_eager' in log
    assert re.search(r'Train: \[0/1\]\[\d+/\d+\].*loss_kd [\d.]+', log)
    state = torch.load(os.path.join(run_dir(tmp_path / 'kd'), 'ckpt_epoch_0.pth'), weights_only=True)['model']
    assert set(state) == eager_keys  # same architecture as the teacher: no _orig_mod. / module. prefixes
    _, log = run(['main.py', '--eval', '--cfg', kd_cfg, '--output', str(tmp_path / 'eval'), '--resume',
                  os.path.join(run_dir(tmp_path / 'kd'), 'ckpt_epoch_0.pth')])
    assert re.search(r'Test: 3 videos x 1 views \* Acc@1', log)
