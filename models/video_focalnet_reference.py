"""The straightforward formulation of Video-FocalNet, kept as the baseline for speed and numerics.

This is the port of the official code as it was before models/video_focalnet.py was optimised:
channels-first per block, the temporal focal convolutions as Conv1d over one sequence per spatial
location. Each class inherits its constructor (so its parameter names, shapes and initialisation)
from the fast one and replaces only the forward pass, so the same state dict loads into both.
benchmarks/bench_model.py times the two side by side and tests/test_model.py checks that their
logits and gradients agree. It is not registered with timm.
"""
import torch
import torch.utils.checkpoint as cp

from . import video_focalnet as fast
from .video_focalnet import VideoFocalNet


class SpatioTemporalFocalModulation(fast.SpatioTemporalFocalModulation):
    """Spatial focal modulation (depthwise 2-D hierarchy) times a temporal one (dense 1-D)."""

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


class FocalModulationBlock(fast.FocalModulationBlock):
    """The block on `(N, L, C)` tokens with explicit H, W; parameters built by the fast one."""

    modulation_layer = SpatioTemporalFocalModulation

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


class PatchEmbed(fast.PatchEmbed):
    """Per-frame patch embedding (stem and downsampling), or a tubelet Conv3d stem."""

    def forward(self, x):
        """x: (N, C, H, W) or, for a tubelet stem, (B, C, T, H, W) -> ((N', H'*W', C'), H', W')."""
        x = self.proj(x)
        if x.dim() == 5:
            B, C, T, H, W = x.shape
            x = x.transpose(1, 2).reshape(B * T, C, H, W)
        H, W = x.shape[-2:]
        return self._tokens(x.flatten(2).transpose(1, 2), H, W)


class BasicLayer(fast.BasicLayer):
    """The stage on `(N, L, C)` tokens with explicit H, W."""

    block_layer = FocalModulationBlock
    embed_layer = PatchEmbed

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


class ReferenceVideoFocalNet(VideoFocalNet):
    """Video-FocalNet with the reference blocks: same constructor, parameters and initialisation as
    `models.VideoFocalNet` (inherited), tokens `(N, L, C)` and channels-first per block."""

    embed_layer = PatchEmbed
    stage_layer = BasicLayer

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

