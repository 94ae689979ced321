"""The straightforward formulation of Video-FocalNet: the baseline of benchmarks/bench_model.py, and
the independent computation tests/test_model.py checks models.VideoFocalNet against.

`ReferenceForward(model)` computes the logits of a `models.VideoFocalNet` with that model's own
modules and parameters, laid out as a direct port of the official code would: tokens `(B*T', H*W, C)`
batch-major (row `b*T' + t`), channels-first inside every modulation, and each temporal focal
convolution as a Conv1d over one sequence of T' tokens per spatial position. Autograd reaches the
model's parameters, so gradients compare as well as logits.
"""
import torch
import torch.nn as nn


def _gated_sum(mod, ctx, gates, layers, global_dims):
    """The focal hierarchy `layers` applied to ctx, gated per level, plus the gated global context."""
    ctx_all = 0
    for level, layer in enumerate(layers):
        ctx = layer(ctx)
        ctx_all = ctx_all + ctx * gates[:, level:level + 1]
    ctx_global = mod.act(ctx.mean(global_dims, keepdim=True))
    ctx_all = ctx_all + ctx_global * gates[:, mod.focal_level:]
    if mod.normalize_modulator:
        ctx_all = ctx_all / (mod.focal_level + 1)
    return ctx_all


def modulation(mod, x):
    """x: (B*T', H, W, C), batch-major -> (B*T', H, W, C)."""
    BT, H, W, C = x.shape
    T, L = mod.temporal_tokens, mod.focal_level
    B = BT // T

    xt = x.view(B, T, H, W, C).permute(0, 2, 3, 1, 4).reshape(B * H * W, T, C)
    xt = mod.f_temporal(xt).permute(0, 2, 1).contiguous()  # (B*H*W, C + L + 1, T')
    ctx_t, gates_t = torch.split(xt, (C, L + 1), 1)
    ctx_all_t = _gated_sum(mod, ctx_t, gates_t, mod.focal_layers_temporal, 2)

    xs = mod.f(x).permute(0, 3, 1, 2).contiguous()  # (B*T', 2C + L + 1, H, W)
    q, ctx, gates = torch.split(xs, (C, C, L + 1), 1)
    ctx_all = _gated_sum(mod, ctx, gates, mod.focal_layers, (2, 3))

    modulator = mod.h(ctx_all)
    modulator_t = mod.h_temporal(ctx_all_t).view(B, H, W, C, T).permute(0, 4, 3, 1, 2).reshape(BT, C, H, W)
    out = (q * modulator * modulator_t).permute(0, 2, 3, 1).contiguous()
    if mod.ln is not None:
        out = mod.ln(out)
    return mod.proj_drop(mod.proj(out))


def block(blk, x, H, W):
    """x: (B*T', H*W, C) -> (B*T', H*W, C)."""
    BT, L, C = x.shape
    gamma_1 = 1.0 if blk.gamma_1 is None else blk.gamma_1
    gamma_2 = 1.0 if blk.gamma_2 is None else blk.gamma_2
    shortcut = x
    if not blk.use_postln:
        x = blk.norm1(x)
    x = modulation(blk.modulation, x.view(BT, H, W, C)).view(BT, L, C)
    if blk.use_postln:
        x = blk.norm1(x)
    x = shortcut + blk.drop_path(gamma_1 * x)
    y = blk.norm2(blk.mlp(x)) if blk.use_postln else blk.mlp(blk.norm2(x))
    return x + blk.drop_path(gamma_2 * y)


def patch_embed(embed, x):
    """(N, C, H, W) frames or (B, C, T, H, W) -> ((N', H'*W', C') tokens, H', W')."""
    x = embed.proj(x)
    if x.dim() == 5:
        B, C, T, H, W = x.shape
        x = x.transpose(1, 2).reshape(B * T, C, H, W)
    H, W = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    return (x if embed.norm is None else embed.norm(x)), H, W


class ReferenceForward(nn.Module):
    """The straightforward forward pass over `model`'s modules (shared, not copied)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clips):
        """(B, T, C, H, W) -> logits (B, num_classes)."""
        model = self.model
        B = clips.shape[0]
        x = clips.transpose(1, 2) if model.tubelet_size > 1 else clips.flatten(0, 1)
        x, H, W = patch_embed(model.patch_embed, x)
        x = model.pos_drop(x)
        for layer in model.layers:
            for blk in layer.blocks:
                x = block(blk, x, H, W)
            if layer.downsample is not None:
                x, H, W = patch_embed(layer.downsample, x.transpose(1, 2).reshape(x.shape[0], -1, H, W))
        x = model.norm(x).mean(1)  # spatial tokens
        return model.head(x.view(B, model.temporal_tokens, -1).mean(1))
