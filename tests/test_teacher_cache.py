"""Cached-teacher distillation: a student trained from `main_KD.py --cache-teacher` logits ends with
the weights of online distillation (one process and torchrun x2, resumed too), and a cache made
under other settings, incomplete, or replayed on other inputs is refused naming what differs."""
import copy
import json
import os
import re

import pytest
import torch
import torch.nn as nn

from config import get_config
from engine import train_one_epoch
from tests.helpers.runs import run, run_dir, run_inline, save_tiny_teacher, teacher_section, write_config
from tests.helpers.videos import make_dataset
from utils.losses import CachedDistillationLoss, DistillationLoss
from utils.teacher_cache import (CachedTeacher, TeacherCacheError, TeacherCacheWriter, input_probe,
                                 read_meta)

def small_config(tmp_path, **changes):
    """A config as main_KD.py builds it, over a 3-line training list and a saved teacher."""
    train = tmp_path / 'train.csv'
    if not train.exists():
        train.write_text('a.avi,0\nb.avi,1\nc.avi,2\n')
    teacher = tmp_path / 'teacher.pth'
    if not teacher.exists():
        torch.save({'model': {'w': torch.zeros(1)}}, teacher)
    cfg = get_config()
    cfg.defrost()
    cfg.DATA.TRAIN_FILE, cfg.DATA.BATCH_SIZE, cfg.MODEL.NUM_CLASSES = str(train), 2, 3
    cfg.TEACHER_MODEL.PRETRAINED_PATH = str(teacher)
    cfg.TRAIN.EPOCHS = 2
    for key, value in changes.items():
        node = cfg
        *groups, leaf = key.split('.')
        for g in groups:
            node = node[g]
        node[leaf] = value
    cfg.freeze()
    return cfg


def write_cache(cache_dir, cfg, steps=3, world_size=1, rank=0, seed=0, dtype='float16'):
    """Epochs of random logits for random inputs; returns {epoch: (inputs, logits)}."""
    g = torch.Generator().manual_seed(seed)
    writer = TeacherCacheWriter(str(cache_dir), cfg, world_size, rank, steps, dtype)
    writer.write_meta()
    written = {}
    for epoch in range(cfg.TRAIN.EPOCHS):
        x = torch.randn(steps, cfg.DATA.BATCH_SIZE, 2, 3, 8, 8, generator=g)
        z = torch.randn(steps, cfg.DATA.BATCH_SIZE, cfg.MODEL.NUM_CLASSES, generator=g) * 5
        writer.write_epoch(epoch, list(z), [input_probe(s) for s in x])
        written[epoch] = (x, z)
    return written


class Fixed(nn.Module):
    """A teacher that returns given logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits


def test_replays_logits_per_epoch_and_step(tmp_path):
    cfg = small_config(tmp_path)
    written = write_cache(tmp_path / 'cache', cfg, dtype='float32')
    teacher = CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    criterion = CachedDistillationLoss(nn.CrossEntropyLoss(), teacher, alpha=0.5, temperature=4.0)
    for epoch in (1, 0):  # any order: a resumed run starts at a later epoch
        criterion.set_epoch(epoch)
        x, z = written[epoch]
        for step in range(len(x)):
            out, y = torch.randn(2, 3), torch.tensor([0, 2])
            online = DistillationLoss(nn.CrossEntropyLoss(), Fixed(z[step]), alpha=0.5, temperature=4.0)
            (loss, parts), (ref, ref_parts) = criterion(x[step], out, y), online(x[step], out, y)
            assert torch.equal(loss, ref) and torch.equal(parts['loss_kd'], ref_parts['loss_kd'])
        with pytest.raises(TeacherCacheError, match=f'no logits for epoch {epoch} step 3 on rank 0'):
            criterion(x[0], torch.randn(2, 3), torch.tensor([0, 1]))


def test_float16_is_the_default_and_rounds_only(tmp_path):
    cfg = small_config(tmp_path)
    written = write_cache(tmp_path / 'cache', cfg)
    teacher = CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    teacher.set_epoch(0)
    x, z = written[0]
    got = teacher(x[0])
    assert got.dtype == torch.float16 and torch.equal(got, z[0].half())
    assert read_meta(str(tmp_path / 'cache'))['dtype'] == 'float16'


def test_other_inputs_than_the_cached_ones_are_refused(tmp_path):
    cfg = small_config(tmp_path)
    written = write_cache(tmp_path / 'cache', cfg)
    teacher = CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    teacher.set_epoch(1)
    x = written[1][0][0]
    with pytest.raises(TeacherCacheError, match='holds batches of 2 clips, epoch 1 step 0 on rank 0 has 1'):
        teacher(x[:1])
    # The probe is compared once the training loop has read the step's parts (no host read in the
    # forward); the step is refused before the optimiser moves.
    criterion = CachedDistillationLoss(nn.CrossEntropyLoss(), teacher, alpha=0.5, temperature=4.0)
    criterion.set_epoch(1)
    student = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), cfg.MODEL.NUM_CLASSES))
    before = copy.deepcopy(student.state_dict())
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    loader = [(x.flip(-1), torch.tensor([0, 1]))]  # a flip the cache did not see
    with pytest.raises(TeacherCacheError, match='inputs of epoch 1 step 0 on rank 0 are not the ones'):
        train_one_epoch(student, criterion, loader, optimizer, None, torch.amp.GradScaler('cpu', enabled=False),
                        1, device=torch.device('cpu'))
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


@pytest.mark.parametrize('key, value, message', [
    ('DATA.BATCH_SIZE', 4, 'was made with DATA.BATCH_SIZE 2, this run has 4'),
    ('SEED', 3, 'was made with SEED 0, this run has 3'),
    ('AUG.MIXUP', 0.5, 'was made with AUG.MIXUP 0.8, this run has 0.5'),
    ('DATA.NUM_FRAMES', 16, 'was made with DATA.NUM_FRAMES 8, this run has 16'),
    ('TRAIN.ACCUMULATION_STEPS', 2, 'was made with TRAIN.ACCUMULATION_STEPS 1, this run has 2'),
    ('TEACHER_MODEL.TYPE', 'videofocalnet_tiny',
     "was made with TEACHER_MODEL.TYPE 'videofocalnet_base', this run has 'videofocalnet_tiny'"),
])
def test_a_cache_made_under_other_settings_is_refused_naming_the_key(tmp_path, key, value, message):
    write_cache(tmp_path / 'cache', small_config(tmp_path))
    with pytest.raises(TeacherCacheError, match=re.escape(message)):
        CachedTeacher(str(tmp_path / 'cache'), small_config(tmp_path, **{key: value}), 1, 0, torch.device('cpu'))


def test_what_does_not_shape_the_inputs_is_not_compared(tmp_path):
    write_cache(tmp_path / 'cache', small_config(tmp_path))
    other = small_config(tmp_path, **{'DATA.NUM_WORKERS': 2, 'AUG.LABEL_SMOOTH': 0.0, 'KD.ALPHA': 0.9,
                                      'KD.TEMPERATURE': 2.0, 'TRAIN.BASE_LR': 1.0, 'DATA.ROOT': '/moved',
                                      'MODEL.DROP_PATH_RATE': 0.3, 'TEACHER_MODEL.PRETRAINED_PATH': ''})
    CachedTeacher(str(tmp_path / 'cache'), other, 1, 0, torch.device('cpu'))  # no error


def test_world_size_teacher_checkpoint_and_training_list_are_compared(tmp_path):
    write_cache(tmp_path / 'cache', small_config(tmp_path))
    cfg = small_config(tmp_path)
    with pytest.raises(TeacherCacheError, match="was made with world size 1, this run has 2"):
        CachedTeacher(str(tmp_path / 'cache'), cfg, 2, 0, torch.device('cpu'))
    torch.save({'model': {'w': torch.ones(1)}}, cfg.TEACHER_MODEL.PRETRAINED_PATH)
    with pytest.raises(TeacherCacheError, match='was made with TEACHER_MODEL.PRETRAINED_PATH sha256'):
        CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    os.remove(cfg.TEACHER_MODEL.PRETRAINED_PATH)
    with pytest.raises(TeacherCacheError, match="PRETRAINED_PATH '.*teacher.pth' is not a file"):
        CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    (tmp_path / 'train.csv').write_text('a.avi,0\nb.avi,1\n')
    with pytest.raises(TeacherCacheError, match='was made with DATA.TRAIN_FILE sha256'):
        CachedTeacher(str(tmp_path / 'cache'), small_config(tmp_path), 1, 0, torch.device('cpu'))


def test_a_cache_that_does_not_cover_the_run_is_refused_naming_the_epoch(tmp_path):
    cfg = small_config(tmp_path)
    write_cache(tmp_path / 'cache', cfg)
    with pytest.raises(TeacherCacheError, match='covers epochs 0-1, this run trains TRAIN.EPOCHS 3: epoch 2'):
        CachedTeacher(str(tmp_path / 'cache'), small_config(tmp_path, **{'TRAIN.EPOCHS': 3}), 1, 0,
                      torch.device('cpu'))
    os.remove(tmp_path / 'cache' / 'epoch_0001_rank_0.pt')
    with pytest.raises(TeacherCacheError, match=r'no logits for epoch 1 on rank 0 \(epoch_0001_rank_0.pt\)'):
        CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, torch.device('cpu'))
    with pytest.raises(TeacherCacheError, match='no meta.json'):
        CachedTeacher(str(tmp_path), cfg, 1, 0, torch.device('cpu'))


def test_float16_overflow_is_an_error(tmp_path):
    cfg = small_config(tmp_path)
    writer = TeacherCacheWriter(str(tmp_path / 'cache'), cfg, 1, 0, 1)
    with pytest.raises(TeacherCacheError, match='exceed the float16 range.*--cache-dtype float32'):
        writer.write_epoch(0, [torch.full((2, 3), 1e5)], [torch.zeros(2, 16)])


# ------------------------------------------------------------------------------------------------
# End to end: main_KD.py as a user runs it, online against cached
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def kd_setup(tmp_path_factory):
    """Tiny data, a saved (random) tiny teacher, and a KD config with Mixup/CutMix on and 0 workers
    (today's input path replays exactly with 0 workers)."""
    tmp = tmp_path_factory.mktemp('kd')
    train, val, labels = make_dataset(tmp / 'data', num_classes=3, videos_per_class=4, num_frames=10,
                                      size=(40, 32), val_per_class=1)
    teacher_ckpt = save_tiny_teacher(tmp / 'teacher.pth')
    kd_cfg = write_config(tmp / 'kd.yaml', train, val, labels, 3, extra={
        'MODEL': {'NAME': 'student'}, 'TRAIN': {'EPOCHS': 2},
        'AUG': {'MIXUP': 0.8, 'CUTMIX': 1.0, 'MIXUP_SWITCH_PROB': 0.5},
        'TEST': {'EVAL_FREQ': 0}, 'KD': {'EVAL_TEACHER': False},
        'TEACHER_MODEL': teacher_section(teacher_ckpt)})
    return tmp, kd_cfg


def final_weights(output_root):
    return torch.load(os.path.join(run_dir(output_root), 'ckpt_epoch_1.pth'), weights_only=True)['model']


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.slow
# float16 rounding and the resume do not depend on the process count or NUM_SAMPLE: one case checks them.
@pytest.mark.parametrize('nproc, num_sample, dtypes, resume', [
    (0, 1, ('float32', 'float16'), True), (2, 1, ('float32',), False), (0, 2, ('float32',), False)],
    ids=['one process', 'torchrun x2', 'AUG.NUM_SAMPLE 2'])
def test_cached_distillation_ends_with_the_weights_of_online_distillation(kd_setup, nproc, num_sample,
                                                                          dtypes, resume):
    tmp, kd_cfg = kd_setup
    tmp = tmp / f'nproc{nproc}_sample{num_sample}'
    kd = ['main_KD.py', '--cfg', kd_cfg, '--opts', 'KD.ALPHA', '0.7', 'KD.TEMPERATURE', '4',
          'AUG.NUM_SAMPLE', str(num_sample)]
    run([*kd, '--output', str(tmp / 'online')], torchrun=nproc)
    online = final_weights(tmp / 'online')

    for dtype in dtypes:
        cache = str(tmp / f'cache_{dtype}')
        _, log = run([*kd, '--cache-teacher', cache, '--cache-dtype', dtype], torchrun=nproc)
        assert 'teacher cache complete' in log
        meta = json.load(open(os.path.join(cache, 'meta.json')))
        assert meta['dtype'] == dtype and meta['fingerprint']['world size'] == max(nproc, 1)
        shards = sorted(f for f in os.listdir(cache) if f.endswith('.pt'))
        assert shards == [f'epoch_{e:04d}_rank_{r}.pt' for e in range(2) for r in range(max(nproc, 1))]
        # The cached run names no teacher checkpoint: it neither builds nor loads the teacher.
        out = tmp / f'cached_{dtype}'
        _, log = run([*kd, 'KD.TEACHER_CACHE', cache, 'TEACHER_MODEL.PRETRAINED_PATH', '',
                      '--output', str(out)], torchrun=nproc)
        assert 'teacher logits replayed from a cache' in log and 'parameters) from' not in log
        assert re.search(r'Train: \[1/2\]\[\d+/\d+\].*loss_kd [\d.]+ .*loss_ce [\d.]+', log)
        diff = max_difference(final_weights(out), online)
        print(f'{dtype} cache, nproc {nproc}: max |cached - online| = {diff:.3g}')
        if dtype == 'float32':
            assert diff == 0.0  # the same teacher at the same precision: bit for bit
        else:
            assert diff <= 1e-5  # float16 rounding of the teacher's logits only
    if not resume:
        return
    # Resumed at epoch 1 from the cached run's own checkpoint: the replay follows the epoch.
    out = tmp / 'cached_float32'
    os.remove(os.path.join(run_dir(out), 'ckpt_epoch_1.pth'))
    _, log = run([*kd, 'KD.TEACHER_CACHE', str(tmp / 'cache_float32'), '--output', str(out)], torchrun=nproc)
    assert 'resumed from' in log
    assert max_difference(final_weights(out), online) == 0.0


@pytest.mark.slow
def test_main_kd_refuses_a_cache_made_under_other_settings(kd_setup, monkeypatch, capsys):
    tmp, kd_cfg = kd_setup
    cache = str(tmp / 'cache_bs')
    run(['main_KD.py', '--cfg', kd_cfg, '--cache-teacher', cache, 'TRAIN.EPOCHS', '1'])
    # The refusals are user errors, run in this process (seconds faster than a subprocess).
    rc = run_inline('main_KD.py', ['--cfg', kd_cfg, '--output', str(tmp / 'bs4'), 'KD.TEACHER_CACHE', cache,
                                   'DATA.BATCH_SIZE', '4', 'TRAIN.EPOCHS', '1'], monkeypatch)
    assert rc == 2
    assert f'teacher cache {cache} was made with DATA.BATCH_SIZE 2, this run has 4' in capsys.readouterr().err
    rc = run_inline('main_KD.py', ['--cfg', kd_cfg, '--output', str(tmp / 'ep2'), 'KD.TEACHER_CACHE', cache],
                    monkeypatch)
    err = capsys.readouterr().err
    assert rc == 2 and 'covers epochs 0-0, this run trains TRAIN.EPOCHS 2: epoch 1 is missing' in err
    # Extending the cache to 2 epochs keeps epoch 0 and adds epoch 1.
    _, log = run(['main_KD.py', '--cfg', kd_cfg, '--cache-teacher', cache])
    assert 'epoch 0: already in the cache' in log and 'epoch 1: 6 steps of teacher logits' in log
    # The worker count is not part of the fingerprint: every input draw is a function of (SEED,
    # epoch, sample), so 2 workers replay the inputs of a cache made with 0 (the probe checks it).
    run(['main_KD.py', '--cfg', kd_cfg, '--output', str(tmp / 'workers'), 'KD.TEACHER_CACHE', cache,
         'DATA.NUM_WORKERS', '2'])
