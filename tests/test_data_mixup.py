"""Clip Mixup/CutMix: one box and one weight for all frames of a clip, timm's targets, and draws
that are a function of (SEED, epoch, step, rank) only."""
import numpy as np
import pytest
import torch
from timm.data.mixup import cutmix_bbox_and_lam, mixup_target

from config import get_config
from datasets import build_mixup
from utils.errors import UserError


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


def mix(mixup, clips, labels, epoch=0, step=0, rank=0):
    return mixup(clips.clone(), labels, epoch=epoch, step=step, rank=rank)


def test_cutmix_box_is_shared_by_all_frames_and_targets_follow_the_box():
    mixup = build_mixup(config(MIXUP=0.0, CUTMIX=1.0, MIXUP_PROB=1.0, LABEL_SMOOTH=0.0))
    clips, labels = constant_clips(), torch.tensor([0, 1, 2, 3])
    mixed, targets = mix(mixup, clips, labels)
    assert mixed.shape == clips.shape
    pasted = mixed != clips  # where the flipped clip was pasted
    assert pasted.any()
    assert torch.equal(pasted, pasted[:, :1].expand_as(pasted))  # same box in every frame and channel
    assert torch.equal(mixed[0][pasted[0]], clips[3][pasted[0]])  # pasted from the flipped batch
    area = pasted[0, 0, 0].float().mean()
    # targets: the pasted clip's class weighs the pasted area (timm's lambda correction)
    assert torch.allclose(targets[0, 3], area, atol=1e-6) and torch.allclose(targets.sum(1), torch.ones(4))
    assert torch.allclose(targets, mixup_target(labels, 5, 1 - area.item(), 0.0))


def test_mixup_weight_is_shared_by_all_frames_and_targets_are_timms():
    mixup = build_mixup(config(MIXUP=0.8, CUTMIX=0.0, LABEL_SMOOTH=0.1))
    clips, labels = constant_clips(), torch.tensor([0, 1, 2, 3])
    mixed, targets = mix(mixup, clips, labels, step=1)
    # pixel = lam * own + (1 - lam) * flipped, one lam for the batch and all frames
    lam = (mixed[0] - clips[3]) / (clips[0] - clips[3])
    assert torch.allclose(lam, lam.flatten()[0].expand_as(lam), atol=1e-5)
    assert torch.allclose(mixed[3], lam[0, 0, 0, 0] * clips[3] + (1 - lam[0, 0, 0, 0]) * clips[0], atol=1e-4)
    assert torch.allclose(targets, mixup_target(labels, 5, lam.flatten()[0].item(), 0.1), atol=1e-5)
    assert torch.isclose(targets.min(), torch.tensor(0.1 / 5))  # label smoothing off the mixed pair


def test_draws_are_a_function_of_seed_epoch_step_rank():
    mixup = build_mixup(config())
    clips, labels = torch.randn(4, 2, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    np.random.seed(0)
    torch.manual_seed(0)
    a = mix(mixup, clips, labels, epoch=2, step=5, rank=1)
    np.random.seed(1)  # the global RNGs play no part
    torch.manual_seed(1)
    b = mix(mixup, clips, labels, epoch=2, step=5, rank=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for key in (dict(epoch=3, step=5, rank=1), dict(epoch=2, step=6, rank=1), dict(epoch=2, step=5, rank=0)):
        assert not torch.equal(mix(mixup, clips, labels, **key)[0], a[0]), key
    other_seed = config()
    other_seed.SEED = 1
    assert not torch.equal(mix(build_mixup(other_seed), clips, labels, epoch=2, step=5, rank=1)[0], a[0])


def test_mix_choice_and_lambda_follow_timms_distribution():
    """switch prob 0.5 between Mixup (Beta(0.8, 0.8)) and CutMix (Beta(1, 1), lam from the box)."""
    mixup = build_mixup(config(MIXUP=0.8, CUTMIX=1.0, MIXUP_SWITCH_PROB=0.5))
    draws = [mixup.draw(224, 224, epoch=0, step=s) for s in range(2000)]
    cut = [lam for lam, box in draws if box is not None]
    mixed = [lam for lam, box in draws if box is None]
    assert 0.45 < len(cut) / len(draws) < 0.55
    assert abs(np.mean(mixed) - 0.5) < 0.03 and abs(np.var(mixed) - 0.25 / 2.6) < 0.01  # Beta(.8, .8)
    np.random.seed(0)  # timm's own CutMix (global RNG): lambda corrected for the box clipped at borders
    timm_cut = [cutmix_bbox_and_lam((224, 224), np.random.beta(1.0, 1.0))[1] for _ in range(len(cut))]
    assert abs(np.mean(cut) - np.mean(timm_cut)) < 0.03 and abs(np.std(cut) - np.std(timm_cut)) < 0.03
    off = build_mixup(config(MIXUP_PROB=0.0))
    assert all(off.draw(8, 8, 0, s) == (1.0, None) for s in range(20))


def test_disabled_and_bad_input():
    assert build_mixup(config(MIXUP=0.0, CUTMIX=0.0, CUTMIX_MINMAX=None)) is None
    with pytest.raises(UserError, match=r'AUG.CUTMIX_MINMAX must be \(min, max\)'):
        build_mixup(config(CUTMIX_MINMAX=(0.2,)))
    mixup = build_mixup(config())
    with pytest.raises(ValueError, match=r'expected clips \(B, T, C, H, W\)'):
        mixup(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), epoch=0, step=0)
    with pytest.raises(ValueError, match='3 clips but 2 labels'):
        mixup(torch.zeros(3, 2, 3, 8, 8), torch.zeros(2, dtype=torch.long), epoch=0, step=0)
