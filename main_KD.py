"""Distil a frozen Video-FocalNet teacher into VFL-Net: main.py's wiring plus a teacher in the loss.

    torchrun --nproc_per_node 3 main_KD.py --cfg configs/ucf101/VFL-Net_kd.yaml --output output/ \\
        --opts DATA.NUM_FRAMES 8 KD.ALPHA 0.2 KD.BETA 0.3 KD.GAMMA 0.5 KD.TEMPERATURE 10
"""
import torch

from config import _C as DEFAULTS
from main import parse_option, run
from models import build_model
from utils.checkpoint import load_model_weights
from utils.losses import DistillationLoss


def build_teacher(config, device, logger):
    """The teacher of TEACHER_MODEL, loaded strictly (head included), frozen, in eval mode."""
    path = config.TEACHER_MODEL.PRETRAINED_PATH
    if not path:
        raise ValueError('main_KD.py needs a trained teacher: set TEACHER_MODEL.PRETRAINED_PATH to a '
                         'checkpoint of the teacher trained on this dataset (distilling from a random '
                         'teacher is never useful)')
    teacher = build_model(config, config.TEACHER_MODEL)
    load_model_weights(teacher, path, logger)  # strict: a head for another class count is an error
    teacher.requires_grad_(False)
    teacher.eval()
    n_params = sum(p.numel() for p in teacher.parameters())
    logger.info(f'teacher {config.TEACHER_MODEL.TYPE} ({n_params / 1e6:.2f}M parameters) from {path}')
    teacher = teacher.to(device)
    return torch.compile(teacher) if config.TRAIN.COMPILE else teacher


def build_distillation(config, base_criterion, ctx):
    logger = ctx['logger']
    teacher = build_teacher(config, ctx['device'], logger)
    if config.KD.EVAL_TEACHER:
        stats = ctx['evaluate'](teacher)
        logger.info(f"teacher top-1 {stats['acc1']:.2f}% top-5 {stats['acc5']:.2f}% (1 view per video)")
    for key in ('BETA', 'GAMMA'):
        if config.KD[key] != DEFAULTS.KD[key]:
            logger.warning(f'KD.{key} = {config.KD[key]} is accepted but unused: the paper\'s loss is '
                           'alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE')
    logger.info(f'distillation: alpha {config.KD.ALPHA}, temperature {config.KD.TEMPERATURE}')
    return DistillationLoss(base_criterion, teacher, config.KD.ALPHA, config.KD.TEMPERATURE)


if __name__ == '__main__':
    run(parse_option(__doc__)[1], build_criterion=build_distillation)
