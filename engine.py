"""The one training loop, the multi-view evaluation, and the run around them (`run`: data, model,
optimiser, criterion, epochs, checkpoints), shared by main.py, main_KD.py and tools.predict."""
import collections
import contextlib
import datetime
import itertools
import math
import os
import resource
import time

import torch
import torch.nn.functional as F
from timm.utils import AverageMeter, accuracy, random_seed
from torch.nn.parallel import DistributedDataParallel

from datasets import build_batch_augment, build_dataloader, build_val_loader, class_names, load_test_clip
from datasets.transforms import normalize
from models import build_model
from utils.checkpoint import find_latest_checkpoint, load_model_weights, resume_training, save_checkpoint
from utils.distributed import all_reduce_sum, cleanup, init_distributed
from utils.errors import ConfigValueError, UserError
from utils.logger import MetricsWriter, setup_logging
from utils.losses import SupervisedLoss, build_base_criterion
from utils.optim import build_optimizer, build_scheduler, scaled_lrs
from utils.report import eval_report


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops and the last checkpoint stays as it was."""


def amp_settings(level, device, dtype):
    """(autocast dtype or None, use GradScaler) for AMP_OPT_LEVEL and AMP_DTYPE on this device.

    O0: float32. O1/O2: 'float16' with a GradScaler (the published apex O1) on any device, so a CPU
    run takes the GPU recipe's path; 'bfloat16' without one; '' the device's default: float16 with a
    scaler on a GPU, bfloat16 on a CPU (where float16 matmuls have no fast kernels).
    """
    if level == 'O0':
        return None, False
    if dtype not in ('', 'float16', 'bfloat16'):
        raise UserError(f"AMP_DTYPE must be '', 'float16' or 'bfloat16', got {dtype!r}")
    if not dtype:
        dtype = 'float16' if device.type == 'cuda' else 'bfloat16'
    if dtype == 'bfloat16':
        if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
            raise UserError(f'AMP_DTYPE bfloat16: {torch.cuda.get_device_name(device)} does not support it; '
                            'use AMP_DTYPE float16')
        return torch.bfloat16, False
    return torch.float16, True


def configure_backends(config, device):
    """cuDNN and determinism settings for this process, the same for training and for main_KD.py's
    caching pass (so that the teacher runs the same kernels in both). DETERMINISTIC: no cuDNN
    autotuning, deterministic kernels (an op without one warns naming itself); otherwise cuDNN
    picks the fastest kernel per shape (cudnn.benchmark), which may differ from run to run."""
    if config.DETERMINISTIC:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # deterministic cuBLAS
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True


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
    model input on the device; without it the loader yields ready (samples, targets).

    Only whole optimiser steps are computed: the last len(loader) % accumulation_steps
    micro-batches would never step, so they are not drawn (the shuffle puts other clips there each
    epoch). The loss and its parts reach the host once per micro-batch, after its backward is
    queued. A step the GradScaler skips (inf/NaN gradients of float16) leaves the weights and the
    optimiser state alone, still advances the schedule (which counts steps as the published code)
    and is left out of the epoch's grad_norm; `skipped_steps` counts them."""
    model.train()
    criterion.train()
    optimizer.zero_grad(set_to_none=True)
    steps_per_epoch = len(loader) // accumulation_steps
    num_steps = steps_per_epoch * accumulation_steps  # micro-batches computed
    check = getattr(criterion, 'check', None)  # a criterion's own checks of its logged parts
    meters = {name: AverageMeter() for name in ('loss', 'time')}
    part_meters = {}
    norm_sum = torch.zeros((), device=device)  # over the steps taken, read once per log line
    norm_count = torch.zeros((), device=device)
    grad_norm = torch.full((), float('nan'))
    start = end = time.time()
    for idx, batch in enumerate(itertools.islice(loader, num_steps)):
        samples, targets = prepare_batch(batch, device, batch_augment, epoch=epoch, step=idx)

        is_step = (idx + 1) % accumulation_steps == 0
        # Micro-steps that do not step the optimiser skip DDP's gradient all-reduce.
        sync = contextlib.nullcontext() if is_step or not hasattr(model, 'no_sync') else model.no_sync()
        with sync:
            with autocast(device, amp_dtype):
                outputs = model(samples)
                loss, parts = criterion(samples, outputs, targets)
            scaler.scale(loss / accumulation_steps).backward()
        # One device-to-host read per micro-batch for the loss and all its logged parts, after the
        # backward is queued: the host does not wait for the forward before queueing it.
        loss_value, *part_values = torch.stack(
            [loss.detach().float(), *(part.float() for part in parts.values())]).tolist()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f'loss is {loss_value} at epoch {epoch} step {idx}/{num_steps}; stopping. '
                'The last saved checkpoint is unchanged (try a lower TRAIN.BASE_LR or AMP off).')
        if check is not None:
            check(dict(zip(parts, part_values)))

        if is_step:
            scaler.unscale_(optimizer)
            max_norm = clip_grad if clip_grad and clip_grad > 0 else float('inf')
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer)  # skipped when the unscaled gradients hold inf/NaN
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if lr_scheduler is not None:  # None: a constant LR (tests, benchmarks)
                # After optimiser step t (counted from 0) the LR is set for t, not t + 1, as the
                # published code's step_update(epoch * n + idx): step t runs at LR(t - 1), the first
                # two at LR(0).
                lr_scheduler.step_update(epoch * steps_per_epoch + (idx + 1) // accumulation_steps - 1)
            finite = grad_norm.isfinite()
            norm_sum += torch.where(finite, grad_norm, 0.0).to(norm_sum)
            norm_count += finite

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
                f'Train: [{epoch}/{num_epochs}][{idx}/{num_steps}]\teta {eta} lr {lr:.6g}\t'
                f'time {meters["time"].val:.4f} ({meters["time"].avg:.4f})\t'
                f'loss {meters["loss"].val:.4f} ({meters["loss"].avg:.4f})\t{part_text}'
                f'grad_norm {float(grad_norm):.4f} ({mean_norm(norm_sum, norm_count):.4f})\t'
                f'mem {memory_mb(device):.0f}MB')
    if logger:
        logger.info(f'EPOCH {epoch} training takes {datetime.timedelta(seconds=int(time.time() - start))}; '
                    f'train loss {meters["loss"].avg:.4f}')
    taken = int(norm_count)
    stats = {'train_loss': meters['loss'].avg, 'lr': optimizer.param_groups[0]['lr'],
             'grad_norm': mean_norm(norm_sum, norm_count) if taken else None,
             'skipped_steps': steps_per_epoch - taken}
    stats.update({f'train_{name}': m.avg for name, m in part_meters.items()})
    return stats


def mean_norm(norm_sum, norm_count):
    """The mean gradient norm of the optimiser steps taken (NaN before the first)."""
    count = float(norm_count)
    return float(norm_sum) / count if count else float('nan')


@torch.no_grad()
def view_probs(model, views, *, device, amp_dtype=None, chunk_size=8):
    """float32 softmax (B, V, classes) of views (B, V, T, C, H, W), `chunk_size` clips per forward.
    evaluate() and predict_video() score views with this one function."""
    B, V = views.shape[:2]
    flat = views.to(device, non_blocking=True).flatten(0, 1)
    probs = []
    for chunk in flat.split(chunk_size):
        with autocast(device, amp_dtype):
            probs.append(model(chunk).float().softmax(-1))
    return torch.cat(probs).view(B, V, -1)


@torch.no_grad()
def evaluate(model, loader, num_videos, num_classes, *, device, amp_dtype=None, chunk_size=8,
             logger=None, desc='Eval', report=None):
    """Video-level top-1/top-5: the mean softmax over each video's views, every video counted once.
    `report(mean_probs, labels)` (utils.report.write_report) gets the per-video scores of the videos seen.

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
    if report is not None:
        report(mean_probs, labels)
    if logger:
        logger.info(f'{desc}: {num_videos} videos x {num_views} views * Acc@1 {acc1:.3f} '
                    f'Acc@5 {acc5:.3f} loss {loss:.4f}')
    return {'acc1': acc1, 'acc5': acc5, 'loss': loss, 'num_videos': num_videos, 'num_views': num_views}


def predict_video(model, config, path, num_clip, num_crop, *, device, amp_dtype=None):
    """Mean softmax (float64, classes) over the views of one video file, decoded, cropped and scored
    as evaluate() scores a validation video (tools.predict)."""
    views, _ = load_test_clip(config, path, num_clip, num_crop)
    probs = view_probs(model, views[None], device=device, amp_dtype=amp_dtype,
                       chunk_size=config.DATA.BATCH_SIZE)
    return probs.sum(1).double()[0].cpu() / probs.shape[1]


def predict_stream(model, clips, *, device, amp_dtype=None, smooth=1):
    """(start, end, float64 probabilities) per clip of `clips` (datasets.stream.SlidingClips: uint8
    one-view clips of a stream), scored as evaluate() scores a view; with `smooth` > 1 the softmax
    is averaged over the last `smooth` windows (tools.predict --stream)."""
    recent = collections.deque(maxlen=smooth)
    for start, end, clip in clips:
        probs = view_probs(model, normalize(clip)[None, None], device=device, amp_dtype=amp_dtype)
        recent.append(probs[0, 0].double().cpu())
        yield start, end, sum(recent) / len(recent)


def begin_epoch(config, loader_train, epoch, rank):
    """Seed the epoch and hand it to the sampler, so a resumed run (and main_KD.py --cache-teacher)
    replays it."""
    random_seed(config.SEED + 1000 * epoch, rank)
    if hasattr(loader_train.sampler, 'set_epoch'):
        loader_train.sampler.set_epoch(epoch)


def run(config, build_criterion=None, test_model=None):
    """Wire data, model, optimiser and criterion, then train (or evaluate with EVAL_MODE).

    `build_criterion(config, base_criterion, ctx)` lets main_KD.py put a teacher into the loss; ctx
    holds device, logger, evaluate (a callable model -> stats on one view per video).
    `test_model(device)` gives EVAL_MODE the model to evaluate instead of MODEL.RESUME's checkpoint
    (tools.eval_onnx: an onnxruntime session, which runs in its own precision, without autocast).
    """
    with session(config.OUTPUT) as (rank, world_size, device, logger):
        return _run(config, build_criterion, rank, world_size, device, logger, test_model)


@contextlib.contextmanager
def session(folder):
    """(rank, world size, device, logger) of one command that writes into `folder`: the process
    group and this process's log tree. An exception that ends the command goes into the log file
    (the console gets it from cli_main or Python); the process group is torn down in any case."""
    rank, world_size, device = init_distributed()
    os.makedirs(folder, exist_ok=True)
    logger = setup_logging(folder, rank)
    try:
        yield rank, world_size, device, logger
    except Exception as err:
        logger.error(f'{type(err).__name__}: {err}', exc_info=not isinstance(err, UserError),
                     extra={'file_only': True})
        raise
    finally:
        cleanup()


def wrap_for_training(model, config, world_size, device, logger=None):
    """DDP over several processes, then torch.compile (TRAIN.COMPILE) of the wrapped model, as
    PyTorch's DDP notes do: the compiler sees DDP's gradient buckets and splits its graphs at them
    (DDPOptimizer), so the all-reduce of one bucket overlaps the backward of the next."""
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)
    if config.TRAIN.COMPILE:
        if logger:
            logger.info(f'TRAIN.COMPILE: torch.compile of the training model, backend '
                        f'{config.TRAIN.COMPILE_BACKEND} (compiles on the first steps)')
        model = torch.compile(model, backend=config.TRAIN.COMPILE_BACKEND)
    return model


def resume_schedule(lr_scheduler, start_epoch, steps_per_epoch, world_size, ckpt, logger=None):
    """Put the schedule (built for this run) at the start of `start_epoch` and say how the run
    differs from the one that saved `ckpt`. The schedule is a function of the step counted in this
    run's steps per epoch, and its LRs are scaled for this run's total batch, so a run resumed on
    another world size follows the same LR-against-epoch curve, re-scaled by the linear rule."""
    lr_before = [group['lr'] for group in lr_scheduler.optimizer.param_groups]
    lr_scheduler.step_update(start_epoch * steps_per_epoch - 1)  # the LR of the epoch's first step
    saved_world, saved_steps = ckpt.get('world_size'), ckpt.get('steps_per_epoch')
    saved_base = (ckpt.get('lr_scheduler') or {}).get('base_values') or lr_scheduler.base_values
    factor = lr_scheduler.base_values[0] / saved_base[0]
    if logger and (saved_world, saved_steps, factor) != (world_size, steps_per_epoch, 1.0):
        lr_now = lr_scheduler.optimizer.param_groups[0]['lr']
        logger.info(f'resumed on world size {world_size} (saved on {saved_world}), {steps_per_epoch} '
                    f'steps per epoch (saved: {saved_steps}): the LR curve continues at epoch '
                    f'{start_epoch}, re-scaled x{factor:g} for the total batch by the linear rule '
                    f'(LR {lr_before[0]:.6g} -> {lr_now:.6g})')


def _run(config, build_criterion, rank, world_size, device, logger, test_model=None):
    if rank == 0:
        with open(os.path.join(config.OUTPUT, 'config.yaml'), 'w') as f:
            f.write(config.dump())
    logger.info(f'output folder {config.OUTPUT}; world size {world_size}; device {device}')
    logger.info('config:\n' + config.dump())
    configure_backends(config, device)
    amp_dtype, use_scaler = amp_settings(config.AMP_OPT_LEVEL, device, config.AMP_DTYPE)
    logger.info(f'AMP {config.AMP_OPT_LEVEL}: autocast dtype {amp_dtype}, GradScaler {use_scaler}')

    random_seed(config.SEED)  # identical initial weights on every rank
    if config.EVAL_MODE and test_model is not None:
        model, amp_dtype = test_model(device), None
        logger.info(f'evaluating {model.path} (no autocast)')
    else:
        model = build_model(config).to(device)
        n_params = sum(p.numel() for p in model.parameters())
        logger.info(f'{config.MODEL.TYPE} ({config.MODEL.NAME}): {n_params / 1e6:.2f}M parameters')

    val_loaders = {}  # (num_clip, num_crop) -> (dataset, loader), built once, reused every epoch
    write = eval_report(config.OUTPUT, class_names(config), logger)

    def run_eval(net, num_clip, num_crop, desc, report=False):
        """report: also write the per-class report (utils/report.py) into the output folder."""
        if (num_clip, num_crop) not in val_loaders:
            val_loaders[num_clip, num_crop] = build_val_loader(config, num_clip, num_crop)
        dataset, loader = val_loaders[num_clip, num_crop]
        logger.info(f'{desc}: {len(dataset)} videos, {num_clip} clips x {num_crop} crops '
                    f'= {num_clip * num_crop} views per video')
        return evaluate(net, loader, len(dataset), config.MODEL.NUM_CLASSES, device=device,
                        amp_dtype=amp_dtype, chunk_size=config.DATA.BATCH_SIZE, logger=logger,
                        desc=desc, report=write if report and rank == 0 else None)

    if config.EVAL_MODE:
        if test_model is None:
            load_model_weights(model, config.MODEL.RESUME, logger)
        stats = run_eval(model, config.TEST.NUM_CLIP, config.TEST.NUM_CROP, 'Test', report=True)
        MetricsWriter(config.OUTPUT, rank == 0).write(
            {'final': True, 'checkpoint': getattr(model, 'path', config.MODEL.RESUME),
             **{f'test_{k}': v for k, v in stats.items()}})
        logger.info(f'evaluation results written to {config.OUTPUT} (log.jsonl, log_rank*.txt, config.yaml)')
        return stats

    dataset_train, dataset_test, loader_train, loader_test = build_dataloader(config)
    val_loaders[config.TEST.NUM_CLIP, config.TEST.NUM_CROP] = (dataset_test, loader_test)
    batch_augment = build_batch_augment(config, device, rank)
    accum = config.TRAIN.ACCUMULATION_STEPS
    steps_per_epoch = len(loader_train) // accum
    if steps_per_epoch == 0:
        raise ConfigValueError(f'{config.DATA.TRAIN_FILE}: {len(dataset_train)} training videos give no full '
                               f'optimiser step at batch {config.DATA.BATCH_SIZE} x {world_size} ranks x '
                               f'{accum} accumulation steps')
    base_lr, warmup_lr, min_lr = scaled_lrs(config, world_size)
    logger.info(f'LR scaled by batch {config.DATA.BATCH_SIZE} x world {world_size} x accumulation '
                f'{accum} / 512: base {base_lr:.3g}, warm-up {warmup_lr:.3g}, min {min_lr:.3g}')
    optimizer = build_optimizer(config, model, base_lr)
    lr_scheduler = build_scheduler(config, optimizer, steps_per_epoch, warmup_lr, min_lr)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    base_criterion = build_base_criterion(config, batch_augment.mixup is not None)
    if build_criterion is None:
        criterion = SupervisedLoss(base_criterion)
    else:
        ctx = dict(device=device, logger=logger,
                   evaluate=lambda net: run_eval(net, 1, 1, 'Teacher'))
        criterion = build_criterion(config, base_criterion, ctx)

    start_epoch, max_accuracy = config.TRAIN.START_EPOCH, 0.0
    resume = config.MODEL.RESUME
    latest = find_latest_checkpoint(config.OUTPUT) if config.TRAIN.AUTO_RESUME else None
    if latest:
        if resume and os.path.abspath(resume) != os.path.abspath(latest):
            logger.warning(f'auto-resume: {latest} is newer output of this run; it replaces --resume {resume}')
        resume = latest
    if resume:
        start_epoch, max_accuracy, ckpt = resume_training(resume, model, optimizer, scaler, logger)
        resume_schedule(lr_scheduler, start_epoch, steps_per_epoch, world_size, ckpt, logger)
        del ckpt
        if config.TRAIN.PRETRAINED_PATH:
            logger.info('TRAIN.PRETRAINED_PATH is not loaded: the resumed checkpoint has the weights')
    elif config.TRAIN.PRETRAINED_PATH:
        from models.pretrained import load_pretrained
        load_pretrained(model, config.TRAIN.PRETRAINED_PATH, logger, depth=config.TRAIN.PRETRAINED_DEPTH,
                        model_name=f'{config.MODEL.TYPE} ({config.MODEL.NAME})')

    model_without_ddp = model  # saved and evaluated: plain parameter names, eager
    model = wrap_for_training(model, config, world_size, device, logger)

    metrics = MetricsWriter(config.OUTPUT, rank == 0)
    for epoch in range(start_epoch, config.TRAIN.EPOCHS):
        begin_epoch(config, loader_train, epoch, rank)
        if hasattr(criterion, 'set_epoch'):  # a cached teacher follows the epoch
            criterion.set_epoch(epoch)
        record = {'epoch': epoch}
        record.update(train_one_epoch(
            model, criterion, loader_train, optimizer, lr_scheduler, scaler, epoch, device=device,
            amp_dtype=amp_dtype, batch_augment=batch_augment, accumulation_steps=accum,
            clip_grad=config.TRAIN.CLIP_GRAD, print_freq=config.PRINT_FREQ,
            num_epochs=config.TRAIN.EPOCHS, logger=logger))
        last = epoch == config.TRAIN.EPOCHS - 1
        if config.TEST.EVAL_FREQ and ((epoch + 1) % config.TEST.EVAL_FREQ == 0 or last):
            stats = run_eval(model_without_ddp, 1, 1, 'Val')
            max_accuracy = max(max_accuracy, stats['acc1'])
            record.update({f'val_{k}': stats[k] for k in ('acc1', 'acc5', 'loss')})
            logger.info(f'max top-1 so far: {max_accuracy:.2f}%')
        if rank == 0 and ((epoch + 1) % config.SAVE_FREQ == 0 or last):
            save_checkpoint(config.OUTPUT, epoch, model_without_ddp, optimizer, lr_scheduler, scaler,
                            max_accuracy, config, logger, world_size=world_size,
                            steps_per_epoch=steps_per_epoch)
        metrics.write(record)

    stats = run_eval(model_without_ddp, config.TEST.NUM_CLIP, config.TEST.NUM_CROP, 'Test', report=True)
    metrics.write({'final': True, **{f'test_{k}': v for k, v in stats.items()}})
    metrics.close()
    return stats
