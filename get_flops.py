"""Parameters and GFLOPs (fvcore: one multiply-add = one flop) of the model a config builds.

    python get_flops.py --cfg configs/ucf101/VFL-Net.yaml [--teacher] [--opts KEY VALUE ...]
"""

from config import load_config_file
from models import build_model
from models.flops import count
from utils import cli
from utils.errors import cli_main


def main(argv=None):
    parser = cli.command_parser('python get_flops.py', __doc__)
    cli.add_config_args(parser)
    parser.add_argument('--teacher', action='store_true', help='profile TEACHER_MODEL instead of MODEL')
    args = cli.parse(parser, argv)
    config = load_config_file(args.cfg, args.opts)
    node = config.TEACHER_MODEL if args.teacher else config.MODEL
    model = build_model(config, node)
    params, gflops, unsupported = count(model, config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE)
    print(f'model: {node.TYPE} ({node.NAME}), {config.MODEL.NUM_CLASSES} classes, input 1 x '
          f'{config.DATA.NUM_FRAMES} x 3 x {config.DATA.INPUT_SIZE} x {config.DATA.INPUT_SIZE}')
    print(f'params: {params / 1e6:.1f}M ({params:,})')
    print(f'GFLOPs: {gflops:.1f}')
    if unsupported:
        print('not counted by fvcore (elementwise or cheap ops): '
              + ', '.join(f'{op} x{n}' for op, n in sorted(unsupported.items())))
    return params, gflops


if __name__ == '__main__':
    cli_main(main)
