"""The device half of the train input path: torchvision's colour semantics, one draw per clip shared
by its frames, draws that are a function of (SEED, epoch, sample index), the recipe's distribution."""
import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from config import get_config
from datasets import build_batch_augment
from datasets.batch_augment import (BRIGHTNESS, CONTRAST, HUE, SATURATION, adjust_brightness, adjust_contrast,
                                    adjust_hue, adjust_saturation, to_grayscale)
from datasets.transforms import normalize

TORCHVISION = {BRIGHTNESS: F.adjust_brightness, CONTRAST: F.adjust_contrast, SATURATION: F.adjust_saturation,
               HUE: F.adjust_hue}


def config(**aug):
    cfg = get_config()
    cfg.defrost()
    cfg.MODEL.NUM_CLASSES = 4
    cfg.AUG.MIXUP, cfg.AUG.CUTMIX = 0.0, 0.0
    for key, value in aug.items():
        cfg.AUG[key] = value
    return cfg


def uint8_clips(batch=3, frames=4, size=20, seed=0):
    """Random colours with ties (grays, equal channels) as uint8 frames have them."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.randint(0, 256, (batch, frames, 3, size, size), generator=g, dtype=torch.uint8)
    clips[:, :, 1, :4] = clips[:, :, 0, :4]          # r == g
    clips[:, :, :, 4:8] = clips[:, :, :1, 4:8]       # gray
    clips[:, :, 2, 8:10] = clips[:, :, 0, 8:10]      # r == b
    return clips


def augment(batch_aug, clips, indices, epoch=0, step=0):
    labels = torch.zeros(len(clips), dtype=torch.long)
    return batch_aug(clips, labels, epoch=epoch, step=step, sample_indices=torch.tensor(indices))[0]


@pytest.mark.parametrize('op, factors', [(BRIGHTNESS, [0.6, 1.4]), (CONTRAST, [0.6, 1.4]),
                                         (SATURATION, [0.0, 1.2]), (HUE, [-0.5, -0.1, 0.07, 0.5])])
def test_colour_ops_match_torchvision(op, factors):
    ours = {BRIGHTNESS: adjust_brightness, CONTRAST: adjust_contrast, SATURATION: adjust_saturation,
            HUE: adjust_hue}[op]
    x = uint8_clips().float() / 255
    for factor in factors:
        got = ours(x.clone(), torch.full((len(x), 1, 1, 1, 1), factor))
        want = torch.stack([TORCHVISION[op](clip, factor) for clip in x])
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    gray = to_grayscale(x.clone())
    torch.testing.assert_close(gray, torch.stack([F.rgb_to_grayscale(c, 3) for c in x]), rtol=0, atol=1e-6)


def test_a_clip_is_torchvisions_colour_jitter_with_its_drawn_parameters():
    """Output = torchvision ops in the clip's drawn order with its factors, then grayscale, then
    ImageNet normalisation: ColorJitter's semantics, one draw for all frames."""
    batch_aug = build_batch_augment(config(COLOR_JITTER_PROB=0.5, GRAY_SCALE=0.5), 'cpu')
    clips, indices = uint8_clips(batch=8), list(range(10, 18))
    got = augment(batch_aug, clips, indices, epoch=3)
    params = batch_aug.colour_params(3, indices)
    assert {p.jitter for p in params} == {True, False} and {p.gray for p in params} == {True, False}
    for clip, out, p in zip(clips, got, params):
        x = clip.float() / 255
        if p.jitter:
            for op in p.order:
                x = TORCHVISION[op](x, p.factors[op])
        if p.gray:
            x = F.rgb_to_grayscale(x, 3)
        want = F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        torch.testing.assert_close(out, want, rtol=0, atol=2e-5)


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def test_batched_path_equals_clip_by_clip(device):
    """Whole-batch colouring (the GPU way: each operation on the subset of clips that has it at
    that place of its order) gives what clip-by-clip colouring on the CPU gives."""
    cfg = config(COLOR_JITTER_PROB=0.8, GRAY_SCALE=0.3)
    clips, indices = uint8_clips(batch=12), list(range(12))
    one_by_one = augment(build_batch_augment(cfg, 'cpu'), clips, indices)
    batched = build_batch_augment(cfg, device)
    batched.chunk_size = len(clips)
    torch.testing.assert_close(augment(batched, clips, indices).cpu(), one_by_one, rtol=0, atol=1e-5)


def test_one_draw_per_clip_identical_across_frames():
    batch_aug = build_batch_augment(config(COLOR_JITTER_PROB=1.0, GRAY_SCALE=0.0), 'cpu')
    still = uint8_clips(batch=8, frames=1).expand(8, 5, 3, 20, 20).contiguous()  # 5 equal frames per clip
    out = augment(batch_aug, still, list(range(8)))
    torch.testing.assert_close(out, out[:, :1].expand_as(out), rtol=0, atol=1e-5)
    plain = normalize(still[:, 0])
    changed = (out[:, 0] - plain).abs().amax((1, 2, 3))
    assert (changed > 0.05).all()  # every clip was jittered...
    assert len({round(v, 4) for v in changed.tolist()}) == 8  # ...each its own way


def test_draws_depend_on_seed_epoch_and_index_only():
    """The same clip comes out identical alone or in any batch, in any position, whatever the
    global RNGs; another epoch, index or SEED draws again."""
    batch_aug = build_batch_augment(config(COLOR_JITTER_PROB=0.8, GRAY_SCALE=0.2), 'cpu')
    clips = uint8_clips(batch=4)
    torch.manual_seed(0)
    np.random.seed(0)
    together = augment(batch_aug, clips, [7, 3, 9, 5], epoch=2, step=0)
    torch.manual_seed(1)
    reversed_ = augment(batch_aug, clips.flip(0), [5, 9, 3, 7], epoch=2, step=4)
    alone = torch.cat([augment(batch_aug, clips[i:i + 1], [k], epoch=2) for i, k in enumerate([7, 3, 9, 5])])
    assert torch.equal(together, reversed_.flip(0)) and torch.equal(together, alone)
    assert not torch.equal(together, augment(batch_aug, clips, [7, 3, 9, 5], epoch=3))
    assert not torch.equal(together, augment(batch_aug, clips, [8, 4, 10, 6], epoch=2))
    other = config(COLOR_JITTER_PROB=0.8, GRAY_SCALE=0.2)
    other.SEED = 5
    assert not torch.equal(together, augment(build_batch_augment(other, 'cpu'), clips, [7, 3, 9, 5], epoch=2))


def test_draws_follow_the_recipe():
    """Jitter with probability 0.8, grayscale 0.2, factors uniform in [max(0, 1 - x), 1 + x], hue in
    [-h, h], the four operations in a uniformly random order."""
    batch_aug = build_batch_augment(config(), 'cpu')  # the defaults are the recipe's
    assert batch_aug.strengths == (0.4, 0.4, 0.2, 0.1)
    params = batch_aug.colour_params(0, range(4000))
    assert abs(np.mean([p.jitter for p in params]) - 0.8) < 0.025
    assert abs(np.mean([p.gray for p in params]) - 0.2) < 0.025
    factors = np.array([p.factors for p in params])
    for column, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
        values = factors[:, column]
        assert low <= values.min() < low + 0.01 and high - 0.01 < values.max() <= high
        assert abs(values.mean() - (low + high) / 2) < 0.01
    first = np.bincount([p.order[0] for p in params], minlength=4) / len(params)
    assert np.abs(first - 0.25).max() < 0.03
    assert all(sorted(p.order) == [0, 1, 2, 3] for p in params)


def test_mixing_through_the_batch_augment_is_replayable():
    batch_aug = build_batch_augment(config(MIXUP=0.8, CUTMIX=1.0), 'cpu', rank=1)
    clips, labels = uint8_clips(batch=4), torch.tensor([0, 1, 2, 3])

    def run(**keys):
        return batch_aug(clips, labels, sample_indices=torch.arange(4), **keys)

    a = run(epoch=1, step=2)
    b = run(epoch=1, step=2, rank=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].shape == (4, 4)
    assert not torch.equal(run(epoch=1, step=2, rank=0)[0], a[0])
    assert not torch.equal(run(epoch=1, step=3)[0], a[0])


def test_bad_input_and_settings():
    batch_aug = build_batch_augment(config(), 'cpu')
    with pytest.raises(TypeError, match='expected uint8 clips'):
        batch_aug(torch.zeros(2, 2, 3, 8, 8), torch.zeros(2, dtype=torch.long), epoch=0, step=0,
                  sample_indices=torch.arange(2))
    with pytest.raises(ValueError, match='2 clips but 3 sample indices'):
        batch_aug(torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), epoch=0,
                  step=0, sample_indices=torch.arange(3))
    for bad in [(0.4, 0.4, 0.4), (0.4, 0.4, 0.2, 0.7), (-0.1, 0, 0, 0)]:
        with pytest.raises(ValueError, match=r'AUG.COLOR_JITTER must be \(brightness, contrast, saturation, hue\)'):
            build_batch_augment(config(COLOR_JITTER=bad), 'cpu')
