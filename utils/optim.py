"""Optimiser and per-iteration learning-rate schedule, with the recipe's linear LR scaling."""
import torch
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler, PolyLRScheduler, StepLRScheduler

from utils.errors import ConfigValueError


def scaled_lrs(config, world_size):
    """(base, warmup, min) LRs scaled by batch * world_size * accumulation / 512."""
    factor = config.DATA.BATCH_SIZE * world_size * config.TRAIN.ACCUMULATION_STEPS / 512.0
    return (config.TRAIN.BASE_LR * factor, config.TRAIN.WARMUP_LR * factor,
            config.TRAIN.MIN_LR * factor)


def parameter_groups(model, weight_decay):
    """One group without decay when weight_decay is 0 (the recipe: the published code's
    no_weight_decay_keywords() returned {''}, so nothing was decayed); otherwise timm's two groups,
    with norms, biases and other 1-D parameters not decayed."""
    if not weight_decay:
        return [{'params': [p for p in model.parameters() if p.requires_grad], 'weight_decay': 0.0}]
    return param_groups_weight_decay(model, weight_decay)


def build_optimizer(config, model, lr):
    """SGD (Nesterov momentum, as the original) or AdamW over `parameter_groups`."""
    params = parameter_groups(model, config.TRAIN.WEIGHT_DECAY)
    opt = config.TRAIN.OPTIMIZER
    name = opt.NAME.lower()
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr, momentum=opt.MOMENTUM, nesterov=True)
    if name == 'adamw':
        return torch.optim.AdamW(params, lr=lr, eps=opt.EPS, betas=tuple(opt.BETAS))
    raise ConfigValueError(f"TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got '{opt.NAME}'")


def build_scheduler(config, optimizer, steps_per_epoch, warmup_lr, min_lr):
    """timm scheduler counted in optimiser steps (call `step_update(num_updates)` after each).

    As the published code: the decay spans all EPOCHS and the linear warm-up overlaps its start
    (warmup_prefix off), so at step t >= warm-up the cosine LR is
    min + (base - min) * (1 + cos(pi * t / total)) / 2, with t counted from the first step.
    """
    warmup = config.TRAIN.WARMUP_EPOCHS * steps_per_epoch
    total = max(config.TRAIN.EPOCHS * steps_per_epoch, 1)
    common = dict(warmup_t=warmup, warmup_lr_init=warmup_lr, warmup_prefix=False, t_in_epochs=False)
    name = config.TRAIN.LR_SCHEDULER.NAME.lower()
    if name == 'cosine':
        return CosineLRScheduler(optimizer, t_initial=total, lr_min=min_lr, cycle_limit=1, **common)
    if name == 'linear':
        return PolyLRScheduler(optimizer, t_initial=total, power=1.0, lr_min=min_lr, **common)
    if name == 'step':
        decay = config.TRAIN.LR_SCHEDULER.DECAY_EPOCHS * steps_per_epoch
        return StepLRScheduler(optimizer, decay_t=decay, decay_rate=config.TRAIN.LR_SCHEDULER.DECAY_RATE,
                               **common)
    raise ConfigValueError(f"TRAIN.LR_SCHEDULER.NAME must be cosine, linear or step, got '{name}'")
