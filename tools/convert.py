"""Convert FocalNet / Video-FocalNet weights of any supported layout into our checkpoint format.

    python -m tools.convert SRC DST --cfg CONFIG [--teacher] [--trust-source] [--opts KEY VALUE ...]

Builds the model the config describes (MODEL, or TEACHER_MODEL with --teacher), loads SRC exactly
as TRAIN.PRETRAINED_PATH would (so a download is checked once, with the same errors), and writes
DST as {'model': state_dict}. With --teacher the classifier head must come from SRC (a teacher
trained on the dataset). --trust-source is for files that need arbitrary code to unpickle
(e.g. a yacs config object stored next to the weights): use it only for files you trust.
"""
import argparse

import torch

from config import get_config, load_config_file
from models import build_model
from models.pretrained import load_pretrained
from utils import cli
from utils.checkpoint import atomic_write
from utils.errors import cli_main


def parse_args(argv=None):
    parser = cli.command_parser('python -m tools.convert', __doc__)
    parser.add_argument('src', help='checkpoint to read (official FocalNet, timm FocalNet or video)')
    parser.add_argument('dst', help='where to write {"model": state_dict}')
    parser.add_argument('--teacher', action='store_true', help='build TEACHER_MODEL instead of MODEL')
    parser.add_argument('--trust-source', action='store_true',
                        help='allow SRC to unpickle arbitrary objects (weights_only=False)')
    cli.add_config_args(parser, required=False)
    return cli.parse(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.cfg:
        config = load_config_file(args.cfg, args.opts)
    else:
        config = get_config(argparse.Namespace(opts=args.opts))
    node = config.TEACHER_MODEL if args.teacher else config.MODEL
    model = build_model(config, node)
    # A teacher is used frozen: its head must be the trained one, never a fresh init.
    load_pretrained(model, args.src, trusted=args.trust_source, require_head=args.teacher,
                    depth='exact' if args.teacher else config.TRAIN.PRETRAINED_DEPTH)
    atomic_write(args.dst, lambda f: torch.save({'model': model.state_dict()}, f))
    print(f'wrote {args.dst} for {node.TYPE} ({config.MODEL.NUM_CLASSES} classes, '
          f'{config.DATA.NUM_FRAMES} frames, tubelet {node.TUBELET_SIZE})')


if __name__ == '__main__':
    cli_main(main)
