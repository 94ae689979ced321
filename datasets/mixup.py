"""Mixup / CutMix for clips: timm's `Mixup` on clips seen as `(B, T*C, H, W)` images, so the
mixing weight and the CutMix box are shared by all frames of a clip."""
from timm.data import Mixup


class ClipMixup:
    """`clips, targets = mixup(clips, labels)` on `(B, T, C, H, W)` clips (B even); targets are
    smoothed one-hot mixtures `(B, num_classes)`."""

    def __init__(self, **kwargs):
        self.mixup = Mixup(**kwargs)

    def __call__(self, clips, labels):
        if clips.ndim != 5:
            raise ValueError(f'expected clips (B, T, C, H, W), got shape {tuple(clips.shape)}')
        b, t, c, h, w = clips.shape
        if labels.shape[0] != b:
            raise ValueError(f'{b} clips but {labels.shape[0]} labels')
        images, targets = self.mixup(clips.reshape(b, t * c, h, w), labels)
        return images.reshape(b, t, c, h, w), targets


def build_mixup(config):
    """ClipMixup from AUG.*, or None when Mixup and CutMix are both off."""
    aug = config.AUG
    if not (aug.MIXUP > 0 or aug.CUTMIX > 0 or aug.CUTMIX_MINMAX is not None):
        return None
    return ClipMixup(mixup_alpha=aug.MIXUP, cutmix_alpha=aug.CUTMIX, cutmix_minmax=aug.CUTMIX_MINMAX,
                     prob=aug.MIXUP_PROB, switch_prob=aug.MIXUP_SWITCH_PROB, mode=aug.MIXUP_MODE,
                     label_smoothing=aug.LABEL_SMOOTH, num_classes=config.MODEL.NUM_CLASSES)
