"""The straightforward formulation of Video-FocalNet, kept as the baseline for speed and numerics.

This is the port of the official code as it was before models/video_focalnet.py was optimised:
channels-first per block, the temporal focal convolutions as Conv1d over one sequence per spatial
location. It has the same parameter names, shapes and arithmetic as `models.VideoFocalNet`, so
the same state dict loads into both. benchmarks/bench_model.py times the two side by side and
tests/test_model.py checks that their logits and gradients agree. It is not registered with timm.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from timm.layers import DropPath, Mlp, trunc_normal_


class SpatioTemporalFocalModulation(nn.Module):
    """Spatial focal modulation (depthwise 2-D hierarchy) times a temporal one (dense 1-D)."""

    def __init__(self, dim, focal_window, focal_level, focal_factor=2, proj_drop=0.,
                 use_postln_in_modulation=False, normalize_modulator=False, num_frames=8):
        super().__init__()
        self.focal_level = focal_level
        self.normalize_modulator = normalize_modulator
        self.num_frames = num_frames
        kernels = [focal_factor * k + focal_window for k in range(focal_level)]

        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, kernel_size=1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.focal_layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False), nn.GELU())
            for k in kernels)

        self.f_temporal = nn.Linear(dim, dim + focal_level + 1)
        self.h_temporal = nn.Conv1d(dim, dim, kernel_size=1)
        self.focal_layers_temporal = nn.ModuleList(
            nn.Sequential(nn.Conv1d(dim, dim, k, padding=k // 2, bias=False), nn.GELU())
            for k in kernels)
        self.ln = nn.LayerNorm(dim) if use_postln_in_modulation else None

    def _aggregate(self, ctx, gates, layers, reduce_dims):
        """Gated sum of the focal hierarchy plus the gated global context."""
        ctx_all = 0
        for level, layer in enumerate(layers):
            ctx = layer(ctx)
            ctx_all = ctx_all + ctx * gates[:, level:level + 1]
        ctx_global = self.act(ctx.mean(reduce_dims, keepdim=True))
        ctx_all = ctx_all + ctx_global * gates[:, self.focal_level:]
        if self.normalize_modulator:
            ctx_all = ctx_all / (self.focal_level + 1)
        return ctx_all

    def forward(self, x):
        """x: (B*T', H, W, C) -> (B*T', H, W, C)."""
        BT, H, W, C = x.shape
        T = self.num_frames
        B = BT // T

        # Temporal branch: one sequence of T' tokens per spatial location.
        xt = x.view(B, T, H, W, C).permute(0, 2, 3, 1, 4).reshape(B * H * W, T, C)
        xt = self.f_temporal(xt).permute(0, 2, 1).contiguous()
        ctx_t, gates_t = torch.split(xt, (C, self.focal_level + 1), 1)
        ctx_all_t = self._aggregate(ctx_t, gates_t, self.focal_layers_temporal, 2)

        # Spatial branch.
        xs = self.f(x).permute(0, 3, 1, 2).contiguous()
        q, ctx, gates = torch.split(xs, (C, C, self.focal_level + 1), 1)
        ctx_all = self._aggregate(ctx, gates, self.focal_layers, (2, 3))

        modulator = self.h(ctx_all)
        modulator_t = self.h_temporal(ctx_all_t)  # (B*H*W, C, T')
        modulator_t = modulator_t.view(B, H, W, C, T).permute(0, 4, 3, 1, 2).reshape(BT, C, H, W)

        out = (q * modulator * modulator_t).permute(0, 2, 3, 1).contiguous()
        if self.ln is not None:
            out = self.ln(out)
        return self.proj_drop(self.proj(out))


class FocalModulationBlock(nn.Module):
    def __init__(self, dim, mlp_ratio=4., drop=0., drop_path=0., focal_level=2, focal_window=3,
                 use_layerscale=False, layerscale_value=1e-4, use_postln=False,
                 use_postln_in_modulation=False, normalize_modulator=False, num_frames=8):
        super().__init__()
        self.use_postln = use_postln
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = SpatioTemporalFocalModulation(
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

    def forward(self, x, H, W):
        BT, L, C = x.shape
        shortcut = x
        if not self.use_postln:
            x = self.norm1(x)
        x = self.modulation(x.view(BT, H, W, C)).view(BT, L, C)
        if self.use_postln:
            x = self.norm1(x)
        x = shortcut + self.drop_path(self.gamma_1 * x)
        y = self.norm2(self.mlp(x)) if self.use_postln else self.mlp(self.norm2(x))
        return x + self.drop_path(self.gamma_2 * y)


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
        """x: (N, C, H, W) or, for a tubelet stem, (B, C, T, H, W) -> ((N', H'*W', C'), H', W')."""
        x = self.proj(x)
        if x.dim() == 5:
            B, C, T, H, W = x.shape
            x = x.transpose(1, 2).reshape(B * T, C, H, W)
        H, W = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, H, W


class BasicLayer(nn.Module):
    def __init__(self, dim, out_dim, depth, mlp_ratio, drop, drop_path, downsample,
                 use_checkpoint, focal_level, focal_window, use_conv_embed, use_layerscale,
                 layerscale_value, use_postln, use_postln_in_modulation, normalize_modulator,
                 num_frames):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            FocalModulationBlock(
                dim, mlp_ratio=mlp_ratio, drop=drop, drop_path=drop_path[i],
                focal_level=focal_level, focal_window=focal_window, use_layerscale=use_layerscale,
                layerscale_value=layerscale_value, use_postln=use_postln,
                use_postln_in_modulation=use_postln_in_modulation,
                normalize_modulator=normalize_modulator, num_frames=num_frames)
            for i in range(depth))
        self.downsample = PatchEmbed(2, dim, out_dim, use_conv_embed, norm=True) if downsample else None

    def forward(self, x, H, W):
        for blk in self.blocks:
            if self.use_checkpoint and torch.is_grad_enabled():
                x = cp.checkpoint(blk, x, H, W, use_reentrant=False)
            else:
                x = blk(x, H, W)
        if self.downsample is not None:
            x = x.transpose(1, 2).reshape(x.shape[0], -1, H, W)
            x, H, W = self.downsample(x)
        return x, H, W


class ReferenceVideoFocalNet(nn.Module):
    """Video-FocalNet for clips `(B, T, C, H, W)`; returns class logits `(B, num_classes)`."""

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
        B, T = x.shape[:2]
        if self.tubelet_size > 1:
            x = x.transpose(1, 2)  # (B, C, T, H, W) for the Conv3d stem
        else:
            x = x.flatten(0, 1)
        x, H, W = self.patch_embed(x)
        x = self.pos_drop(x)
        for layer in self.layers:
            x, H, W = layer(x, H, W)
        x = self.norm(x).mean(1)  # spatial tokens
        return x.view(B, self.temporal_tokens, -1).mean(1)

    def forward(self, x):
        return self.head(self.forward_features(x))

