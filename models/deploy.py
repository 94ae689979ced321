"""ONNX deployment of a clip classifier: export with torch.onnx, an onnxruntime session called like
the PyTorch model, and the check that both give the same logits (tools.export, tools.predict --onnx).

The ONNX model takes `clips` float32 (batch, T, 3, S, S), normalised as in evaluation, batch
dynamic, and returns `logits` (batch, classes). onnxruntime is imported only when a file is loaded.
"""
import os
import statistics
import time

import numpy as np
import torch

from utils.errors import UserError

TOLERANCE = 1e-4  # max abs logit difference accepted between onnxruntime and PyTorch


class OnnxError(UserError, RuntimeError):
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
                        f'tools.export), got inputs {sorted(inputs)} and outputs {outputs}')
    want = [None, num_frames, 3, input_size, input_size]
    got = inputs['clips']
    if len(got) != 5 or any(w is not None and g != w for w, g in zip(want, got)):
        raise OnnxError(f'{path}: input `clips` has shape {got}, but the config gives (batch, '
                        f'{num_frames}, 3, {input_size}, {input_size}) (DATA.NUM_FRAMES, DATA.INPUT_SIZE)')
    return OnnxClassifier(session, path)


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
