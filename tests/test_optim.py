"""utils/optim.py and the loop's optimiser step: LR scaling, the recipe's schedule, parameter groups,
gradient clipping (DDP with accumulation: tests/test_engine.py)."""
import math

import torch
import torch.nn as nn

from config import load_config_file
from engine import train_one_epoch
from tests.helpers.runs import tiny_batch as batch
from tests.helpers.runs import tiny_model
from utils.losses import SupervisedLoss
from utils.optim import build_optimizer, build_scheduler, scaled_lrs

RECIPE = 'configs/ucf101/VFL-Net.yaml'


def test_lr_scaling_by_batch_world_and_accumulation():
    cfg = load_config_file(RECIPE, ['DATA.BATCH_SIZE', '8', 'TRAIN.ACCUMULATION_STEPS', '2'])
    base, warmup, minimum = scaled_lrs(cfg, world_size=3)
    factor = 8 * 3 * 2 / 512
    assert (base, warmup, minimum) == (0.1 * factor, 0.001 * factor, 0.001 * factor)
    assert scaled_lrs(load_config_file(RECIPE), 3)[0] == 0.1 * 24 / 512  # the paper: 3 GPUs x 8


def test_cosine_schedule_over_all_steps_with_overlapping_warmup():
    """The recipe: 120 epochs, 20 warm-up, per step; LR at a few steps vs the closed form."""
    cfg = load_config_file(RECIPE)
    steps = 10
    base, warmup_lr, min_lr = 0.3, 0.003, 0.002
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=base)
    sched = build_scheduler(cfg, opt, steps, warmup_lr, min_lr)
    total, warm = 120 * steps, 20 * steps

    def expected(t):
        if t < warm:
            return warmup_lr + t * (base - warmup_lr) / warm
        return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * min(t, total) / total))

    for t in (0, 1, 100, 199, 200, 201, 600, 1000, 1199, 1200, 1300):
        sched.step_update(t)
        assert math.isclose(opt.param_groups[0]['lr'], expected(t), rel_tol=1e-9), t
    # The warm-up overlaps the decay: at its end the LR is already below base (cos(pi/6) < 1).
    sched.step_update(200)
    assert opt.param_groups[0]['lr'] < base * 0.94


def test_each_step_runs_at_the_lr_the_published_loop_gives_it():
    """The published loop calls step_update(epoch * n + idx) after step idx: global step t runs at
    LR(t - 1) (the first two at LR(0) = WARMUP_LR), across epoch boundaries too."""
    cfg = load_config_file(RECIPE, ['TRAIN.EPOCHS', '3', 'TRAIN.WARMUP_EPOCHS', '1'])
    steps, base, warmup_lr, min_lr = 4, 0.02, 0.002, 0.001
    total, warm = 3 * steps, steps
    model = tiny_model()
    optimizer = build_optimizer(cfg, model, base)
    sched = build_scheduler(cfg, optimizer, steps, warmup_lr, min_lr)
    used = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]['lr']))
    for epoch in range(3):
        train_one_epoch(model, SupervisedLoss(nn.CrossEntropyLoss()), [batch(2)] * steps, optimizer, sched,
                        torch.amp.GradScaler('cpu', enabled=False), epoch, device=torch.device('cpu'))

    def lr(t):  # timm's warm-up and cosine, warmup_prefix off
        if t < warm:
            return warmup_lr + t * (base - warmup_lr) / warm
        return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * t / total))

    assert len(used) == total
    for t, got in enumerate(used):
        assert math.isclose(got, lr(max(t - 1, 0)), rel_tol=1e-9), t
    assert used[0] == used[1] == warmup_lr
    assert math.isclose(used[4], warmup_lr + 3 * (base - warmup_lr) / 4)  # epoch 1, step 0: LR(3)
    assert math.isclose(used[5], min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * 4 / 12)))


def test_no_decay_by_default_and_the_usual_groups_when_decay_is_on():
    model = tiny_model()
    cfg = load_config_file(RECIPE)
    assert cfg.TRAIN.WEIGHT_DECAY == 0.0
    groups = build_optimizer(cfg, model, 0.1).param_groups
    assert [g['weight_decay'] for g in groups] == [0.0]
    assert sum(len(g['params']) for g in groups) == len(list(model.parameters()))
    assert groups[0]['nesterov'] and groups[0]['momentum'] == 0.9

    cfg = load_config_file(RECIPE, ['TRAIN.WEIGHT_DECAY', '0.05'])
    groups = build_optimizer(cfg, model, 0.1).param_groups
    decay = {id(p) for g in groups if g['weight_decay'] == 0.05 for p in g['params']}
    no_decay = {id(p) for g in groups if g['weight_decay'] == 0.0 for p in g['params']}
    names = dict((id(p), n) for n, p in model.named_parameters())
    assert decay | no_decay == set(names) and not decay & no_decay
    for pid, name in names.items():
        p = dict(model.named_parameters())[name]
        one_d = p.ndim <= 1 or name.endswith('.bias')
        assert (pid in no_decay) == one_d, name
    assert any('norm' in names[pid] for pid in no_decay)
    assert all(names[pid].endswith('weight') for pid in decay)


def test_gradient_is_clipped_at_train_clip_grad():
    """A large loss: the recorded norm is above CLIP_GRAD, the applied step is CLIP_GRAD long."""
    cfg = load_config_file(RECIPE)
    assert cfg.TRAIN.CLIP_GRAD == 5.0
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    lr = 0.01
    optimizer = build_optimizer(cfg, model, lr)

    class Scaled(SupervisedLoss):
        def forward(self, samples, outputs, targets):
            loss, parts = super().forward(samples, outputs, targets)
            return 1000 * loss, parts

    stats = train_one_epoch(model, Scaled(nn.CrossEntropyLoss()), [batch(4)], optimizer, None,
                            torch.amp.GradScaler('cpu', enabled=False), epoch=0, device=torch.device('cpu'),
                            clip_grad=cfg.TRAIN.CLIP_GRAD)
    assert stats['grad_norm'] > 5.0  # the norm before clipping
    delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])
    # First Nesterov SGD step: update = (1 + momentum) * clipped gradient.
    assert math.isclose(delta.norm().item(), lr * 1.9 * 5.0, rel_tol=1e-4)
