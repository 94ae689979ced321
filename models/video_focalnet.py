"""Video-FocalNet: FocalNet with spatio-temporal focal modulation (Wasim et al., ICCV 2023).

Parameter names, shapes and arithmetic follow the published checkpoints exactly; the golden
fixture in tests/ is the proof. Frames of a clip are processed as a batch of images kept
channels-last, `(T'*B, H, W, C)`, and time-major (row `t*B + b`): then the temporal focal
convolutions see contiguous sequences and no block permutes its tokens. models/
video_focalnet_reference.py keeps the straightforward formulation this one is checked against.
"""
import contextlib

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from timm.layers import DropPath, Mlp, trunc_normal_

from .ops import conv2d_gelu, fused_inference, linear, linear_then, temporal_conv_gelu, token_chunked


def _channels_first(x):
    """(N, H, W, C) tokens as an (N, C, H, W) view in channels-last memory: no copy."""
    return x.permute(0, 3, 1, 2)


def _channels_last(x):
    """Inverse of `_channels_first` (a view when x is in channels-last memory)."""
    return x.permute(0, 2, 3, 1)


class SpatioTemporalFocalModulation(nn.Module):
    """Spatial focal modulation (depthwise 2-D hierarchy) times a temporal one (dense 1-D).

    Tokens stay channels-last, `(T'*B, H, W, C)` with frames time-major (row t*B + b), so the
    temporal sequences are the same memory seen as `(T', B*H*W, C)`: the dense temporal Conv1d is
    one channels-last Conv2d with a (k, 1) kernel over that view, and no permutes are needed.
    Parameters (names, shapes) and arithmetic are those of the published model (MODEL.md).
    """

    def __init__(self, dim, focal_window, focal_level, focal_factor=2, proj_drop=0.,
                 use_postln_in_modulation=False, normalize_modulator=False, num_frames=8):
        super().__init__()
        self.focal_level = focal_level
        self.normalize_modulator = normalize_modulator
        self.num_frames = num_frames
        self.kernels = [focal_factor * k + focal_window for k in range(focal_level)]
        self.capture = None  # a dict while `capture_modulators` is active, else None

        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False), nn.GELU())
            for k in self.kernels)

        self.f_temporal = nn.Linear(dim, dim + focal_level + 1)
        self.h_temporal = nn.Conv1d(dim, dim, kernel_size=1)
        self.focal_layers_temporal = nn.ModuleList(
            nn.Sequential(nn.Conv1d(dim, dim, k, padding=k // 2, bias=False), nn.GELU())
            for k in self.kernels)
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def _gated_sum(self, contexts, ctx_global, gates):
        """sum_k contexts[k] * gates[k] + ctx_global * gates[L] (divided by L + 1 if normalised)."""
        L = self.focal_level
        ctx_all = contexts[0] * gates[..., 0:1]
        for level in range(1, L):
            ctx_all.addcmul_(contexts[level], gates[..., level:level + 1])
        ctx_all.addcmul_(ctx_global, gates[..., L:L + 1])
        if self.normalize_modulator:
            ctx_all.div_(L + 1)
        return ctx_all

    def forward(self, x, residual=None):
        """x: (T'*B, H, W, C), frames time-major -> (T'*B, H, W, C), plus `residual` if given
        (only on the fused inference path, where the addition is part of the output GEMM)."""
        N, H, W, C = x.shape
        T, L = self.num_frames, self.focal_level
        fused = fused_inference(self, x)
        f_w, f_b = self.f.weight, self.f.bias
        ft_w, ft_b = self.f_temporal.weight, self.f_temporal.bias

        # Contexts get their own GEMMs so that the convolutions read contiguous channels-last
        # memory; the query and both gate sets share one.
        ctx = linear(x, f_w[C:2 * C], f_b[C:2 * C], fused=fused)
        ctx_t = linear(x, ft_w[:C], ft_b[:C], fused=fused)
        qg = linear(x, torch.cat((f_w[:C], f_w[2 * C:], ft_w[C:])),
                    torch.cat((f_b[:C], f_b[2 * C:], ft_b[C:])), fused=fused)
        q, gates, gates_t = torch.split(qg, (C, L + 1, L + 1), -1)

        # Spatial hierarchy: depthwise convs on the channels-last view.
        contexts = []
        for (conv, _), k in zip(self.focal_layers, self.kernels):
            ctx = _channels_last(conv2d_gelu(_channels_first(ctx), conv.weight, [k // 2, k // 2],
                                             groups=C, fused=fused))
            contexts.append(ctx)
        ctx_global = self.act(ctx.mean((1, 2), keepdim=True))
        ctx_all = self._gated_sum(contexts, ctx_global, gates)

        # Temporal hierarchy: (T', B*H*W, C) viewed as a 1 x C x T' x BHW channels-last image,
        # the dense Conv1d over T' as a Conv2d with a (k, 1) kernel.
        ctx_t = ctx_t.view(1, T, -1, C)
        contexts_t = []
        for (conv, _), k in zip(self.focal_layers_temporal, self.kernels):
            ctx_t = _channels_last(temporal_conv_gelu(_channels_first(ctx_t), conv.weight, k // 2, fused))
            contexts_t.append(ctx_t)
        ctx_global_t = self.act(ctx_t.mean(1, keepdim=True))
        ctx_all_t = self._gated_sum(contexts_t, ctx_global_t, gates_t.view(1, T, -1, L + 1))

        h_w, h_b = self.h.weight.view(C, C), self.h.bias
        ht_w, ht_b = self.h_temporal.weight.view(C, C), self.h_temporal.bias
        if fused and self.capture is None:  # q * modulator * modulator_t inside the two GEMMs
            out = linear_then(ctx_all, h_w, h_b, q, 'mul')
            out = linear_then(ctx_all_t, ht_w, ht_b, out.view(1, T, -1, C), 'mul').view(N, H, W, C)
        else:
            # `h` runs as a module here (a 1x1 conv on the channels-last view), so hooks see it.
            modulator = _channels_last(self.h(_channels_first(ctx_all)))
            modulator_t = linear(ctx_all_t, ht_w, ht_b, fused=fused).view(N, H, W, C)
            if self.capture is not None:
                self.capture['spatial'] = frames_batch_major(modulator.detach(), T)
                self.capture['temporal'] = frames_batch_major(modulator_t.detach(), T)
            out = (q * modulator).mul_(modulator_t)
        if self.ln is not None:
            out = self.ln(out)
        if residual is not None:
            return linear_then(out, self.proj.weight, self.proj.bias, residual, 'add')
        return self.proj_drop(linear(out, self.proj.weight, self.proj.bias, fused=fused))


class FocalModulationBlock(nn.Module):
    """Pre-norm (or post-norm) modulation and MLP on channels-last tokens (N, H, W, C)."""

    modulation_layer = SpatioTemporalFocalModulation

    def __init__(self, dim, mlp_ratio=4., drop=0., drop_path=0., focal_level=2, focal_window=3,
                 use_layerscale=False, layerscale_value=1e-4, use_postln=False,
                 use_postln_in_modulation=False, normalize_modulator=False, num_frames=8):
        super().__init__()
        self.use_postln = use_postln
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = self.modulation_layer(
            dim, focal_window=focal_window, focal_level=focal_level, proj_drop=drop,
            use_postln_in_modulation=use_postln_in_modulation,
            normalize_modulator=normalize_modulator, num_frames=num_frames)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        if use_layerscale:
            self.gamma_1 = nn.Parameter(layerscale_value * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layerscale_value * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = 1.0

    def forward(self, x):
        if self.use_postln or not isinstance(self.gamma_1, float) or not fused_inference(self, x):
            return self._forward(x)
        # Fused inference (drop path and dropout are off in eval mode): residual additions happen
        # inside the output GEMMs of the modulation and the MLP.
        x = self.modulation(self.norm1(x), residual=x)
        mlp = self.mlp

        def norm_mlp_residual(x):
            y = linear(self.norm2(x), mlp.fc1.weight, mlp.fc1.bias, gelu=True, fused=True)
            return linear_then(y, mlp.fc2.weight, mlp.fc2.bias, x, 'add')
        return token_chunked(norm_mlp_residual, x, mlp.fc1.out_features)

    def _forward(self, x):
        if self.use_postln:
            y = self.norm1(self.modulation(x))
        else:
            y = self.modulation(self.norm1(x))
        x = self._residual(x, self._scale(self.gamma_1, y))
        y = self.norm2(self._mlp(x)) if self.use_postln else self._mlp(self.norm2(x))
        return self._residual(x, self._scale(self.gamma_2, y))

    def _residual(self, x, y):
        """x + drop_path(y). While training, one pass (addcmul) with the mask timm's DropPath draws
        for a (N, 1, ..., 1) tensor of ones: the same draw, and the same numbers, as DropPath(y)."""
        if self.training and isinstance(self.drop_path, DropPath):
            return torch.addcmul(x, y, self.drop_path(y.new_ones((y.shape[0],) + (1,) * (y.dim() - 1))))
        return x + self.drop_path(y)

    def _mlp(self, x):
        mlp = self.mlp
        if fused_inference(self, x):  # fc1 + GELU in one pass; dropout is off in eval mode
            def fn(x):
                return linear(linear(x, mlp.fc1.weight, mlp.fc1.bias, gelu=True, fused=True),
                              mlp.fc2.weight, mlp.fc2.bias, fused=True)
        else:  # timm's Mlp with models.ops.linear for its layers
            def fn(x):
                x = mlp.norm(mlp.drop1(linear(x, mlp.fc1.weight, mlp.fc1.bias, gelu=True)))
                return mlp.drop2(linear(x, mlp.fc2.weight, mlp.fc2.bias))
        return token_chunked(fn, x, mlp.fc1.out_features)

    @staticmethod
    def _scale(gamma, y):
        """Layer scale; the constant 1.0 without it is skipped (multiplying by 1.0 is exact)."""
        return y if isinstance(gamma, float) and gamma == 1.0 else gamma * y


class PatchEmbed(nn.Module):
    """Per-frame patch embedding (stem and downsampling), or a tubelet Conv3d stem."""

    def __init__(self, patch_size=4, in_chans=3, embed_dim=96, use_conv_embed=False, norm=True,
                 is_stem=False, tubelet_size=1):
        super().__init__()
        if use_conv_embed:
            kernel, stride, padding = (7, 4, 2) if is_stem else (3, 2, 1)
        else:
            kernel, stride, padding = patch_size, patch_size, 0
        self.tubelet_size = tubelet_size
        if tubelet_size > 1:
            self.proj = nn.Conv3d(in_chans, embed_dim, (tubelet_size, kernel, kernel),
                                  (tubelet_size, stride, stride), (0, padding, padding))
        else:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel, stride, padding)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x):
        """x: (N, C, H, W) frames, or (B, C, T, H, W) for a tubelet stem -> (tokens (N', H'*W', C'),
        H', W'), frames in the order given (tubelet stem: row b*T' + t)."""
        x = self.proj(x)
        if x.dim() == 5:
            x = x.permute(0, 2, 3, 4, 1).flatten(0, 1)
        else:  # channels-last memory when x was: then this is a view
            x = _channels_last(x)
        H, W = x.shape[1:3]
        return self._tokens(x.reshape(x.shape[0], H * W, -1), H, W)

    def _tokens(self, x, H, W):
        """(tokens, H, W) with the embedding's LayerNorm applied (when it has one)."""
        return (x if self.norm is None else self.norm(x)), H, W


class BasicLayer(nn.Module):
    """A stage: `depth` blocks, then a 2x2 patch embedding that downsamples (all but the last)."""

    block_layer = FocalModulationBlock
    embed_layer = PatchEmbed

    def __init__(self, dim, out_dim, depth, mlp_ratio, drop, drop_path, downsample,
                 use_checkpoint, focal_level, focal_window, use_conv_embed, use_layerscale,
                 layerscale_value, use_postln, use_postln_in_modulation, normalize_modulator,
                 num_frames):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            self.block_layer(
                dim, mlp_ratio=mlp_ratio, drop=drop, drop_path=drop_path[i],
                focal_level=focal_level, focal_window=focal_window, use_layerscale=use_layerscale,
                layerscale_value=layerscale_value, use_postln=use_postln,
                use_postln_in_modulation=use_postln_in_modulation,
                normalize_modulator=normalize_modulator, num_frames=num_frames)
            for i in range(depth))
        self.downsample = self.embed_layer(2, dim, out_dim, use_conv_embed, norm=True) if downsample else None

    def forward(self, x):
        """x: (N, H, W, C) tokens -> the stage's output tokens (downsampled unless last)."""
        for blk in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = cp.checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        if self.downsample is not None:
            x, H, W = self.downsample(_channels_first(x))
            x = x.view(-1, H, W, x.shape[-1])
        return x


class VideoFocalNet(nn.Module):
    """Video-FocalNet for clips `(B, T, C, H, W)`; returns class logits `(B, num_classes)`."""

    # The stem and the stage types: models/video_focalnet_reference.py swaps in its own.
    embed_layer = PatchEmbed
    stage_layer = BasicLayer

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), mlp_ratio=4., drop_rate=0., drop_path_rate=0.1,
                 patch_norm=True, use_checkpoint=False, focal_levels=(2, 2, 2, 2),
                 focal_windows=(3, 3, 3, 3), use_conv_embed=False, use_layerscale=False,
                 layerscale_value=1e-4, use_postln=False, use_postln_in_modulation=False,
                 normalize_modulator=False, num_frames=8, tubelet_size=1):
        super().__init__()
        if num_frames % tubelet_size:
            raise ValueError(f'num_frames ({num_frames}) must be a multiple of tubelet_size ({tubelet_size})')
        self.img_size = img_size
        self.num_classes = num_classes
        self.num_layers = len(depths)
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.temporal_tokens = num_frames // tubelet_size
        dims = [embed_dim * 2 ** i for i in range(self.num_layers)]
        self.num_features = dims[-1]

        self.patch_embed = self.embed_layer(patch_size, in_chans, embed_dim, use_conv_embed,
                                            norm=patch_norm, is_stem=True, tubelet_size=tubelet_size)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.layers = nn.ModuleList(
            self.stage_layer(
                dims[i], dims[i + 1] if i < self.num_layers - 1 else None, depths[i], mlp_ratio,
                drop_rate, dpr[sum(depths[:i]):sum(depths[:i + 1])], i < self.num_layers - 1,
                use_checkpoint, focal_levels[i], focal_windows[i], use_conv_embed, use_layerscale,
                layerscale_value, use_postln, use_postln_in_modulation, normalize_modulator,
                self.temporal_tokens)
            for i in range(self.num_layers))
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def set_grad_checkpointing(self, enable=True):
        for layer in self.layers:
            layer.use_checkpoint = enable

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes):
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if num_classes > 0:
            self._init_weights(self.head)

    def forward_features(self, x):
        """(B, T, C, H, W) -> pooled features (B, num_features)."""
        if x.dim() != 5 or x.shape[1] != self.num_frames:
            raise ValueError(f'expected a clip batch (B, T={self.num_frames}, C, H, W), got '
                             f'{tuple(x.shape)}; check DATA.NUM_FRAMES against the model\'s num_frames')
        B, T = x.shape[:2]
        if self.tubelet_size > 1:  # Conv3d stem on (B, C, T, H, W), then frames time-major
            x, H, W = self.patch_embed(x.transpose(1, 2))
            x = x.view(B, self.temporal_tokens, H * W, -1).transpose(0, 1)
        else:  # frames time-major in channels-last memory
            x, H, W = self.patch_embed(_channels_first(x.permute(1, 0, 3, 4, 2).flatten(0, 1).contiguous()))
        x = self.pos_drop(x.reshape(-1, H, W, x.shape[-1]))
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x).mean((1, 2))  # spatial tokens
        return x.view(self.temporal_tokens, B, -1).mean(0)

    def forward(self, x):
        return self.head(self.forward_features(x))


def frames_batch_major(x, num_frames):
    """(T'*B, H, W, C) tokens, frames time-major -> (B*T', C, H, W), row b*T' + t (a copy)."""
    N, H, W, C = x.shape
    return x.view(num_frames, N // num_frames, H, W, C).permute(1, 0, 4, 2, 3).reshape(N, C, H, W)


@contextlib.contextmanager
def capture_modulators(model):
    """Opt-in access to the modulators of the last block of every stage.

    Yields a list with one dict per stage, filled by the next forward: 'spatial' is the output of
    `h` and 'temporal' the output of `h_temporal`, both laid out as (B*T', C, H, W) with row
    b*T' + t. Each modulation holds the stage's dict only inside the `with`, so nothing stays
    attached to, or stored on, the model; this also works on a `torch.compile`d model, which a
    forward hook added after compilation would not.
    """
    model = getattr(model, 'module', model)
    model = getattr(model, '_orig_mod', model)
    captured, modulations = [], []
    for layer in model.layers:
        mod = layer.blocks[-1].modulation
        captured.append({})
        modulations.append(mod)
        mod.capture = captured[-1]
    try:
        yield captured
    finally:
        for mod in modulations:
            mod.capture = None
