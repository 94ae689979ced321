"""Distillation: the loss against hand computation, a frozen teacher, strict teacher loading, the
effect of the teacher on a student, and main_KD.py end to end."""
import math
import os
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import SoftTargetCrossEntropy

from config import get_config
from engine import train_one_epoch
from main_KD import build_teacher
from tests.helpers.runs import (assert_kd_mix, final_record, records, run, run_dir, teacher_section, tiny_model,
                         write_config)
from utils.checkpoint import CheckpointError
from utils.errors import UserError
from utils.losses import DistillationLoss, SupervisedLoss, kd_kl_div


class Fixed(nn.Module):
    """A 'teacher' that returns given logits."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer('logits', logits)

    def forward(self, x):
        return self.logits


def test_kd_term_equals_hand_computation():
    s = torch.tensor([[1.0, 2.0, 0.0]])
    t = torch.tensor([[0.0, 3.0, 1.0]])
    T = 2.0
    ps = [math.exp(v / T) for v in (1.0, 2.0, 0.0)]
    pt = [math.exp(v / T) for v in (0.0, 3.0, 1.0)]
    ps = [p / sum(ps) for p in ps]
    pt = [p / sum(pt) for p in pt]
    expected = T * T * sum(b * math.log(b / a) for a, b in zip(ps, pt))
    assert kd_kl_div(s, t, T).item() == pytest.approx(expected, rel=1e-6)
    ce = F.cross_entropy(s, torch.tensor([1])).item()
    loss = DistillationLoss(nn.CrossEntropyLoss(), Fixed(t), alpha=0.3, temperature=T)
    total, parts = loss(None, s, torch.tensor([1]))
    assert total.item() == pytest.approx(0.3 * expected + 0.7 * ce, rel=1e-6)
    assert parts['loss_kd'].item() == pytest.approx(expected, rel=1e-6)
    assert parts['loss_ce'].item() == pytest.approx(ce, rel=1e-6)


def test_kd_term_matches_torch_kl_div_batchmean():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 11, generator=g), torch.randn(6, 11, generator=g)
    for T in (1.0, 4.0, 10.0):
        ref = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True,
                       reduction='batchmean') * T ** 2
        torch.testing.assert_close(kd_kl_div(s, t, T), ref)


def test_zero_when_student_equals_teacher():
    logits = torch.randn(4, 5)
    loss = DistillationLoss(nn.CrossEntropyLoss(), Fixed(logits), alpha=1.0, temperature=10.0)
    assert loss(None, logits.clone(), torch.zeros(4, dtype=torch.long))[0].abs().item() < 1e-6


@pytest.mark.parametrize('soft', [False, True], ids=['hard targets', 'mixup targets'])
def test_alpha_zero_is_the_base_criterion(soft):
    s = torch.randn(4, 5)
    targets = torch.softmax(torch.randn(4, 5), -1) if soft else torch.tensor([0, 1, 2, 3])
    base = SoftTargetCrossEntropy() if soft else nn.CrossEntropyLoss()
    loss = DistillationLoss(base, Fixed(torch.randn(4, 5)), alpha=0.0, temperature=10.0)
    torch.testing.assert_close(loss(None, s, targets)[0], base(s, targets))


def test_gradient_reaches_only_the_student():
    teacher = nn.Linear(3, 4)
    student = nn.Linear(3, 4)
    x = torch.randn(5, 3)
    loss = DistillationLoss(nn.CrossEntropyLoss(), teacher, alpha=0.5, temperature=4.0)
    loss(x, student(x), torch.tensor([0, 1, 2, 3, 0]))[0].backward()
    assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0
    assert teacher.weight.grad is None and teacher.bias.grad is None


def fit(model, criterion, x, y, epochs, lr=3e-3, bs=32):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler('cpu', enabled=False)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        loader = [(x[order[i:i + bs]], y[order[i:i + bs]]) for i in range(0, len(x) - bs + 1, bs)]
        train_one_epoch(model, criterion, loader, opt, None, scaler, epoch, device=torch.device('cpu'))
    return model


def test_teacher_stays_bit_identical_while_the_student_learns():
    teacher = tiny_model(embed_dim=16, seed=1).eval().requires_grad_(False)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = tiny_model(seed=2)
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    x, y = torch.randn(8, 2, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    criterion = DistillationLoss(nn.CrossEntropyLoss(), teacher, alpha=0.5, temperature=4.0)
    fit(student, criterion, x, y, epochs=3, bs=4)
    assert not teacher.training  # the engine's criterion.train() leaves the teacher in eval mode
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(student_before[k], v) for k, v in student.state_dict().items())


def quadrant_task(n, seed):
    """Class c: quadrant c brightens from frame 0 to frame 1 (4 classes, noisy frames)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 2, 3, 32, 32, generator=g)
    for i, c in enumerate(y.tolist()):
        r, col = divmod(c, 2)
        x[i, 1, :, r * 16:(r + 1) * 16, col * 16:(col + 1) * 16] += 0.6
    return x, y


def test_distilled_student_agrees_with_the_teacher_more_than_a_student_trained_alone():
    """Same budget, data and seeds; the students' labels are half noise, the teacher's were clean,
    so only a working distillation term can pull the student toward the teacher."""
    torch.set_num_threads(1)
    x, y = quadrant_task(128, 0)
    xv, yv = quadrant_task(128, 1)
    g = torch.Generator().manual_seed(5)
    noisy = torch.where(torch.rand(128, generator=g) < 0.5, torch.randint(0, 4, (128,), generator=g), y)
    teacher = fit(tiny_model(num_classes=4, seed=0), SupervisedLoss(nn.CrossEntropyLoss()), x, y, epochs=3)
    teacher.eval().requires_grad_(False)
    alone = fit(tiny_model(num_classes=4, seed=1), SupervisedLoss(nn.CrossEntropyLoss()), x, noisy, epochs=2).eval()
    kd = DistillationLoss(nn.CrossEntropyLoss(), teacher, alpha=0.9, temperature=4.0)
    distilled = fit(tiny_model(num_classes=4, seed=1), kd, x, noisy, epochs=2).eval()
    with torch.no_grad():
        t, a, d = (m(xv).argmax(1) for m in (teacher, alone, distilled))
    agree_alone, agree_kd = (a == t).float().mean().item(), (d == t).float().mean().item()
    print(f'teacher top-1 {(t == yv).float().mean():.3f}; alone: top-1 {(a == yv).float().mean():.3f} '
          f'agreement {agree_alone:.3f}; distilled: top-1 {(d == yv).float().mean():.3f} '
          f'agreement {agree_kd:.3f}')
    assert (t == yv).float().mean() > 0.8
    assert agree_kd > agree_alone + 0.1


def teacher_config(path, **focal):
    cfg = get_config()
    cfg.defrost()
    cfg.MODEL.NUM_CLASSES = 3
    cfg.DATA.NUM_FRAMES, cfg.DATA.INPUT_SIZE = 2, 32
    cfg.TEACHER_MODEL.TYPE = 'videofocalnet_custom'
    cfg.TEACHER_MODEL.FOCAL.EMBED_DIM = focal.get('dim', 8)
    cfg.TEACHER_MODEL.FOCAL.DEPTHS = focal.get('depths', [1, 1, 1, 1])
    cfg.TEACHER_MODEL.PRETRAINED_PATH = str(path)
    cfg.freeze()
    return cfg


def test_teacher_loads_strictly_and_is_frozen(tmp_path):
    path = tmp_path / 'teacher.pth'
    torch.save({'model': tiny_model().state_dict()}, path)
    import logging
    teacher = build_teacher(teacher_config(path), torch.device('cpu'), logging.getLogger('t'))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert torch.equal(teacher.head.weight, tiny_model().head.weight)


@pytest.mark.parametrize('case', ['head', 'depth', 'missing'])
def test_a_teacher_that_does_not_fit_is_an_error(tmp_path, case):
    import logging
    path = tmp_path / 'teacher.pth'
    if case == 'head':
        torch.save({'model': tiny_model(num_classes=5).state_dict()}, path)
        match = r'head.weight: checkpoint \(5, 64\) vs model \(3, 64\)'
    elif case == 'depth':
        torch.save(tiny_model(depths=(1, 1, 2, 1)).state_dict(), path)
        match = r'not in model \(\d+\): layers.2.blocks.1'
    else:
        match = 'checkpoint not found: .*teacher.pth'
    with pytest.raises(CheckpointError, match=match):
        build_teacher(teacher_config(path), torch.device('cpu'), logging.getLogger('t'))


def test_no_teacher_path_is_an_error():
    import logging
    with pytest.raises(UserError, match='TEACHER_MODEL.PRETRAINED_PATH'):
        build_teacher(teacher_config(''), torch.device('cpu'), logging.getLogger('t'))


@pytest.mark.slow
def test_main_kd_end_to_end(tmp_path, tiny_dataset, trained_teacher):
    train, val, labels = tiny_dataset
    kd_cfg = write_config(tmp_path / 'kd.yaml', train, val, labels, 3, extra={
        'MODEL': {'NAME': 'student'}, 'TRAIN': {'EPOCHS': 1}, 'TEACHER_MODEL': teacher_section(trained_teacher)})
    for nproc in (0, 2):
        out = tmp_path / f'kd{nproc}'
        _, log = run(['main_KD.py', '--cfg', kd_cfg, '--output', str(out), '--opts', 'KD.ALPHA', '0.2',
                      'KD.BETA', '0.3', 'KD.GAMMA', '0.5', 'KD.TEMPERATURE', '10'], torchrun=nproc)
        assert re.search(r'teacher top-1 [\d.]+% top-5 [\d.]+% \(1 view per video\)', log)
        assert re.search(r'Train: \[0/1\]\[\d+/\d+\].*loss [\d.]+ .*loss_kd [\d.]+ .*loss_ce [\d.]+', log)
        epoch = records(run_dir(out))[0]
        assert_kd_mix(epoch, 0.2, rel=1e-5)
        assert 'KD.BETA = 0.3 is accepted but unused' in log
        student_ckpt = os.path.join(run_dir(out), 'ckpt_epoch_0.pth')
        state = torch.load(student_ckpt, weights_only=True)['model']
        assert state['head.weight'].shape == (3, 64)  # the student (embed 8), not the teacher (embed 16)
    run(['main.py', '--eval', '--cfg', kd_cfg, '--output', str(tmp_path / 'eval'), '--resume', student_ckpt,
         'TEST.NUM_CLIP', '2'])
    result = final_record(tmp_path / 'eval' / 'eval_2x1')
    assert (result['test_num_videos'], result['test_num_views']) == (5, 2)
