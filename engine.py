"""The one training loop and the multi-view evaluation, shared by main.py and main_KD.py."""
import contextlib
import datetime
import math
import resource
import time

import torch
import torch.nn.functional as F
from timm.utils import AverageMeter, accuracy

from utils.distributed import all_reduce_sum
from utils.errors import UserError


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops and the last checkpoint stays as it was."""


def amp_settings(level, device, dtype='float16'):
    """(autocast dtype or None, use GradScaler) for AMP_OPT_LEVEL and AMP_DTYPE on this device.

    O0: float32. O1/O2 on a GPU: float16 with a GradScaler (the published apex O1), or bfloat16
    without one; on CPU bfloat16 (CPU float16 autocast is slow and the recipe never ran there).
    """
    if level == 'O0':
        return None, False
    if dtype not in ('float16', 'bfloat16'):
        raise UserError(f"AMP_DTYPE must be 'float16' or 'bfloat16', got {dtype!r}")
    if device.type != 'cuda':
        return torch.bfloat16, False
    if dtype == 'bfloat16':
        if not torch.cuda.is_bf16_supported():
            raise UserError(f'AMP_DTYPE bfloat16: {torch.cuda.get_device_name(device)} does not support it; '
                            'use AMP_DTYPE float16')
        return torch.bfloat16, False
    return torch.float16, True


def autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_mb(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak RSS on Linux


def prepare_batch(batch, device, batch_augment=None, *, epoch, step):
    """The model's inputs and targets from a training loader batch, on the device.

    With `batch_augment` (datasets.build_batch_augment) the batch is (uint8 clips, labels, sample
    indices) and colour, normalisation and Mixup/CutMix happen here, keyed on (epoch, step, sample
    indices); without it the batch is ready (samples, targets). The training loop and main_KD.py's
    teacher-caching pass both go through it, so the cache sees exactly the student's inputs."""
    if batch_augment is None:
        samples, targets = batch[:2]
        return samples.to(device, non_blocking=True), targets.to(device, non_blocking=True)
    clips, labels, indices = batch
    return batch_augment(clips, labels, epoch=epoch, step=step, sample_indices=indices)


def train_one_epoch(model, criterion, loader, optimizer, lr_scheduler, scaler, epoch, *, device,
                    amp_dtype=None, batch_augment=None, accumulation_steps=1, clip_grad=0.0,
                    print_freq=10, num_epochs=1, logger=None):
    """One epoch; the LR schedule advances once per optimiser step. Returns averaged stats.

    With `batch_augment` (datasets.build_batch_augment) the loader yields (uint8 clips, labels,
    sample indices) and batch_augment(..., epoch=epoch, step=idx, sample_indices=...) makes the
    model input on the device; without it the loader yields ready (samples, targets)."""
    model.train()
    criterion.train()
    optimizer.zero_grad(set_to_none=True)
    num_steps = len(loader)
    steps_per_epoch = num_steps // accumulation_steps
    meters = {name: AverageMeter() for name in ('loss', 'grad_norm', 'time')}
    part_meters = {}
    start = end = time.time()
    for idx, batch in enumerate(loader):
        samples, targets = prepare_batch(batch, device, batch_augment, epoch=epoch, step=idx)

        is_step = (idx + 1) % accumulation_steps == 0
        # Micro-steps that do not step the optimiser skip DDP's gradient all-reduce.
        sync = contextlib.nullcontext() if is_step or not hasattr(model, 'no_sync') else model.no_sync()
        with sync:
            with autocast(device, amp_dtype):
                outputs = model(samples)
                loss, parts = criterion(samples, outputs, targets)
            # One device-to-host read per step for the loss and all its logged parts.
            loss_value, *part_values = torch.stack(
                [loss.detach().float(), *(part.float() for part in parts.values())]).tolist()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f'loss is {loss_value} at epoch {epoch} step {idx}/{num_steps}; stopping. '
                    'The last saved checkpoint is unchanged (try a lower TRAIN.BASE_LR or AMP off).')
            scaler.scale(loss / accumulation_steps).backward()

        if is_step:
            scaler.unscale_(optimizer)
            max_norm = clip_grad if clip_grad and clip_grad > 0 else float('inf')
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if lr_scheduler is not None:  # None: a constant LR (tests, benchmarks)
                # After optimiser step t (counted from 0) the LR is set for t, not t + 1, as the
                # published code's step_update(epoch * n + idx): step t runs at LR(t - 1), the first
                # two at LR(0).
                lr_scheduler.step_update(epoch * steps_per_epoch + (idx + 1) // accumulation_steps - 1)
            meters['grad_norm'].update(float(grad_norm))

        meters['loss'].update(loss_value, targets.size(0))
        for name, value in zip(parts, part_values):
            part_meters.setdefault(name, AverageMeter()).update(value, targets.size(0))
        meters['time'].update(time.time() - end)
        end = time.time()

        if logger and (idx % print_freq == 0 or idx == num_steps - 1):
            lr = optimizer.param_groups[0]['lr']
            eta = datetime.timedelta(seconds=int(meters['time'].avg * (num_steps - idx - 1)))
            part_text = ''.join(f'{name} {m.val:.4f} ({m.avg:.4f})\t' for name, m in part_meters.items())
            logger.info(
                f'Train: [{epoch}/{num_epochs}][{idx}/{num_steps}]\teta {eta} lr {lr:.6f}\t'
                f'time {meters["time"].val:.4f} ({meters["time"].avg:.4f})\t'
                f'loss {meters["loss"].val:.4f} ({meters["loss"].avg:.4f})\t{part_text}'
                f'grad_norm {meters["grad_norm"].val:.4f} ({meters["grad_norm"].avg:.4f})\t'
                f'mem {memory_mb(device):.0f}MB')
    if logger:
        logger.info(f'EPOCH {epoch} training takes {datetime.timedelta(seconds=int(time.time() - start))}; '
                    f'train loss {meters["loss"].avg:.4f}')
    stats = {'train_loss': meters['loss'].avg, 'lr': optimizer.param_groups[0]['lr'],
             'grad_norm': meters['grad_norm'].avg}
    stats.update({f'train_{name}': m.avg for name, m in part_meters.items()})
    return stats


@torch.no_grad()
def view_probs(model, views, *, device, amp_dtype=None, chunk_size=8):
    """float32 softmax (B, V, classes) of views (B, V, T, C, H, W), `chunk_size` clips per forward.
    evaluate() and predict.py score views with this one function."""
    B, V = views.shape[:2]
    flat = views.to(device, non_blocking=True).flatten(0, 1)
    probs = []
    for chunk in flat.split(chunk_size):
        with autocast(device, amp_dtype):
            probs.append(model(chunk).float().softmax(-1))
    return torch.cat(probs).view(B, V, -1)


@torch.no_grad()
def evaluate(model, loader, num_videos, num_classes, *, device, amp_dtype=None, chunk_size=8,
             logger=None, desc='Eval'):
    """Video-level top-1/top-5: the mean softmax over each video's views, every video counted once.

    The loader yields (views (B, V, T, C, H, W), labels, dataset indices); ranks hold disjoint shards.
    Scores and view counts are summed into per-video tensors and all-reduced, then checked.
    """
    model.eval()
    scores = torch.zeros(num_videos, num_classes, device=device, dtype=torch.float64)
    views_seen = torch.zeros(num_videos, device=device, dtype=torch.float64)
    labels = torch.zeros(num_videos, device=device, dtype=torch.float64)
    undecodable = torch.zeros(1, device=device, dtype=torch.float64)
    for views, target, index in loader:
        keep = index >= 0  # -1: a video that failed to decode under DATA.SKIP_BAD_VIDEOS
        if not keep.all():
            undecodable += (~keep).sum().item()
            views, target, index = views[keep], target[keep], index[keep]
            if not len(index):
                continue
        B, V = views.shape[:2]
        probs = view_probs(model, views, device=device, amp_dtype=amp_dtype, chunk_size=chunk_size)
        index = index.to(device)
        scores.index_add_(0, index, probs.sum(1).double())
        views_seen.index_add_(0, index, torch.full((B,), float(V), device=device, dtype=torch.float64))
        labels.index_add_(0, index, target.to(device).double())
    for t in (scores, views_seen, labels, undecodable):
        all_reduce_sum(t)

    num_views = int(views_seen.max().item()) if num_videos else 0
    seen = views_seen > 0
    bad = (seen & (views_seen != num_views)).nonzero().flatten().tolist()
    left_out = num_videos - int(seen.sum())
    if bad or left_out != int(undecodable.item()):
        raise RuntimeError(f'{desc}: {len(bad)} of {num_videos} videos did not get exactly '
                           f'{num_views} views (e.g. indices {bad[:5]}) or were never seen; the '
                           'validation sharding is wrong')
    if left_out and logger:
        logger.warning(f'{desc}: {left_out} of {num_videos} videos could not be decoded and are left out')
    scores, labels = scores[seen], labels[seen].long()
    num_videos -= left_out
    mean_probs = scores / num_views
    acc1, acc5 = (a.item() for a in accuracy(mean_probs, labels, topk=(1, 5)))
    loss = F.nll_loss(mean_probs.clamp_min(1e-12).log(), labels).item()
    if logger:
        logger.info(f'{desc}: {num_videos} videos x {num_views} views * Acc@1 {acc1:.3f} '
                    f'Acc@5 {acc5:.3f} loss {loss:.4f}')
    return {'acc1': acc1, 'acc5': acc5, 'loss': loss, 'num_videos': num_videos, 'num_views': num_views}
