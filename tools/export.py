"""Export the clip classifier of a config and checkpoint to ONNX, verified against PyTorch.

    python -m tools.export --cfg configs/ucf101/VFL-Net_kd.yaml --checkpoint CKPT --out dvfl-net.onnx [--video V]

The ONNX model takes `clips` float32 (batch, T, 3, S, S), normalised as in evaluation (T =
DATA.NUM_FRAMES, S = DATA.INPUT_SIZE, batch dynamic) and returns `logits` (batch, classes).
The export is checked with onnxruntime on real decoded clips (--video, else the first video of
DATA.VAL_FILE) at batch 1 and 3: a max abs logit difference above 1e-4 fails the export and the
file is removed. Then the CPU latency per clip of PyTorch eager and onnxruntime is printed.
--int8 also writes <out>.int8.onnx (onnxruntime static quantization, calibrated on the evaluation
views of --calib-videos videos of DATA.TRAIN_FILE) and reports its top-1 agreement and logit
difference with PyTorch on --check-videos videos of DATA.VAL_FILE, and its latency beside fp32.
`python -m tools.eval_onnx` scores either file as main.py --eval scores a checkpoint.
`python -m tools.predict --onnx` runs the exported file. The library is models/deploy.py.
"""
import os

import torch

from config import load_config_file
from datasets import list_clips, load_test_clip, read_annotations
from models import build_model
from models.deploy import (QUANT_FORMATS, TOLERANCE, OnnxError, check_export, export_int8, export_onnx, load_onnx,
                           median_latency, require_lists)
from utils import cli
from utils.checkpoint import load_model_weights
from utils.errors import cli_main


def verification_clips(config, video=None):
    """Three real test clips (one crop each) of `video`, or of the first video of DATA.VAL_FILE."""
    if video is None:
        listed = config.DATA.VAL_FILE and os.path.isfile(config.DATA.VAL_FILE)
        if not listed:
            raise OnnxError('the export is checked on a real video: pass --video FILE, or set '
                            f'DATA.VAL_FILE to an annotation list (it is {config.DATA.VAL_FILE!r}, '
                            'which is not a file)')
        video = read_annotations(config.DATA.VAL_FILE, config.DATA.ROOT, config.MODEL.NUM_CLASSES)[0][0]
    clips, _ = load_test_clip(config, video, num_clip=3, num_crop=1)
    return clips, video


def main(argv=None):
    parser = cli.command_parser('python -m tools.export', __doc__)
    cli.add_config_args(parser)
    cli.add_weights_arg(parser)
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--video', help='video to verify the export on (default: first of DATA.VAL_FILE)')
    parser.add_argument('--runs', type=int, default=5, help='timed runs per engine (median; after 2 warm-up)')
    parser.add_argument('--int8', action='store_true',
                        help='also write the INT8 model (onnxruntime static quantization) as <out>.int8.onnx')
    parser.add_argument('--calib-videos', type=int, default=32, metavar='N',
                        help='--int8: videos of DATA.TRAIN_FILE calibrating it, in the evaluation views')
    parser.add_argument('--check-videos', type=int, default=32, metavar='N',
                        help='--int8: videos of DATA.VAL_FILE it is compared with PyTorch on')
    parser.add_argument('--quant-format', choices=QUANT_FORMATS, default='QOperator',
                        help='--int8: ONNX form (QOperator: QLinearConv / MatMulInteger; QDQ: '
                             'quantize-dequantize pairs)')
    parser.add_argument('--per-channel', action='store_true', help='--int8: a scale per output channel')
    args = cli.parse(parser, argv)

    config = load_config_file(args.cfg, args.opts)
    T, S = config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE
    clips, video = verification_clips(config, args.video)  # before exporting: fail early
    if args.int8:
        require_lists(config)
        if args.calib_videos < 1 or args.check_videos < 1:
            raise OnnxError(f'--calib-videos and --check-videos must be >= 1, got {args.calib_videos} '
                            f'and {args.check_videos}')
    model = build_model(config)
    load_model_weights(model, args.checkpoint)
    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export_onnx(model, T, S, args.out)
    onnx_model = load_onnx(args.out, T, S)
    diff = check_export(model, onnx_model, clips)
    size = os.path.getsize(args.out) / 2 ** 20
    print(f'wrote {args.out} ({size:.1f} MB): {config.MODEL.TYPE} ({config.MODEL.NAME}), input clips '
          f'(batch, {T}, 3, {S}, {S}), output logits (batch, {config.MODEL.NUM_CLASSES})')
    print(f'verified on {video} (batch 1 and {len(clips)}): max abs logit difference onnxruntime vs '
          f'PyTorch {diff:.3g} (<= {TOLERANCE:g})')
    clip = clips[:1]
    eager = median_latency(model, clip, runs=args.runs)
    ort_time = median_latency(onnx_model, clip, runs=args.runs)
    print(f'CPU latency per clip (batch 1, {torch.get_num_threads()} threads, median of {args.runs}): '
          f'PyTorch eager {eager * 1000:.1f} ms | onnxruntime {ort_time * 1000:.1f} ms | '
          f'ratio ort/eager {ort_time / eager:.2f}')
    if args.int8:
        print_int8(model, config, args, onnx_model, clip, eager)


def int8_path(out):
    return os.path.splitext(out)[0] + '.int8.onnx'


def print_int8(model, config, args, onnx_model, clip, eager):
    """Quantize, then report the INT8 model's distance to PyTorch and its latency beside fp32."""
    path = int8_path(args.out)
    calibration, calib_videos = list_clips(config, config.DATA.TRAIN_FILE, args.calib_videos)
    check, check_videos = list_clips(config, config.DATA.VAL_FILE, args.check_videos)
    r = export_int8(model, args.out, path, calibration, check, config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE,
                    config.DATA.BATCH_SIZE, args.quant_format, args.per_channel)
    print(f'wrote {path} ({os.path.getsize(path) / 2 ** 20:.1f} MB): INT8 {args.quant_format}'
          f'{" per-channel" if args.per_channel else ""}, calibrated on {len(calibration)} clips of '
          f'{calib_videos} videos of {config.DATA.TRAIN_FILE}')
    print(f'INT8 vs PyTorch on {len(check)} clips of {check_videos} videos of {config.DATA.VAL_FILE}: '
          f'top-1 agreement {100 * r["top1_agreement"]:.1f}%, max abs logit difference '
          f'{r["max_abs_diff"]:.3g} (largest logit {r["max_abs_logit"]:.3g})')
    fp32 = median_latency(onnx_model, clip, runs=args.runs)
    int8 = median_latency(r['int8'], clip, runs=args.runs)
    print(f'CPU latency per clip (batch 1): PyTorch eager {eager * 1000:.2f} ms | onnxruntime fp32 '
          f'{fp32 * 1000:.2f} ms | INT8 {int8 * 1000:.2f} ms | speed-up INT8 over fp32 {fp32 / int8:.2f}x')


if __name__ == '__main__':
    cli_main(main)
