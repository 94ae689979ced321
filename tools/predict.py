"""Top-k classes of video files under a trained model (a checkpoint, or an ONNX file from tools.export).

    python -m tools.predict --cfg configs/ucf101/VFL-Net_kd.yaml --checkpoint CKPT video1.avi video2.mp4
    python -m tools.predict --cfg configs/ucf101/VFL-Net_kd.yaml --onnx dvfl-net.onnx --views 4x3 --json *.avi

A video's probabilities are the mean softmax over its views (clips x crops, default TEST.NUM_CLIP x
TEST.NUM_CROP), decoded and scored exactly as in evaluation (main.py --eval), with the config's
AMP_OPT_LEVEL and AMP_DTYPE for a checkpoint (an ONNX model runs in float32). Class names come from
DATA.LABEL_LIST. A video that cannot be decoded is reported by name and the others are still
predicted; the exit status is then 1.

--stream VIDEO reads one long video or live stream (whatever PyAV opens) in order and predicts a
sliding window of --window frames every --stride frames, each window sampled and cropped as the
evaluation's one-view test of a video that long (datasets/stream.py): one line per window (start
and end time, top class, probability), the real-time factor at the end; --smooth K averages the
last K windows; --json prints one JSON object per line.
"""
import argparse
import json
import sys
import time

import torch

from config import load_config_file
from datasets import VideoDecodeError, read_label_list
from datasets.loader import frame_sampling
from datasets.stream import SlidingClips
from engine import amp_settings, predict_stream, predict_video
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
    parser.add_argument('--stream', action='store_true',
                        help='VIDEO is one long video or live stream (any PyAV source): predict a sliding window')
    parser.add_argument('--stride', type=int, default=8, metavar='FRAMES', help='--stream: frames between predictions')
    parser.add_argument('--window', type=int, metavar='FRAMES',
                        help='--stream: frames a prediction looks at (default DATA.NUM_FRAMES x AUG.FRAME_INTERVAL)')
    parser.add_argument('--smooth', type=int, default=1, metavar='K',
                        help='--stream: average the probabilities of the last K windows')
    parser.add_argument('--stream-format', metavar='FMT', help='--stream: PyAV input format (e.g. v4l2 for a camera)')
    args = cli.parse(parser, argv)
    if args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}')
    for name in ('stride', 'smooth', 'window'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.stream and len(args.videos) != 1:
        parser.error(f'--stream reads one video or stream, got {len(args.videos)}')
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
    if args.stream:
        return predict_live(model, config, args, names, device, amp_dtype)
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


def predict_live(model, config, args, names, device, amp_dtype):
    """--stream: one line (or JSON object) per window, then the real-time factor: seconds of video
    per second of the whole loop (decoding, cropping and the model)."""
    window = args.window or config.DATA.NUM_FRAMES * config.AUG.FRAME_INTERVAL
    clips = SlidingClips(args.videos[0], config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE, window,
                         args.stride, frame_sampling(config), args.stream_format)
    start_time, windows = time.perf_counter(), 0
    for start, end, probs in predict_stream(model, clips, device=device, amp_dtype=amp_dtype, smooth=args.smooth):
        windows += 1
        prob, top = probs.max(0)
        if args.json:
            print(json.dumps({'start': round(start, 3), 'end': round(end, 3), 'class': names[top],
                              'id': int(top), 'prob': float(prob)}), flush=True)
        else:
            print(f'{start:9.2f} - {end:9.2f} s  {names[top]:<32} {prob:.4f}', flush=True)
    elapsed = time.perf_counter() - start_time
    summary = {'windows': windows, 'frames': clips.frames, 'window': window, 'stride': args.stride,
               'video_seconds': clips.seconds if clips.frames else 0.0, 'compute_seconds': elapsed}
    summary['real_time_factor'] = summary['video_seconds'] / elapsed
    if args.json:
        print(json.dumps({'summary': summary}))
    else:
        print(f'{windows} windows of {window} frames every {args.stride} over {summary["video_seconds"]:.1f} s '
              f'of video in {elapsed:.1f} s: real-time factor {summary["real_time_factor"]:.2f}')
    if not windows:
        print(f'error: {args.videos[0]}: {clips.frames} frames, fewer than one window of {window}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    cli_main(main)
