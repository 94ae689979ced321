"""Clip transforms: one random draw shared by all frames; shapes, dtype, normalisation, test crops."""
import pytest
import torch
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from config import get_config
from datasets.transforms import SpatialViews, normalize, train_transform


def position_clip(frames=6, height=48, width=64):
    """uint8 (T, 3, H, W): red codes x, green codes y (same in every frame), blue codes the frame."""
    x = torch.linspace(0, 255, width).round().to(torch.uint8)
    y = torch.linspace(0, 255, height).round().to(torch.uint8)
    clip = torch.empty(frames, 3, height, width, dtype=torch.uint8)
    clip[:, 0] = x.expand(height, width)
    clip[:, 1] = y[:, None].expand(height, width)
    clip[:, 2] = (torch.arange(frames) * 40).to(torch.uint8)[:, None, None]
    return clip


def config(**aug):
    cfg = get_config()
    cfg.defrost()
    cfg.DATA.INPUT_SIZE = 32
    for key, value in aug.items():
        cfg.AUG[key] = value
    return cfg


def denormalize(clip):
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN)[:, None, None] * 255
    std = torch.tensor(IMAGENET_DEFAULT_STD)[:, None, None] * 255
    return clip * std + mean


def test_train_transform_shares_crop_and_flip_across_frames():
    transform = train_transform(config(COLOR_JITTER_PROB=0.0, GRAY_SCALE=0.0))
    clip = position_clip()
    flips = set()
    for seed in range(30):
        torch.manual_seed(seed)
        out = denormalize(transform(clip))
        assert out.shape == (6, 3, 32, 32) and out.dtype == torch.float32
        # position channels identical in every frame: same crop and flip
        assert torch.allclose(out[:, :2], out[:1, :2].expand_as(out[:, :2]), atol=1e-3)
        # per-frame content kept: the frame code differs between frames
        assert out[:, 2].mean(dim=(1, 2)).diff().abs().min() > 30
        red = out[0, 0]
        flips.add(bool(red[:, 0].mean() > red[:, -1].mean()))
    assert flips == {True, False}  # the flip does happen, with the same draw for all frames


def test_full_train_chain_gives_identical_frames_for_identical_input():
    transform = train_transform(config(COLOR_JITTER_PROB=1.0, GRAY_SCALE=0.5))
    clip = position_clip()
    clip[:, 2] = 90
    outputs = []
    for seed in range(10):
        torch.manual_seed(seed)
        out = transform(clip)
        assert torch.allclose(out, out[:1].expand_as(out), atol=1e-5)
        outputs.append(out[0])
    assert not torch.allclose(outputs[0], outputs[1])  # the draws do differ between clips


def test_normalisation_uses_imagenet_statistics_on_the_255_scale():
    clip = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    out = normalize(clip)
    expected = (100 - torch.tensor([123.675, 116.28, 103.53])) / torch.tensor([58.395, 57.12, 57.375])
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-4)


def test_one_test_crop_is_central_and_deterministic():
    views = SpatialViews(32, 1)(position_clip())
    assert views.shape == (1, 6, 3, 32, 32) and views.dtype == torch.uint8
    assert torch.equal(views, SpatialViews(32, 1)(position_clip()))
    red = views[0, 0, 0].float()
    assert abs((red[:, 0].mean() + red[:, -1].mean()) / 2 - 127.5) < 6  # symmetric (to a pixel)
    assert red[:, 0].mean() > 20  # 256/224 resize then crop: the borders are cut


@pytest.mark.parametrize('height, width', [(48, 64), (64, 48)])
def test_three_crops_cover_start_centre_and_end_of_the_long_side(height, width):
    views = SpatialViews(32, 3)(position_clip(height=height, width=width))
    assert views.shape == (3, 6, 3, 32, 32)
    channel = 0 if width > height else 1  # the code along the long side
    code = views[:, 0, channel].float()
    profile = code.mean(dim=1 if channel == 0 else 2)  # along the long side
    assert profile[0, 0] < 6 and profile[2, -1] > 249          # start and end reach the borders
    assert abs((profile[1, 0] + profile[1, -1]) / 2 - 127.5) < 4  # the middle one is centred
    assert profile[0, -1] < profile[1, -1] < profile[2, -1]
    short = views[:, 0, 1 - channel].float()
    assert short.min() < 6 and short.max() > 249                 # the whole short side is kept


def test_bad_crop_count():
    with pytest.raises(ValueError, match='TEST.NUM_CROP must be 1 or 3, got 2'):
        SpatialViews(32, 2)
