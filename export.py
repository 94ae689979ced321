"""Export the clip classifier of a config and checkpoint to ONNX, verified against PyTorch.

    python export.py --cfg configs/ucf101/VFL-Net_kd.yaml --checkpoint CKPT --out dvfl-net.onnx [--video V]

The ONNX model takes `clips` float32 (batch, T, 3, S, S), normalised as in evaluation (T =
DATA.NUM_FRAMES, S = DATA.INPUT_SIZE, batch dynamic) and returns `logits` (batch, classes).
The export is checked with onnxruntime on real decoded clips (--video, else the first video of
DATA.VAL_FILE) at batch 1 and 3: a max abs logit difference above 1e-4 fails the export and the
file is removed. Then the CPU latency per clip of PyTorch eager and onnxruntime is printed.
`predict.py --onnx` runs the exported file.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

TOLERANCE = 1e-4  # max abs logit difference accepted between onnxruntime and PyTorch


class OnnxError(RuntimeError):
    """An ONNX file that cannot be loaded or used, or an export that does not match PyTorch."""


def export_onnx(model, num_frames, input_size, path):
    """torch.onnx.export (dynamo) of `model` in eval mode: input `clips`, output `logits`, dynamic batch.
    Weights are stored inside the file (a single file to ship; fine below protobuf's 2 GB)."""
    model.eval()
    example = torch.zeros(2, num_frames, 3, input_size, input_size)  # batch 2: not specialised to 1
    batch = torch.export.Dim('batch', min=1)
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, input_names=['clips'], output_names=['logits'],
                          dynamic_shapes=({0: batch},), dynamo=True, external_data=False)
    return path


class OnnxClassifier:
    """An onnxruntime session called like the PyTorch model: clips tensor in, logits tensor out."""

    def __init__(self, session, path):
        self.session, self.path = session, path

    def eval(self):
        return self

    def __call__(self, clips):
        array = np.ascontiguousarray(clips.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(['logits'], {'clips': array})[0])


def load_onnx(path, num_frames=None, input_size=None, device='cpu', threads=None):
    """An OnnxClassifier for `path`; fails naming the file when it is missing, unreadable, not an
    exported classifier, or made for another clip length or size than the config's."""
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise OnnxError(f'{path}: ONNX file not found')
    providers = ['CPUExecutionProvider']
    if device == 'cuda':
        if 'CUDAExecutionProvider' not in ort.get_available_providers():
            raise OnnxError(f'{path}: --device cuda needs onnxruntime-gpu (this onnxruntime offers '
                            f'{ort.get_available_providers()})')
        providers.insert(0, 'CUDAExecutionProvider')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(path, options, providers=providers)
    except Exception as err:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxError(f'{path}: cannot load the ONNX model (corrupt, truncated, or not ONNX?): '
                        f'{reason}') from None
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if 'clips' not in inputs or 'logits' not in outputs:
        raise OnnxError(f'{path}: expected input `clips` and output `logits` (a file written by '
                        f'export.py), got inputs {sorted(inputs)} and outputs {outputs}')
    want = [None, num_frames, 3, input_size, input_size]
    got = inputs['clips']
    if len(got) != 5 or any(w is not None and g != w for w, g in zip(want, got)):
        raise OnnxError(f'{path}: input `clips` has shape {got}, but the config gives (batch, '
                        f'{num_frames}, 3, {input_size}, {input_size}) (DATA.NUM_FRAMES, DATA.INPUT_SIZE)')
    return OnnxClassifier(session, path)


def verification_clips(config, video=None):
    """Three real test clips (one crop each) of `video`, or of the first video of DATA.VAL_FILE."""
    from datasets import load_test_clip, read_annotations

    if video is None:
        listed = config.DATA.VAL_FILE and os.path.isfile(config.DATA.VAL_FILE)
        if not listed:
            raise OnnxError('the export is checked on a real video: pass --video FILE, or set '
                            f'DATA.VAL_FILE to an annotation list (it is {config.DATA.VAL_FILE!r}, '
                            'which is not a file)')
        video = read_annotations(config.DATA.VAL_FILE, config.DATA.ROOT, config.MODEL.NUM_CLASSES)[0][0]
    clips, _ = load_test_clip(config, video, num_clip=3, num_crop=1)
    return clips, video


@torch.no_grad()
def max_abs_diff(model, onnx_model, clips):
    """Largest abs difference of the logits over batches of 1 and of all clips."""
    model.eval()
    return max((model(x) - onnx_model(x)).abs().max().item() for x in (clips[:1], clips))


def check_export(model, onnx_model, clips, tolerance=TOLERANCE):
    """Return the max abs difference; above `tolerance` remove the ONNX file and raise."""
    diff = max_abs_diff(model, onnx_model, clips)
    if not diff <= tolerance:  # NaN fails too
        os.remove(onnx_model.path)
        raise OnnxError(f'{onnx_model.path}: onnxruntime logits differ from PyTorch by {diff:.3g} '
                        f'(max abs, > {tolerance:g}); the export is wrong and the file was removed')
    return diff


@torch.no_grad()
def median_latency(fn, clip, warmup=2, runs=5):
    """Median seconds of `fn(clip)` over `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        fn(clip)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(clip)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    from config import load_config_file
    from datasets import VideoDecodeError
    from models import build_model
    from utils.checkpoint import CheckpointError, load_model_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cfg', required=True, metavar='FILE', help='config the model was trained with')
    parser.add_argument('--checkpoint', required=True, help='checkpoint of MODEL (strictly loaded)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--video', help='video to verify the export on (default: first of DATA.VAL_FILE)')
    parser.add_argument('--runs', type=int, default=5, help='timed runs per engine (median; after 2 warm-up)')
    parser.add_argument('--opts', nargs='+', default=[], metavar='KEY VALUE', help='config overrides')
    args = parser.parse_args(argv)

    try:
        config = load_config_file(args.cfg, args.opts)
        T, S = config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE
        clips, video = verification_clips(config, args.video)  # before exporting: fail early
        model = build_model(config)
        load_model_weights(model, args.checkpoint)
        model.eval()
        export_onnx(model, T, S, args.out)
        onnx_model = load_onnx(args.out, T, S)
        diff = check_export(model, onnx_model, clips)
    except (OnnxError, CheckpointError, VideoDecodeError, ValueError, OSError) as err:  # not exporter bugs
        sys.exit(f'export.py: error: {err}')
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


if __name__ == '__main__':
    main()
