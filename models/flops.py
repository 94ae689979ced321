"""Parameters and GFLOPs of a model with fvcore (one multiply-add = one flop), for get_flops.py,
tools.summary and benchmarks.bench_gpu."""
import logging
import warnings

import torch

with warnings.catch_warnings():
    warnings.filterwarnings('ignore', category=FutureWarning)  # its import touches torch.jit
    from fvcore.nn import FlopCountAnalysis


def count(model, num_frames, input_size):
    """(parameters, GFLOPs, {operator: occurrences fvcore could not count}) at batch 1."""
    model.eval()
    clip = torch.zeros(1, num_frames, 3, input_size, input_size)
    analysis = FlopCountAnalysis(model, clip)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger('fvcore').setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=FutureWarning)  # tracing goes through torch.jit
        gflops = analysis.total() / 1e9
    return sum(p.numel() for p in model.parameters()), gflops, dict(analysis.unsupported_ops())
