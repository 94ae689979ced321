"""Video-FocalNet: FocalNet with spatio-temporal focal modulation (Wasim et al., ICCV 2023).

Parameter names, shapes and arithmetic are those of the published checkpoints (docs/model.md); the
golden fixture in tests/fixtures/ is the proof. The frames of a clip run as a batch of images whose
tokens stay channels-last, `(T'*B, H, W, C)`, and time-major (row `t*B + b`) from the stem to the
head: the spatial layers see images, and the same memory viewed as `(T', B*H*W, C)` holds one
temporal sequence per spatial position, so no block permutes its tokens.
"""
import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from timm.layers import DropPath, Mlp, trunc_normal_


def _channels_first(x):
    """(N, H, W, C) tokens as an (N, C, H, W) view in channels-last memory (no copy), for convs."""
    return x.permute(0, 3, 1, 2)


def _channels_last(x):
    """Inverse of `_channels_first`: a view when x is in channels-last memory."""
    return x.permute(0, 2, 3, 1)


class SpatioTemporalFocalModulation(nn.Module):
    """Focal modulation `q * h(ctx) * h_temporal(ctx_t)`: a query modulated by a spatial context
    (hierarchy of depthwise 2-D convs plus a global average) and a temporal one (hierarchy of dense
    1-D convs over the frames plus a global average), each level weighted by its own gate."""

    def __init__(self, dim, focal_window, focal_level, focal_factor=2, proj_drop=0.,
                 use_postln_in_modulation=False, normalize_modulator=False, temporal_tokens=8):
        super().__init__()
        self.focal_level = focal_level
        self.normalize_modulator = normalize_modulator
        self.temporal_tokens = temporal_tokens  # T' = frames / tubelet size
        self.kernels = [focal_factor * k + focal_window for k in range(focal_level)]
        self.capture = None  # a dict while `capture_modulators` is active, else None

        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)  # query, context, gates
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False), nn.GELU())
            for k in self.kernels)

        self.f_temporal = nn.Linear(dim, dim + focal_level + 1)  # context, gates
        self.h_temporal = nn.Conv1d(dim, dim, kernel_size=1)
        self.focal_layers_temporal = nn.ModuleList(
            nn.Sequential(nn.Conv1d(dim, dim, k, padding=k // 2, bias=False), nn.GELU())
            for k in self.kernels)
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def _gated_sum(self, contexts, ctx_global, gates):
        """sum_l gates_l * contexts_l over the focal levels plus gates_L * GELU(ctx_global),
        divided by L + 1 if normalised; summed in place into the first product."""
        L = self.focal_level
        ctx_all = contexts[0] * gates[..., 0:1]
        for level in range(1, L):
            ctx_all.addcmul_(contexts[level], gates[..., level:level + 1])
        ctx_all.addcmul_(self.act(ctx_global), gates[..., L:L + 1])
        if self.normalize_modulator:
            ctx_all.div_(L + 1)
        return ctx_all

    def forward(self, x):
        """x: (T'*B, H, W, C) tokens, frames time-major -> (T'*B, H, W, C)."""
        N, H, W, C = x.shape
        T, L = self.temporal_tokens, self.focal_level

        # Spatial context: a hierarchy of depthwise convs over each frame, plus the frame's mean.
        q, ctx, gates = torch.split(self.f(x), (C, C, L + 1), -1)
        ctx = ctx.contiguous()  # so that the convs read and write channels-last memory
        contexts = []
        for layer in self.focal_layers:
            ctx = _channels_last(layer(_channels_first(ctx)))
            contexts.append(ctx)
        ctx_all = self._gated_sum(contexts, ctx.mean((1, 2), keepdim=True), gates)

        # Temporal context: a hierarchy of dense convs over the frames, plus the frames' mean. The
        # tokens viewed as (1, T', B*H*W, C) hold one sequence per column, so each Conv1d over T'
        # runs as one Conv2d with a (k, 1) kernel over all positions at once.
        ctx_t, gates_t = torch.split(self.f_temporal(x).view(1, T, -1, C + L + 1), (C, L + 1), -1)
        ctx_t = ctx_t.contiguous()
        contexts_t = []
        for conv, act in self.focal_layers_temporal:
            ctx_t = F.conv2d(_channels_first(ctx_t), conv.weight.unsqueeze(-1), padding=(conv.padding[0], 0))
            ctx_t = _channels_last(act(ctx_t))
            contexts_t.append(ctx_t)
        ctx_all_t = self._gated_sum(contexts_t, ctx_t.mean(1, keepdim=True), gates_t).view(N, H, W, C)

        # The modulators: h is a 1x1 Conv2d (run as a module, so hooks see it); h_temporal, a 1x1
        # Conv1d, is the same linear map of each token's channels.
        modulator = _channels_last(self.h(_channels_first(ctx_all)))
        modulator_t = F.linear(ctx_all_t, self.h_temporal.weight.flatten(1), self.h_temporal.bias)
        if self.capture is not None:
            self.capture['spatial'] = frames_batch_major(modulator.detach(), T)
            self.capture['temporal'] = frames_batch_major(modulator_t.detach(), T)
        out = q * modulator * modulator_t
        if self.ln is not None:
            out = self.ln(out)
        return self.proj_drop(self.proj(out))


class FocalModulationBlock(nn.Module):
    """Pre-norm (or post-norm) focal modulation and MLP, each with a residual, on (N, H, W, C)."""

    def __init__(self, dim, mlp_ratio=4., drop=0., drop_path=0., focal_level=2, focal_window=3,
                 use_layerscale=False, layerscale_value=1e-4, use_postln=False,
                 use_postln_in_modulation=False, normalize_modulator=False, temporal_tokens=8):
        super().__init__()
        self.use_postln = use_postln
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = SpatioTemporalFocalModulation(
            dim, focal_window=focal_window, focal_level=focal_level, proj_drop=drop,
            use_postln_in_modulation=use_postln_in_modulation,
            normalize_modulator=normalize_modulator, temporal_tokens=temporal_tokens)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        if use_layerscale:
            self.gamma_1 = nn.Parameter(layerscale_value * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layerscale_value * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x):
        if self.use_postln:
            y = self.norm1(self.modulation(x))
        else:
            y = self.modulation(self.norm1(x))
        x = x + self.drop_path(y if self.gamma_1 is None else self.gamma_1 * y)
        y = self.norm2(self.mlp(x)) if self.use_postln else self.mlp(self.norm2(x))
        return x + self.drop_path(y if self.gamma_2 is None else self.gamma_2 * y)


class PatchEmbed(nn.Module):
    """Per-frame patch embedding (stem and downsampling), or a tubelet Conv3d stem."""

    def __init__(self, patch_size=4, in_chans=3, embed_dim=96, use_conv_embed=False, norm=True,
                 is_stem=False, tubelet_size=1):
        super().__init__()
        if use_conv_embed:
            kernel, stride, padding = (7, 4, 2) if is_stem else (3, 2, 1)
        else:
            kernel, stride, padding = patch_size, patch_size, 0
        if tubelet_size > 1:
            self.proj = nn.Conv3d(in_chans, embed_dim, (tubelet_size, kernel, kernel),
                                  (tubelet_size, stride, stride), (0, padding, padding))
        else:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel, stride, padding)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x):
        """(N, C, H, W) frames, or (B, C, T, H, W) for a tubelet stem -> tokens (N', H', W', C'),
        frames in the order given (tubelet stem: row b*T' + t)."""
        x = self.proj(x)
        if x.dim() == 5:
            x = x.permute(0, 2, 3, 4, 1).flatten(0, 1)
        else:  # a view when x is in channels-last memory
            x = _channels_last(x)
        return x if self.norm is None else self.norm(x)


class BasicLayer(nn.Module):
    """A stage: `depth` blocks, then a 2x2 patch embedding that downsamples (all but the last)."""

    def __init__(self, dim, out_dim, depth, mlp_ratio, drop, drop_path, downsample,
                 use_checkpoint, focal_level, focal_window, use_conv_embed, use_layerscale,
                 layerscale_value, use_postln, use_postln_in_modulation, normalize_modulator,
                 temporal_tokens):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            FocalModulationBlock(
                dim, mlp_ratio=mlp_ratio, drop=drop, drop_path=drop_path[i],
                focal_level=focal_level, focal_window=focal_window, use_layerscale=use_layerscale,
                layerscale_value=layerscale_value, use_postln=use_postln,
                use_postln_in_modulation=use_postln_in_modulation,
                normalize_modulator=normalize_modulator, temporal_tokens=temporal_tokens)
            for i in range(depth))
        self.downsample = PatchEmbed(2, dim, out_dim, use_conv_embed, norm=True) if downsample else None

    def forward(self, x):
        """x: (N, H, W, C) tokens -> the stage's output tokens (downsampled unless last)."""
        for blk in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = cp.checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        if self.downsample is not None:
            x = self.downsample(_channels_first(x))
        return x


class VideoFocalNet(nn.Module):
    """Video-FocalNet for clips `(B, T, C, H, W)`; returns class logits `(B, num_classes)`."""

    def __init__(self, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), mlp_ratio=4., drop_rate=0., drop_path_rate=0.1,
                 patch_norm=True, use_checkpoint=False, focal_levels=(2, 2, 2, 2),
                 focal_windows=(3, 3, 3, 3), use_conv_embed=False, use_layerscale=False,
                 layerscale_value=1e-4, use_postln=False, use_postln_in_modulation=False,
                 normalize_modulator=False, num_frames=8, tubelet_size=1):
        super().__init__()
        if num_frames % tubelet_size:
            raise ValueError(f'num_frames ({num_frames}) must be a multiple of tubelet_size ({tubelet_size})')
        self.num_classes = num_classes
        self.num_layers = len(depths)
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.temporal_tokens = num_frames // tubelet_size
        dims = [embed_dim * 2 ** i for i in range(self.num_layers)]
        self.num_features = dims[-1]

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, use_conv_embed,
                                            norm=patch_norm, is_stem=True, tubelet_size=tubelet_size)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.layers = nn.ModuleList(
            BasicLayer(
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
        B = x.shape[0]
        if self.tubelet_size > 1:  # Conv3d stem on (B, C, T, H, W), then frames time-major
            x = self.patch_embed(x.transpose(1, 2))
            x = x.unflatten(0, (B, self.temporal_tokens)).transpose(0, 1).flatten(0, 1)
        else:  # frames time-major, in channels-last memory
            x = self.patch_embed(_channels_first(x.permute(1, 0, 3, 4, 2).flatten(0, 1).contiguous()))
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x).mean((1, 2))  # spatial tokens
        return x.view(self.temporal_tokens, B, -1).mean(0)

    def forward(self, x):
        return self.head(self.forward_features(x))


def frames_batch_major(x, temporal_tokens):
    """(T'*B, H, W, C) tokens, frames time-major -> (B*T', C, H, W), row b*T' + t (a copy)."""
    N, H, W, C = x.shape
    return x.view(temporal_tokens, N // temporal_tokens, H, W, C).permute(1, 0, 4, 2, 3).reshape(N, C, H, W)


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
