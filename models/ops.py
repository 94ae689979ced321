"""The fast model's kernels: each computes the same function as the plain PyTorch op it replaces.

- Inference on a CPU (eval mode, no autograd): oneDNN's fused kernels, a GEMM or convolution with
  its bias, GELU, residual addition or gate multiplication in one pass.
- Training on a CPU, for layers of MIN_TRAINING_MACS or more: oneDNN for the linear layers'
  forward and input gradient (PyTorch's own float32 GEMM goes to MKL, 5-25% slower on VFL-Net's
  shapes on the AMD machine this was measured on); and the temporal convolutions' weight gradient
  as one GEMM per kernel tap over the frames it actually pairs, skipping the zero padding
  (oneDNN's weight-gradient kernel for (k, 1) convolutions runs at half the speed of its forward);
  the weight gradients of both, for tall inputs, as two half-sums in one batched GEMM.
- On a CPU, token-wise layers with a wide hidden activation (the MLP) run over row chunks: glibc
  serves allocations above 32 MiB with fresh pages that fault on first touch, every call.

The private oneDNN ops have no autograd formula, no export and no compile support, so anything
else (CUDA, autocast, tracing, ONNX export, torch.compile, builds without them) takes the plain
ops. benchmarks/bench_model.py measures the gain; tests/test_model.py checks both paths against
the reference formulation, logits and gradients.
"""
import torch
import torch.nn.functional as F


def _has_onednn_ops():
    """oneDNN's fused pointwise ops exist in this torch build (x86 CPU builds; not every platform)."""
    try:
        return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise')
                and hasattr(torch.ops.mkldnn, '_convolution_pointwise'))
    except (AttributeError, RuntimeError):
        return False


# Whether the oneDNN kernels are used where they apply; tests turn it off to check the plain path.
ONEDNN = _has_onednn_ops()

# Largest hidden activation (bytes) of one token chunk; see token_chunked.
CHUNK_BYTES = 16 << 20

# Smallest GEMM or temporal convolution (multiply-adds) for the training kernels: below it, the
# Python-level autograd functions cost more than they save (measured on the demo's models).
MIN_TRAINING_MACS = 1 << 26

# Rows from which a weight gradient is computed as two half-sums (see _weight_grad).
SPLIT_ROWS = 8192


def _eager():
    return not (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling())


def _onednn_applies(x):
    return (ONEDNN and x.device.type == 'cpu' and x.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu') and _eager())


def fused_inference(module, x):
    """Whether `module` may run the fused kernels on x: CPU float32 inference in eager mode."""
    return not module.training and not torch.is_grad_enabled() and _onednn_applies(x)


def _onednn_training(x, macs):
    # The size test last: while exporting, `macs` is symbolic and comparing it would add a guard.
    return torch.is_grad_enabled() and _onednn_applies(x) and macs >= MIN_TRAINING_MACS


def _weight_grad(grad, x):
    """grad.t() @ x for rows (M, out) and (M, in). For M of SPLIT_ROWS or more, as the sum of the two
    halves' products in one batched GEMM: 8-16% faster than one GEMM on VFL-Net's first two stages
    (measured; MKL on 2 threads), the same sum in another order."""
    rows = grad.shape[0]
    if rows >= SPLIT_ROWS and rows % 2 == 0:
        return torch.bmm(grad.view(2, rows // 2, -1).transpose(1, 2), x.view(2, rows // 2, -1)).sum(0)
    return grad.t().mm(x)


def _onednn_linear(x, weight, bias, post_op='none'):
    algorithm = 'none' if post_op == 'gelu' else ''  # GELU's exact (erf) form
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, post_op, [], algorithm)


class _OneDnnLinear(torch.autograd.Function):
    """F.linear with oneDNN's forward and input gradient; the weight gradient is one GEMM either way."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return _onednn_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = _onednn_linear(grad, weight.t(), None) if ctx.needs_input_grad[0] else None
        grad_2d = grad.reshape(-1, grad.shape[-1])
        grad_weight = _weight_grad(grad_2d, x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        grad_bias = grad_2d.sum(0) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def linear(x, weight, bias, gelu=False, fused=False):
    """F.linear (then GELU): with `fused`, one oneDNN call; while training on a CPU, oneDNN GEMMs."""
    if fused:
        return _onednn_linear(x, weight, bias, 'gelu' if gelu else 'none')
    if _onednn_training(x, x.numel() * weight.shape[0]):
        x = _OneDnnLinear.apply(x, weight, bias)
    else:
        x = F.linear(x, weight, bias)
    return F.gelu(x) if gelu else x


def linear_then(x, weight, bias, other, op):
    """oneDNN's F.linear(x, weight, bias) + other (op 'add') or * other ('mul'), in one pass."""
    return torch.ops.mkldnn._linear_pointwise.binary(x, other, weight, bias, op)


def conv2d_gelu(x, weight, padding, groups=1, fused=False):
    """GELU(conv2d(x, weight)) for a bias-free, stride-1 convolution; with `fused`, one oneDNN call."""
    if fused:
        return torch.ops.mkldnn._convolution_pointwise(x, weight, None, padding, [1, 1], [1, 1],
                                                       groups, 'gelu', [], 'none')
    return F.gelu(F.conv2d(x, weight, None, 1, padding, 1, groups))


class _TemporalConv(torch.autograd.Function):
    """The dense temporal convolution (see temporal_conv_gelu) with a faster backward.

    Input gradient: the transposed convolution (stride 1, odd kernel), which reads the kernel as is.
    Weight gradient of tap j: the frames t paired with t + j - padding, as one GEMM over all
    such pairs; taps that only meet the zero padding get a zero gradient.
    """

    @staticmethod
    def forward(ctx, x, weight, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight.unsqueeze(-1), None, 1, (padding, 0))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        p, k = ctx.padding, weight.shape[-1]
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv_transpose2d(grad, weight.unsqueeze(-1), None, 1, (p, 0))
        if ctx.needs_input_grad[1]:
            T = x.shape[2]
            frames = x.permute(2, 0, 3, 1).flatten(1, 2)  # (T, M, C_in), a view of channels-last memory
            grads = grad.permute(2, 0, 3, 1).flatten(1, 2)  # (T, M, C_out)
            grad_weight = weight.new_zeros(weight.shape)
            for j in range(k):
                t0, t1 = max(0, p - j), min(T, T + p - j)  # output frames t whose t + j - p is a frame
                if t0 < t1:
                    grad_weight[:, :, j] = _weight_grad(grads[t0:t1].flatten(0, 1),
                                                        frames[t0 + j - p:t1 + j - p].flatten(0, 1))
        return grad_x, grad_weight, None


def temporal_conv_gelu(x, weight, padding, fused=False):
    """GELU of the Conv1d over T' with `weight` (C_out, C_in, k), odd k, no bias, for x viewed as
    a (1, C, T', M) image in channels-last memory, the Conv1d being a Conv2d with a (k, 1) kernel."""
    if not fused and _onednn_training(x, x.numel() * weight.shape[0] * weight.shape[-1]):
        return F.gelu(_TemporalConv.apply(x, weight, padding))
    return conv2d_gelu(x, weight.unsqueeze(-1), [padding, 0], fused=fused)


def token_chunked(fn, x, hidden):
    """fn(x) for a token-wise fn of x (..., C) whose hidden activation has `hidden` channels: on a
    CPU in eager mode over row chunks of at most CHUNK_BYTES of hidden activation each, so that the
    allocator reuses memory instead of faulting in fresh pages (the outputs are concatenated)."""
    chunks = 1
    if x.device.type == 'cpu' and _eager():
        chunks = -(-x[..., 0].numel() * hidden * x.element_size() // CHUNK_BYTES)
    if chunks <= 1:
        return fn(x)
    rows = x.reshape(-1, x.shape[-1])
    return torch.cat([fn(part) for part in rows.chunk(chunks)]).view(*x.shape[:-1], -1)
