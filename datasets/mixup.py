"""Mixup / CutMix for clips, with timm's semantics ('batch' mode) and replayable draws.

timm's `Mixup` draws from numpy's global RNG, which differs between an uninterrupted and a resumed
run. `ClipMixup` draws lambda, the choice of Mixup or CutMix and the box from a generator seeded by
(SEED, epoch, step, rank), so a batch is mixed the same way every time it is made. Clip b is mixed
with clip B-1-b (timm's flipped batch); one lambda and one box for the whole batch and every frame.
Targets are timm's `mixup_target` (label smoothing included).
"""
import numpy as np
from timm.data.mixup import mixup_target

from utils.errors import ConfigValueError

from .rng import MIX, numpy_generator


class ClipMixup:
    """`clips, targets = mixup(clips, labels, epoch=e, step=s, rank=r)` on float `(B, T, C, H, W)`
    clips (mixed in place); targets are smoothed one-hot mixtures `(B, num_classes)`."""

    def __init__(self, mixup_alpha=1.0, cutmix_alpha=0.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5,
                 label_smoothing=0.1, num_classes=1000, seed=0, correct_lam=True):
        if cutmix_minmax is not None:
            if len(cutmix_minmax) != 2:
                raise ConfigValueError(f'AUG.CUTMIX_MINMAX must be (min, max) box fractions, got {cutmix_minmax}')
            cutmix_alpha = 1.0  # as timm: the box size comes from the range, lambda from the box
        self.mixup_alpha, self.cutmix_alpha, self.cutmix_minmax = mixup_alpha, cutmix_alpha, cutmix_minmax
        self.prob, self.switch_prob, self.correct_lam = prob, switch_prob, correct_lam
        self.label_smoothing, self.num_classes, self.seed = label_smoothing, num_classes, seed

    def draw(self, height, width, epoch, step, rank=0):
        """(lam, box or None) for the batch of (epoch, step, rank); box = (top, bottom, left, right)."""
        rng = numpy_generator(self.seed, MIX, epoch, step, rank)
        if rng.random() >= self.prob:
            return 1.0, None
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = rng.random() < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        if not use_cutmix:
            return lam, None
        return self._box(rng, height, width, lam)

    def _box(self, rng, height, width, lam):
        """timm's rand_bbox / rand_bbox_minmax and its area correction of lambda."""
        if self.cutmix_minmax is not None:
            low, high = self.cutmix_minmax
            cut_h = int(rng.integers(int(height * low), int(height * high)))
            cut_w = int(rng.integers(int(width * low), int(width * high)))
            top, left = int(rng.integers(0, height - cut_h)), int(rng.integers(0, width - cut_w))
            box = (top, top + cut_h, left, left + cut_w)
        else:
            ratio = np.sqrt(1 - lam)
            cut_h, cut_w = int(height * ratio), int(width * ratio)
            cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
            box = (int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height)),
                   int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width)))
        if self.correct_lam or self.cutmix_minmax is not None:
            lam = 1.0 - (box[1] - box[0]) * (box[3] - box[2]) / float(height * width)
        return lam, box

    def __call__(self, clips, labels, *, epoch, step, rank=0):
        if clips.ndim != 5:
            raise ValueError(f'expected clips (B, T, C, H, W), got shape {tuple(clips.shape)}')
        if labels.shape[0] != clips.shape[0]:
            raise ValueError(f'{clips.shape[0]} clips but {labels.shape[0]} labels')
        lam, box = self.draw(*clips.shape[-2:], epoch, step, rank)
        if lam != 1.0:
            mix_pairs(clips, lam, box)
        return clips, mixup_target(labels, self.num_classes, lam, self.label_smoothing)


def mix_pairs(clips, lam, box=None):
    """In place: clip b and clip B-1-b become lam * own + (1 - lam) * other (Mixup), or swap the
    box (CutMix). Pair by pair, so the working memory is one clip (one buffer for all pairs), not a
    flipped batch."""
    batch = clips.shape[0]
    region = clips
    if box is not None:
        top, bottom, left, right = box
        region = clips[..., top:bottom, left:right]
    kept = region[0].new_empty(region.shape[1:])
    for b in range(batch // 2):
        first, second = region[b], region[batch - 1 - b]
        kept.copy_(first)
        if box is None:
            first.mul_(lam).add_(second, alpha=1 - lam)
            second.mul_(lam).add_(kept, alpha=1 - lam)
        else:
            first.copy_(second)
            second.copy_(kept)
    return clips


def build_mixup(config):
    """ClipMixup from AUG.*, or None when Mixup and CutMix are both off."""
    aug = config.AUG
    if not (aug.MIXUP > 0 or aug.CUTMIX > 0 or aug.CUTMIX_MINMAX is not None):
        return None
    return ClipMixup(mixup_alpha=aug.MIXUP, cutmix_alpha=aug.CUTMIX, cutmix_minmax=aug.CUTMIX_MINMAX,
                     prob=aug.MIXUP_PROB, switch_prob=aug.MIXUP_SWITCH_PROB,
                     label_smoothing=aug.LABEL_SMOOTH, num_classes=config.MODEL.NUM_CLASSES, seed=config.SEED)
