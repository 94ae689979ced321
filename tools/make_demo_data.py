"""Write the synthetic demo dataset (datasets/synthetic.py): six motion classes as real MP4 files.

    python -m tools.make_demo_data --out data/demo [--clips-per-class N --val-per-class N --size 40 --frames 16 --shake 10]

Writes `train/<class>/*.mp4`, `val/<class>/*.mp4`, `train.csv`, `val.csv` (`relative/path.mp4,label`)
and `labels.csv` (`id,name`) under --out; point DATA.ROOT, DATA.TRAIN_FILE, DATA.VAL_FILE and
DATA.LABEL_LIST at them (configs/demo/ and scripts/demo.sh do).
"""
import argparse
import time

from datasets.synthetic import CLASSES, DEFAULT_CLASSES, generate
from utils import cli
from utils.errors import UserError, cli_main


def _size_arg(text):
    try:
        if 'x' in text:
            width, height = (int(v) for v in text.split('x'))
            return height, width
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WIDTHxHEIGHT, got '{text}'") from None


def main(argv=None):
    parser = cli.command_parser('python -m tools.make_demo_data', __doc__)
    parser.add_argument('--out', required=True, help='output folder (DATA.ROOT)')
    parser.add_argument('--clips-per-class', type=int, default=100, help='training clips per class')
    parser.add_argument('--val-per-class', type=int, default=24, help='validation clips per class')
    parser.add_argument('--size', type=_size_arg, default=64, help='frame side N, or WIDTHxHEIGHT')
    parser.add_argument('--frames', type=int, default=16, help='frames per clip')
    parser.add_argument('--shake', type=int, default=0,
                        help="camera shake: each frame's largest random offset, in pixels")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=None,
                        help='encoding processes (default: one per usable CPU, at most 4)')
    parser.add_argument('--classes', nargs='+', default=list(DEFAULT_CLASSES), choices=CLASSES,
                        help='classes, in label order')
    args = cli.parse(parser, argv)
    start = time.time()
    try:
        paths = generate(args.out, args.clips_per_class, args.val_per_class, args.size,
                         args.frames, args.seed, args.classes, args.workers, args.shake)
    except ValueError as err:  # sizes, counts or a seed generate() cannot use
        raise UserError(str(err)) from None
    total = (args.clips_per_class + args.val_per_class) * len(args.classes)
    print(f'wrote {total} clips ({len(args.classes)} classes) to {args.out} in '
          f'{time.time() - start:.1f}s')
    for key, path in paths.items():
        print(f'  {key}: {path}')


if __name__ == '__main__':
    cli_main(main)
