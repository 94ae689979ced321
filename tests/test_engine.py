"""The shared loop's arithmetic: DDP equals one big batch, accumulation equals one big batch, the
schedule steps per optimiser step; checkpoint files are read safely and strictly."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from engine import amp_settings, evaluate, train_one_epoch
from tests.helpers.runs import tiny_batch as batch
from tests.helpers.runs import tiny_model
from utils.checkpoint import CheckpointError, load_model_weights, save_checkpoint
from utils.errors import UserError
from utils.losses import SupervisedLoss


class CountingScheduler:
    def __init__(self):
        self.updates = []

    def step_update(self, num_updates):
        self.updates.append(num_updates)


def step(model, loader, accumulation_steps=1):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    scheduler = CountingScheduler()
    scaler = torch.amp.GradScaler('cpu', enabled=False)
    train_one_epoch(model, SupervisedLoss(nn.CrossEntropyLoss()), loader, optimizer, scheduler, scaler,
                    epoch=0, device=torch.device('cpu'), accumulation_steps=accumulation_steps)
    return scheduler.updates


def test_amp_o1_is_float16_with_a_scaler_as_apex_o1_on_any_device():
    """AMP_DTYPE float16 (the recipe): autocast float16 + GradScaler, as the published apex O1, on
    CUDA and on a CPU alike; '' (the default) is float16 + GradScaler on CUDA and bfloat16 on a CPU.
    (The CUDA bfloat16 choice: test_cuda.py.)"""
    cuda, cpu = torch.device('cuda'), torch.device('cpu')
    for level in ('O1', 'O2'):
        assert amp_settings(level, cuda, '') == amp_settings(level, cuda, 'float16') == (torch.float16, True)
        assert amp_settings(level, cpu, 'float16') == (torch.float16, True)
        assert amp_settings(level, cpu, '') == amp_settings(level, cpu, 'bfloat16') == (torch.bfloat16, False)
    assert amp_settings('O0', cuda, 'bfloat16') == (None, False)
    with pytest.raises(UserError, match="AMP_DTYPE must be '', 'float16' or 'bfloat16', got 'fp16'"):
        amp_settings('O1', cpu, 'fp16')


def test_accumulation_two_micro_batches_equal_one_batch():
    x, y = batch(4)
    whole, accum = tiny_model(), tiny_model()
    assert step(whole, [(x, y)]) == [0]
    assert step(accum, [(x[:2], y[:2]), (x[2:], y[2:])], accumulation_steps=2) == [0]
    for (name, a), b in zip(whole.named_parameters(), accum.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_scheduler_advances_once_per_optimiser_step():
    """After optimiser step t (from 0) the schedule is set for t, as the published code's
    step_update(epoch * n + idx) after step idx."""
    x, y = batch(4)
    loader = [(x[:2], y[:2]), (x[2:], y[2:])] * 2
    assert step(tiny_model(), loader, accumulation_steps=2) == [0, 1]
    assert step(tiny_model(), loader, accumulation_steps=1) == [0, 1, 2, 3]


def _ddp_worker(rank, init_file, out_file, accumulation_steps):
    """This rank's half of batch(4), in one batch or in micro-batches of one."""
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    x, y = batch(4)
    model = nn.parallel.DistributedDataParallel(tiny_model())
    size = 2 // accumulation_steps
    mine = [(x[i:i + size], y[i:i + size]) for i in range(2 * rank, 2 * rank + 2, size)]
    step(model, mine, accumulation_steps=accumulation_steps)
    if rank == 0:
        torch.save(model.module.state_dict(), out_file)
    dist.destroy_process_group()


@pytest.mark.parametrize('accumulation_steps', [1, 2], ids=['one-batch', 'accumulation-2'])
def test_ddp_step_on_two_processes_equals_one_process_with_both_halves(tmp_path, accumulation_steps):
    out = tmp_path / 'ddp.pth'
    mp.spawn(_ddp_worker, args=(str(tmp_path / 'init'), str(out), accumulation_steps), nprocs=2)
    single = tiny_model()
    step(single, [batch(4)])
    ddp = torch.load(out, weights_only=True)
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp[name], value, atol=1e-6, rtol=1e-5, msg=name)


def test_evaluate_averages_softmax_over_views_per_video():
    """Two videos, two views each; the model is a lookup so the answer is known by hand."""
    class Lookup(nn.Module):
        def forward(self, clips):  # logits are the clip's first pixel values
            return clips[:, 0, :, 0, 0]

    logits = torch.tensor([[[3.0, 0, 0], [0, 0, 3.0]],    # video 0: views disagree
                           [[0, 2.0, 0], [0, 2.5, 0]]])   # video 1: class 1
    views = torch.zeros(2, 2, 1, 3, 1, 1)
    views[:, :, 0, :, 0, 0] = logits
    # Video 0's mean softmax ties classes 0 and 2; make view 0 slightly stronger.
    views[0, 0, 0, 0, 0, 0] = 3.1
    stats = evaluate(Lookup(), [(views, torch.tensor([0, 2]), torch.tensor([0, 1]))], num_videos=2,
                     num_classes=3, device=torch.device('cpu'))
    assert stats['acc1'] == 50.0 and stats['acc5'] == 100.0 and stats['num_views'] == 2


def test_evaluate_rejects_a_video_seen_twice():
    class Zeros(nn.Module):
        def forward(self, clips):
            return torch.zeros(clips.shape[0], 3)

    views = torch.zeros(1, 1, 1, 3, 1, 1)
    loader = [(views, torch.tensor([0]), torch.tensor([0]))] * 2 + [(views, torch.tensor([0]), torch.tensor([1]))]
    with pytest.raises(RuntimeError, match='did not get exactly'):
        evaluate(Zeros(), loader, num_videos=2, num_classes=3, device=torch.device('cpu'))


class Payload:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_checkpoint_needing_code_to_unpickle_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'model': tiny_model().state_dict(), 'extra': Payload()}, path)
    with pytest.raises(CheckpointError, match='evil.pth: refused to load'):
        load_model_weights(tiny_model(), str(path))


def test_truncated_checkpoint_names_the_file(tmp_path):
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    from config import get_config
    path = save_checkpoint(str(tmp_path), 3, model, opt, sched, torch.amp.GradScaler('cpu', enabled=False),
                           0.0, get_config())
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='ckpt_epoch_3.pth: cannot read'):
        load_model_weights(model, path)
    assert not any(p.endswith('.tmp') for p in os.listdir(tmp_path))


def test_head_size_mismatch_names_the_key(tmp_path):
    path = tmp_path / 'other.pth'
    other = tiny_model(num_classes=5)
    torch.save({'model': other.state_dict()}, path)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r'head.weight: checkpoint \(5, 64\) vs model \(3, 64\)'):
        load_model_weights(model, str(path))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_bare_and_wrapped_state_dicts_load(tmp_path):
    source = tiny_model()
    for i, content in enumerate([source.state_dict(), {'model': source.state_dict()},
                                 {f'module.{k}': v for k, v in source.state_dict().items()}]):
        torch.save(content, tmp_path / f'{i}.pth')
        model = tiny_model(seed=1)
        load_model_weights(model, str(tmp_path / f'{i}.pth'))
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))


def test_evaluate_leaves_out_undecodable_videos_and_says_so(caplog):
    """Index -1 marks a video that failed to decode under DATA.SKIP_BAD_VIDEOS."""
    import logging

    class Lookup(nn.Module):
        def forward(self, clips):
            return clips[:, 0, :, 0, 0]

    views = torch.zeros(2, 1, 1, 3, 1, 1)
    views[0, 0, 0, :, 0, 0] = torch.tensor([0, 5.0, 0])
    logger = logging.getLogger('eval-test')
    with caplog.at_level(logging.WARNING, logger='eval-test'):
        stats = evaluate(Lookup(), [(views, torch.tensor([1, 0]), torch.tensor([0, -1]))], num_videos=2,
                         num_classes=3, device=torch.device('cpu'), logger=logger)
    assert stats['num_videos'] == 1 and stats['acc1'] == 100.0
    assert '1 of 2 videos could not be decoded and are left out' in caplog.text
    # A video that is neither scored nor reported undecodable is a sharding error.
    with pytest.raises(RuntimeError, match='never seen'):
        evaluate(Lookup(), [(views[:1], torch.tensor([1]), torch.tensor([0]))], num_videos=2,
                 num_classes=3, device=torch.device('cpu'))
