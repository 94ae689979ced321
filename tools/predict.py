"""Top-k classes of video files under a trained model (a checkpoint, or an ONNX file from tools.export).

    python -m tools.predict --cfg configs/ucf101/VFL-Net_kd.yaml --checkpoint CKPT video1.avi video2.mp4
    python -m tools.predict --cfg configs/ucf101/VFL-Net_kd.yaml --onnx dvfl-net.onnx --views 4x3 --json *.avi

A video's probabilities are the mean softmax over its views (clips x crops, default TEST.NUM_CLIP x
TEST.NUM_CROP), decoded and scored exactly as in evaluation (main.py --eval), with the config's
AMP_OPT_LEVEL and AMP_DTYPE for a checkpoint (an ONNX model runs in float32). Class names come from
DATA.LABEL_LIST. A video that cannot be decoded is reported by name and the others are still
predicted; the exit status is then 1.
"""
import argparse
import json
import sys

import torch

from config import load_config_file
from datasets import VideoDecodeError, read_label_list
from engine import amp_settings, predict_video
from models import build_model
from models.deploy import load_onnx
from utils import cli
from utils.checkpoint import load_model_weights
from utils.errors import UserError, cli_main


def parse_views(text):
    """'4x3' -> (4, 3): temporal clips x spatial crops (1 or 3)."""
    try:
        clips, crops = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--views expects CLIPSxCROPS such as 4x3, got {text!r}') from None
    if clips < 1 or crops not in (1, 3):
        raise argparse.ArgumentTypeError(f'--views {text}: clips must be >= 1 and crops 1 or 3')
    return clips, crops


def parse_args(argv=None):
    parser = cli.command_parser('python -m tools.predict', __doc__)
    cli.add_config_args(parser)
    model = parser.add_mutually_exclusive_group(required=True)
    cli.add_weights_arg(parser, required=False, group=model)
    model.add_argument('--onnx', metavar='FILE', help='ONNX model written by tools.export (onnxruntime)')
    parser.add_argument('videos', nargs='+', metavar='VIDEO', help='video files')
    parser.add_argument('--views', type=parse_views, metavar='CLIPSxCROPS',
                        help='views per video (default: TEST.NUM_CLIP x TEST.NUM_CROP of the config)')
    parser.add_argument('--topk', type=int, default=5, help='classes to print per video')
    parser.add_argument('--json', action='store_true', help='print a JSON list instead of text')
    parser.add_argument('--device', choices=['cpu', 'cuda'],
                        help='default: cuda when available (with --onnx: to onnxruntime), else cpu')
    args = cli.parse(parser, argv)
    if args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}')
    return args


def default_device(onnx):
    """cuda when available (for an ONNX model: when onnxruntime can run on it), else cpu."""
    if onnx:
        import onnxruntime

        return 'cuda' if 'CUDAExecutionProvider' in onnxruntime.get_available_providers() else 'cpu'
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def load_classifier(config, args, device):
    """(model callable on clip batches, autocast dtype) from --checkpoint or --onnx."""
    if args.onnx:
        return load_onnx(args.onnx, config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE, device.type), None
    model = build_model(config)
    load_model_weights(model, args.checkpoint)
    return model.to(device).eval(), amp_settings(config.AMP_OPT_LEVEL, device, config.AMP_DTYPE)[0]


def main(argv=None):
    args = parse_args(argv)
    config = load_config_file(args.cfg, args.opts)
    if not config.DATA.LABEL_LIST:
        raise UserError(f'{args.cfg}: DATA.LABEL_LIST is not set; tools.predict names classes from it')
    names = read_label_list(config.DATA.LABEL_LIST, config.MODEL.NUM_CLASSES)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise UserError('--device cuda: no CUDA device is available')
    device = torch.device(args.device or default_device(args.onnx))
    model, amp_dtype = load_classifier(config, args, device)
    num_clip, num_crop = args.views or (config.TEST.NUM_CLIP, config.TEST.NUM_CROP)
    topk = min(args.topk, len(names))

    results, failed = [], 0
    for path in args.videos:
        try:
            probs = predict_video(model, config, path, num_clip, num_crop, device=device, amp_dtype=amp_dtype)
        except VideoDecodeError as err:
            failed += 1
            results.append({'video': path, 'error': str(err)})
            print(f'error: cannot decode {err}', file=sys.stderr)
            continue
        top = probs.topk(topk)
        results.append({'video': path, 'views': num_clip * num_crop, 'top': [
            {'class': names[i], 'id': i, 'prob': p} for p, i in zip(top.values.tolist(), top.indices.tolist())]})
        if not args.json:
            print(f'{path} ({num_clip} clips x {num_crop} crops)')
            for rank, entry in enumerate(results[-1]['top'], 1):
                print(f'  {rank}. {entry["class"]:<32} {entry["prob"]:.4f}')
    if args.json:
        print(json.dumps(results, indent=1))
    if failed:
        print(f'{failed} of {len(args.videos)} videos could not be decoded', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    cli_main(main)
