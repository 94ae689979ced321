"""Train or evaluate one Video-FocalNet / VFL-Net model (single process or torchrun DDP).

    torchrun --nproc_per_node 3 main.py --cfg configs/ucf101/video-focalnet_base.yaml --output output/
    python main.py --eval --cfg configs/ucf101/VFL-Net.yaml --resume CKPT TEST.NUM_CLIP 4 TEST.NUM_CROP 3

--eval writes into its own folder, <checkpoint's folder or --output>/eval_<clips>x<crops>/, and
leaves the training run's files as they are.
"""
import argparse
import contextlib
import os

import torch
from timm.utils import random_seed
from torch.nn.parallel import DistributedDataParallel

from config import get_config
from datasets import build_batch_augment, build_dataloader, build_val_loader
from engine import amp_settings, evaluate, train_one_epoch
from models import build_model
from utils.checkpoint import (find_latest_checkpoint, load_model_weights, resume_training,
                              save_checkpoint)
from utils.distributed import cleanup, init_distributed
from utils.errors import UserError, cli_main
from utils.logger import MetricsWriter, setup_logging
from utils.losses import SupervisedLoss, build_base_criterion
from utils.optim import build_optimizer, build_scheduler, scaled_lrs


def parse_option(description=__doc__, argv=None, add_arguments=None):
    """(args, config); `add_arguments(parser)` lets main_KD.py add its own flags."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cfg', required=True, metavar='FILE', help='config file')
    parser.add_argument('--opts', nargs='+', metavar='KEY VALUE', help='config overrides')
    parser.add_argument('--batch-size', type=int, help='clips per GPU (DATA.BATCH_SIZE)')
    parser.add_argument('--resume', help='checkpoint to resume from, or to evaluate with --eval')
    parser.add_argument('--accumulation-steps', type=int, help='micro-batches per optimiser step')
    parser.add_argument('--use-checkpoint', action='store_true', help='gradient checkpointing')
    parser.add_argument('--amp-opt-level', choices=['O0', 'O1', 'O2'],
                        help='O0 float32; O1 torch.autocast in AMP_DTYPE (float16 + GradScaler, or '
                             'bfloat16); O2 is the same as O1')
    parser.add_argument('--output', metavar='PATH',
                        help='root of output folders (with --eval: where eval_<clips>x<crops>/ goes)')
    parser.add_argument('--pretrained', help='ImageNet FocalNet weights (TRAIN.PRETRAINED_PATH)')
    parser.add_argument('--eval', action='store_true',
                        help='only evaluate the --resume checkpoint, into <its folder>/eval_<clips>x<crops>/')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of user errors too (or set DVFL_DEBUG=1)')
    # torch.distributed.launch passes --local_rank (ignored); torchrun sets LOCAL_RANK, which
    # utils.distributed reads.
    parser.add_argument('--local_rank', '--local-rank', type=int, help=argparse.SUPPRESS)
    parser.add_argument('overrides', nargs='*', metavar='KEY VALUE',
                        help='more overrides, as with --opts (e.g. TEST.NUM_CLIP 4 TEST.NUM_CROP 3)')
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    return args, get_config(args)


def begin_epoch(config, loader_train, epoch, rank):
    """Seed the epoch and hand it to the sampler, so a resumed run (and main_KD.py --cache-teacher)
    replays it."""
    random_seed(config.SEED + 1000 * epoch, rank)
    if hasattr(loader_train.sampler, 'set_epoch'):
        loader_train.sampler.set_epoch(epoch)


def run(config, build_criterion=None):
    """Wire data, model, optimiser and criterion, then train (or evaluate with EVAL_MODE).

    `build_criterion(config, base_criterion, ctx)` lets main_KD.py put a teacher into the loss; ctx
    holds device, logger, evaluate (a callable model -> stats on one view per video).
    """
    with session(config.OUTPUT) as (rank, world_size, device, logger):
        return _run(config, build_criterion, rank, world_size, device, logger)


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


def _run(config, build_criterion, rank, world_size, device, logger):
    if rank == 0:
        with open(os.path.join(config.OUTPUT, 'config.yaml'), 'w') as f:
            f.write(config.dump())
    logger.info(f'output folder {config.OUTPUT}; world size {world_size}; device {device}')
    logger.info('config:\n' + config.dump())
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    amp_dtype, use_scaler = amp_settings(config.AMP_OPT_LEVEL, device, config.AMP_DTYPE)
    logger.info(f'AMP {config.AMP_OPT_LEVEL}: autocast dtype {amp_dtype}, GradScaler {use_scaler}')

    random_seed(config.SEED)  # identical initial weights on every rank
    model = build_model(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(f'{config.MODEL.TYPE} ({config.MODEL.NAME}): {n_params / 1e6:.2f}M parameters')

    val_loaders = {}  # (num_clip, num_crop) -> (dataset, loader), built once, reused every epoch

    def run_eval(net, num_clip, num_crop, desc):
        if (num_clip, num_crop) not in val_loaders:
            val_loaders[num_clip, num_crop] = build_val_loader(config, num_clip, num_crop)
        dataset, loader = val_loaders[num_clip, num_crop]
        logger.info(f'{desc}: {len(dataset)} videos, {num_clip} clips x {num_crop} crops '
                    f'= {num_clip * num_crop} views per video')
        return evaluate(net, loader, len(dataset), config.MODEL.NUM_CLASSES, device=device,
                        amp_dtype=amp_dtype, chunk_size=config.DATA.BATCH_SIZE, logger=logger,
                        desc=desc)

    if config.EVAL_MODE:
        load_model_weights(model, config.MODEL.RESUME, logger)
        stats = run_eval(model, config.TEST.NUM_CLIP, config.TEST.NUM_CROP, 'Test')
        MetricsWriter(config.OUTPUT, rank == 0).write(
            {'final': True, 'checkpoint': config.MODEL.RESUME, **{f'test_{k}': v for k, v in stats.items()}})
        logger.info(f'evaluation results written to {config.OUTPUT} (log.jsonl, log_rank*.txt, config.yaml)')
        return stats

    dataset_train, dataset_test, loader_train, loader_test = build_dataloader(config)
    val_loaders[config.TEST.NUM_CLIP, config.TEST.NUM_CROP] = (dataset_test, loader_test)
    batch_augment = build_batch_augment(config, device, rank)
    accum = config.TRAIN.ACCUMULATION_STEPS
    steps_per_epoch = len(loader_train) // accum
    if steps_per_epoch == 0:
        raise ValueError(f'{config.DATA.TRAIN_FILE}: {len(dataset_train)} training videos give no full '
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
        start_epoch, max_accuracy = resume_training(resume, model, optimizer, lr_scheduler, scaler, logger)
        if config.TRAIN.PRETRAINED_PATH:
            logger.info('TRAIN.PRETRAINED_PATH is not loaded: the resumed checkpoint has the weights')
    elif config.TRAIN.PRETRAINED_PATH:
        from models.pretrained import load_pretrained
        load_pretrained(model, config.TRAIN.PRETRAINED_PATH, logger, depth=config.TRAIN.PRETRAINED_DEPTH,
                        model_name=f'{config.MODEL.TYPE} ({config.MODEL.NAME})')

    model_without_ddp = model  # saved and evaluated: plain parameter names, eager
    if config.TRAIN.COMPILE:
        logger.info(f'TRAIN.COMPILE: torch.compile of the training model, backend '
                    f'{config.TRAIN.COMPILE_BACKEND} (compiles on the first steps)')
        model = torch.compile(model, backend=config.TRAIN.COMPILE_BACKEND)  # before DDP, as timm does
    if world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)

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
                            max_accuracy, config, logger)
        metrics.write(record)

    stats = run_eval(model_without_ddp, config.TEST.NUM_CLIP, config.TEST.NUM_CROP, 'Test')
    metrics.write({'final': True, **{f'test_{k}': v for k, v in stats.items()}})
    metrics.close()
    return stats


def main():
    run(parse_option()[1])


if __name__ == '__main__':
    cli_main(main)
