"""Distil a frozen Video-FocalNet teacher into VFL-Net: main.py's run (engine.run) plus a teacher in the loss.

    torchrun --nproc_per_node 3 main_KD.py --cfg configs/ucf101/VFL-Net_kd.yaml --output output/ \\
        --opts DATA.NUM_FRAMES 8 KD.ALPHA 0.2 KD.BETA 0.3 KD.GAMMA 0.5 KD.TEMPERATURE 10

With a cached teacher (several students from one teacher): record its logits once, then train
students from the recording, without the teacher in memory:

    torchrun --nproc_per_node 3 main_KD.py --cfg configs/ucf101/VFL-Net_kd.yaml --cache-teacher DIR
    torchrun --nproc_per_node 3 main_KD.py --cfg configs/ucf101/VFL-Net_kd.yaml --output output/ \\
        --opts KD.TEACHER_CACHE DIR KD.ALPHA 0.2
"""
import time

import torch
import torch.distributed as dist

from config import parse_option
from datasets import build_batch_augment, build_dataloader
from engine import amp_settings, autocast, begin_epoch, configure_backends, prepare_batch, run, session
from models import build_model
from utils.checkpoint import load_model_weights
from utils.distributed import get_rank, get_world_size, is_dist
from utils.errors import UserError, cli_main
from utils.losses import CachedDistillationLoss, DistillationLoss
from utils.teacher_cache import CachedTeacher, TeacherCacheWriter, describe, input_probe


def build_teacher(config, device, logger):
    """The teacher of TEACHER_MODEL, loaded strictly (head included), frozen, in eval mode."""
    path = config.TEACHER_MODEL.PRETRAINED_PATH
    if not path:
        raise UserError('main_KD.py needs a trained teacher: set TEACHER_MODEL.PRETRAINED_PATH to a '
                         'checkpoint of the teacher trained on this dataset (distilling from a random '
                         'teacher is never useful)')
    teacher = build_model(config, config.TEACHER_MODEL)
    load_model_weights(teacher, path, logger)  # strict: a head for another class count is an error
    teacher.requires_grad_(False)
    teacher.eval()
    n_params = sum(p.numel() for p in teacher.parameters())
    logger.info(f'teacher {config.TEACHER_MODEL.TYPE} ({n_params / 1e6:.2f}M parameters) from {path}')
    teacher = teacher.to(device)
    if config.TRAIN.COMPILE:
        return torch.compile(teacher, backend=config.TRAIN.COMPILE_BACKEND)
    return teacher


def build_distillation(config, base_criterion, ctx):
    logger = ctx['logger']
    if config.KD.TEACHER_CACHE:  # the teacher is not built: its logits are read per step
        teacher = CachedTeacher(config.KD.TEACHER_CACHE, config, get_world_size(), get_rank(), ctx['device'])
        logger.info(f'teacher logits replayed from a cache: {describe(config.KD.TEACHER_CACHE, teacher.meta)}')
        loss = CachedDistillationLoss
    else:
        teacher = build_teacher(config, ctx['device'], logger)
        if config.KD.EVAL_TEACHER:
            stats = ctx['evaluate'](teacher)
            logger.info(f"teacher top-1 {stats['acc1']:.2f}% top-5 {stats['acc5']:.2f}% (1 view per video)")
        loss = DistillationLoss
    for key in ('BETA', 'GAMMA'):
        if config.KD[key]:  # default 0
            logger.warning(f'KD.{key} = {config.KD[key]} is accepted but unused: the paper\'s loss is '
                           'alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE')
    logger.info(f'distillation: alpha {config.KD.ALPHA}, temperature {config.KD.TEMPERATURE}')
    return loss(base_criterion, teacher, config.KD.ALPHA, config.KD.TEMPERATURE)


def cache_teacher(config, cache_dir, dtype):
    """Run the frozen teacher over TRAIN.EPOCHS epochs of exactly the student's inputs (same loader,
    seeding and batch preparation as training) and store its logits per (epoch, step, rank)."""
    with session(cache_dir) as (rank, world_size, device, logger):
        _cache_teacher(config, cache_dir, dtype, rank, world_size, device, logger)


def _cache_teacher(config, cache_dir, dtype, rank, world_size, device, logger):
    if config.KD.TEACHER_CACHE:
        raise UserError('--cache-teacher writes a teacher cache and KD.TEACHER_CACHE reads one: pass one')
    configure_backends(config, device)  # the kernels of training's teacher forward
    amp_dtype, _ = amp_settings(config.AMP_OPT_LEVEL, device, config.AMP_DTYPE)
    _, _, loader_train, _ = build_dataloader(config)
    batch_augment = build_batch_augment(config, device, rank)
    writer = TeacherCacheWriter(cache_dir, config, world_size, rank, len(loader_train), dtype,
                                str(amp_dtype or torch.float32).replace('torch.', ''))
    if rank == 0:
        writer.write_meta()
    if is_dist():
        dist.barrier()
    logger.info(f'caching the teacher: {describe(cache_dir, writer.meta)}; world size {world_size}, '
                f'device {device}')
    teacher = build_teacher(config, device, logger)
    for epoch in range(config.TRAIN.EPOCHS):
        if writer.has_epoch(epoch):
            logger.info(f'epoch {epoch}: already in the cache')
            continue
        start = time.time()
        begin_epoch(config, loader_train, epoch, rank)
        logits, probes = [], []
        with torch.inference_mode():
            for step, batch in enumerate(loader_train):
                samples, _ = prepare_batch(batch, device, batch_augment, epoch=epoch, step=step)
                with autocast(device, amp_dtype):
                    logits.append(teacher(samples))
                probes.append(input_probe(samples))
        path = writer.write_epoch(epoch, logits, probes)
        seconds = time.time() - start
        logger.info(f'epoch {epoch}: {len(logits)} steps of teacher logits in {seconds:.1f}s '
                    f'({len(logits) * config.DATA.BATCH_SIZE / seconds:.1f} clips/s) -> {path}')
    if is_dist():
        dist.barrier()
    logger.info(f'teacher cache complete: {cache_dir}')


def add_cache_arguments(parser):
    parser.add_argument('--cache-teacher', metavar='DIR',
                        help='only run the teacher over TRAIN.EPOCHS epochs of the training inputs and '
                             'store its logits in DIR, for KD.TEACHER_CACHE DIR')
    parser.add_argument('--cache-dtype', choices=['float16', 'float32'], default='float16',
                        help='how --cache-teacher stores the logits (float32: bit-exact replay)')


def main():
    args, config = parse_option(__doc__, add_arguments=add_cache_arguments, prog='python main_KD.py')
    if args.cache_teacher:
        cache_teacher(config, args.cache_teacher, args.cache_dtype)
    else:
        run(config, build_criterion=build_distillation)


if __name__ == '__main__':
    cli_main(main)
