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
        return torch.from_numpy(self.session.run(['logits'], {'clips': array})[0]).to(clips.device)


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


QUANT_FORMATS = ('QDQ', 'QOperator')
# Quantized: the operators carrying the compute. The element-wise ones (the modulation's products
# and gates, norms, GELU) stay float: quantizing them too cost top-1 agreement with PyTorch on the
# demo and added a quantize / dequantize pair around each.
QUANT_OPS = ('Conv', 'MatMul', 'Gemm')


def quantize_int8(float_path, out_path, calibration, quant_format='QOperator', per_channel=False,
                  op_types=QUANT_OPS, method='MinMax'):
    """Static INT8 quantization of an exported float model with onnxruntime: int8 weights and uint8
    activations (the U8S8 kernels x86 CPUs run fastest), ranges from min/max over `calibration`
    (float clips (N, T, 3, S, S), one per calibration batch). onnxruntime's pre-processing (shape
    inference, graph optimisation) runs first, as its quantization guide asks."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quant_pre_process, quantize_static)

    class Clips(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration.split(1))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {'clips': np.ascontiguousarray(batch.numpy(), dtype=np.float32)}

    if quant_format not in QUANT_FORMATS:
        raise OnnxError(f'quantization format must be one of {QUANT_FORMATS}, got {quant_format!r}')
    prepared = f'{out_path}.prepared.onnx'
    try:
        quant_pre_process(float_path, prepared, skip_symbolic_shape=False)
        quantize_static(prepared, out_path, Clips(), quant_format=getattr(QuantFormat, quant_format),
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=getattr(CalibrationMethod, method),
                        op_types_to_quantize=list(op_types) if op_types else None)
    finally:
        if os.path.exists(prepared):
            os.remove(prepared)
    return out_path


@torch.no_grad()
def compare_logits(model, other, clips, batch=8):
    """(max abs logit difference, top-1 agreement in [0, 1], largest abs PyTorch logit) of `other`
    against `model` over `clips`, `batch` clips per call: how close an approximate (INT8) model
    stays to PyTorch, and the scale of the logits that difference compares with."""
    model.eval()
    diffs, agree, scale = [], 0, 0.0
    for chunk in clips.split(batch):
        expected, got = model(chunk), other(chunk)
        diffs.append((expected - got).abs().max().item())
        agree += (expected.argmax(1) == got.argmax(1)).sum().item()
        scale = max(scale, expected.abs().max().item())
    return max(diffs), agree / len(clips), scale


def require_lists(config):
    """Fail before exporting when DATA.TRAIN_FILE or DATA.VAL_FILE, which INT8 needs, is no file."""
    for key in ('TRAIN_FILE', 'VAL_FILE'):
        value = config.DATA[key]
        if not value or not os.path.isfile(value):
            raise OnnxError(f'DATA.{key} is {value!r}, which is not a file: INT8 is calibrated on clips '
                            'of DATA.TRAIN_FILE and checked on clips of DATA.VAL_FILE')


def export_int8(model, float_path, out_path, calibration, check, T, S, batch_size,
                quant_format='QOperator', per_channel=False):
    """Quantize the float export `float_path` into `out_path`, calibrated on the clips
    `calibration`, and compare it with PyTorch on the clips `check` (both evaluation views of real
    videos: datasets.list_clips). Returns the figures (INT8 is an approximation: it is reported,
    not held to the float export's 1e-4)."""
    quantize_int8(float_path, out_path, calibration, quant_format, per_channel)
    int8 = load_onnx(out_path, T, S)
    diff, agreement, scale = compare_logits(model, int8, check, batch_size)
    return {'int8': int8, 'max_abs_diff': diff, 'max_abs_logit': scale, 'top1_agreement': agreement}
