"""Optimiser and per-iteration learning-rate schedule, with the recipe's linear LR scaling."""
import torch
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler, PolyLRScheduler, StepLRScheduler


def scaled_lrs(config, world_size):
    """(base, warmup, min) LRs scaled by batch * world_size * accumulation / 512."""
    factor = config.DATA.BATCH_SIZE * world_size * config.TRAIN.ACCUMULATION_STEPS / 512.0
    return (config.TRAIN.BASE_LR * factor, config.TRAIN.WARMUP_LR * factor,
            config.TRAIN.MIN_LR * factor)


def build_optimizer(config, model, lr):
    """SGD (Nesterov momentum, as the original) or AdamW; no weight decay on 1-D params and biases."""
    skip = model.no_weight_decay() if hasattr(model, 'no_weight_decay') else ()
    params = param_groups_weight_decay(model, config.TRAIN.WEIGHT_DECAY, no_weight_decay_list=skip)
    opt = config.TRAIN.OPTIMIZER
    name = opt.NAME.lower()
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr, momentum=opt.MOMENTUM, nesterov=True)
    if name == 'adamw':
        return torch.optim.AdamW(params, lr=lr, eps=opt.EPS, betas=tuple(opt.BETAS))
    raise ValueError(f"TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got '{opt.NAME}'")


def build_scheduler(config, optimizer, steps_per_epoch, warmup_lr, min_lr):
    """timm scheduler counted in optimiser steps (call `step_update(num_updates)` after each)."""
    warmup = config.TRAIN.WARMUP_EPOCHS * steps_per_epoch
    main = max(config.TRAIN.EPOCHS * steps_per_epoch - warmup, 1)
    common = dict(warmup_t=warmup, warmup_lr_init=warmup_lr, warmup_prefix=True, t_in_epochs=False)
    name = config.TRAIN.LR_SCHEDULER.NAME.lower()
    if name == 'cosine':
        return CosineLRScheduler(optimizer, t_initial=main, lr_min=min_lr, cycle_limit=1, **common)
    if name == 'linear':
        return PolyLRScheduler(optimizer, t_initial=main, power=1.0, lr_min=min_lr, **common)
    if name == 'step':
        decay = config.TRAIN.LR_SCHEDULER.DECAY_EPOCHS * steps_per_epoch
        return StepLRScheduler(optimizer, decay_t=decay, decay_rate=config.TRAIN.LR_SCHEDULER.DECAY_RATE,
                               **common)
    raise ValueError(f"TRAIN.LR_SCHEDULER.NAME must be cosine, linear or step, got '{name}'")
