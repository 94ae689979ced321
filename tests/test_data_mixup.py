"""Clip Mixup/CutMix: one box and one weight for all frames of a clip, smoothed targets."""
import pytest
import torch

from config import get_config
from datasets import build_mixup


def config(**aug):
    cfg = get_config()
    cfg.defrost()
    cfg.MODEL.NUM_CLASSES = 5
    for key, value in aug.items():
        cfg.AUG[key] = value
    return cfg


def constant_clips(batch=4, frames=3):
    """Clip b, frame t filled with 10 * b + t, so the mixed source shows in every pixel."""
    values = 10 * torch.arange(batch)[:, None] + torch.arange(frames)[None]
    return values[:, :, None, None, None].float().expand(batch, frames, 3, 16, 16).contiguous()


def test_cutmix_box_is_shared_by_all_frames():
    mixup = build_mixup(config(MIXUP=0.0, CUTMIX=1.0, MIXUP_PROB=1.0, LABEL_SMOOTH=0.0))
    torch.manual_seed(0)
    clips, labels = constant_clips(), torch.tensor([0, 1, 2, 3])
    mixed, targets = mixup(clips.clone(), labels)
    assert mixed.shape == clips.shape
    pasted = mixed != clips  # where the flipped clip was pasted
    assert pasted.any()
    assert torch.equal(pasted, pasted[:, :1].expand_as(pasted))  # same box in every frame and channel
    area = pasted[0, 0, 0].float().mean()
    # targets: the pasted clip's class weighs the pasted area
    assert torch.allclose(targets[0, 3], area, atol=1e-6) and torch.allclose(targets.sum(1), torch.ones(4))


def test_mixup_weight_is_shared_by_all_frames_and_smoothed_targets():
    mixup = build_mixup(config(MIXUP=0.8, CUTMIX=0.0, LABEL_SMOOTH=0.1))
    torch.manual_seed(1)
    clips, labels = constant_clips(), torch.tensor([0, 1, 2, 3])
    mixed, targets = mixup(clips.clone(), labels)
    # pixel = lam * own + (1 - lam) * flipped, one lam for the batch and all frames
    lam = (mixed[0] - clips[3]) / (clips[0] - clips[3])
    assert torch.allclose(lam, lam.flatten()[0].expand_as(lam), atol=1e-5)
    assert targets.shape == (4, 5) and torch.allclose(targets.sum(1), torch.ones(4))
    assert torch.isclose(targets.min(), torch.tensor(0.1 / 5))  # label smoothing off the mixed pair


def test_disabled_and_bad_input():
    assert build_mixup(config(MIXUP=0.0, CUTMIX=0.0, CUTMIX_MINMAX=None)) is None
    mixup = build_mixup(config())
    with pytest.raises(ValueError, match=r'expected clips \(B, T, C, H, W\)'):
        mixup(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(AssertionError):  # timm's Mixup needs an even batch (the loader drops the last)
        mixup(torch.zeros(3, 2, 3, 8, 8), torch.zeros(3, dtype=torch.long))
