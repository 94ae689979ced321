"""Worker clip transforms: one crop/flip draw shared by all frames, uint8 out; normalisation; test crops."""
import pytest
import torch
from torchvision.transforms import v2

from config import get_config
from datasets.transforms import ClipCrop, SpatialViews, clip_crop, crop_box, normalize


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


def test_clip_crop_shares_crop_and_flip_across_frames_and_ships_uint8():
    crop = clip_crop(config())
    clip = position_clip()
    flips = set()
    for seed in range(30):
        out = crop(clip, torch.Generator().manual_seed(seed))
        assert out.shape == (6, 3, 32, 32) and out.dtype == torch.uint8
        # position channels identical in every frame: same crop and flip
        assert torch.equal(out[:, :2], out[:1, :2].expand_as(out[:, :2]))
        # per-frame content kept: the frame code differs between frames
        assert out[:, 2].float().mean(dim=(1, 2)).diff().abs().min() > 30
        red = out[0, 0].float()
        flips.add(bool(red[:, 0].mean() > red[:, -1].mean()))
    assert flips == {True, False}  # the flip does happen, with the same draw for all frames


def test_flip_probability_is_the_configured_one():
    # the whole 64x48 frame every time: only the flip varies
    crop = clip_crop(config(FLIP_PROB=0.5, CROP_SCALE=(1.0, 1.0), CROP_RATIO=(4 / 3, 4 / 3)))
    clip = position_clip(frames=1)
    whole = crop(clip, torch.Generator().manual_seed(0))
    mirrored = whole.flip(-1)
    flips = []
    for seed in range(600):
        out = crop(clip, torch.Generator().manual_seed(seed))
        assert torch.equal(out, whole) or torch.equal(out, mirrored)
        flips.append(torch.equal(out, mirrored))  # flipped relative to seed 0: half the time either way
    assert abs(sum(flips) / len(flips) - 0.5) < 0.07


def test_clip_crop_is_a_function_of_its_generator():
    crop, clip = clip_crop(config()), position_clip()
    a = crop(clip, torch.Generator().manual_seed(3))
    assert torch.equal(a, crop(clip, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, crop(clip, torch.Generator().manual_seed(4)))


def box_stats(draw, n=3000):
    boxes = torch.tensor([draw() for _ in range(n)], dtype=torch.float64)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (top + h <= 240).all() and (left >= 0).all() and (left + w <= 320).all()
    area, ratio = h * w / (240 * 320), w / h
    centre = (left + w / 2) / 320
    return area, ratio, centre


def test_crop_boxes_are_distributed_as_torchvisions():
    """The same distribution as torchvision's RandomResizedCrop.get_params (which draws from the
    global RNG): area fraction, aspect ratio and position."""
    generator = torch.Generator().manual_seed(0)
    ours = box_stats(lambda: crop_box(240, 320, (0.08, 1.0), (3 / 4, 4 / 3), generator))
    torch.manual_seed(0)
    frame = torch.zeros(3, 240, 320)
    theirs = box_stats(lambda: v2.RandomResizedCrop.get_params(frame, [0.08, 1.0], [3 / 4, 4 / 3]))
    for a, b in zip(ours, theirs):
        assert abs(a.mean() - b.mean()) < 0.02 and abs(a.std() - b.std()) < 0.02
    area, ratio, _ = ours
    assert 0.079 < area.min() < 0.1 and area.max() <= 1.0
    assert ratio.min() > 0.73 and ratio.max() < 1.36
    # a box that never fits: the largest centred box in the ratio range
    assert crop_box(10, 100, (0.99, 1.0), (1.0, 1.0), generator) == (0, 45, 10, 10)


def test_bad_crop_settings_name_the_key():
    with pytest.raises(ValueError, match='AUG.CROP_SCALE'):
        ClipCrop(32, (0.0, 1.0), (0.75, 1.33), 0.5)
    with pytest.raises(ValueError, match='AUG.CROP_RATIO'):
        ClipCrop(32, (0.1, 1.0), (1.5,), 0.5)


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
    # start at the border, end at 2 * ((43 - 32) // 2) = 10: one pixel short of it (mmaction's ThreeCrop)
    assert profile[0, 0] < 6 and 240 < profile[2, -1] < 249
    assert abs((profile[1, 0] + profile[1, -1]) / 2 - 127.5) < 4  # the middle one is centred
    assert profile[0, -1] < profile[1, -1] < profile[2, -1]
    short = views[:, 0, 1 - channel].float()
    assert short.min() < 6 and short.max() > 249                 # the whole short side is kept


def test_bad_crop_count():
    with pytest.raises(ValueError, match='TEST.NUM_CROP must be 1 or 3, got 2'):
        SpatialViews(32, 2)


def test_views_match_the_published_cv2_two_step_resizes():
    """Train (short side 256/224*S, box, box to S x S), 1-crop and 3-crop views against the cv2
    bilinear formula (benchmarks/measure_resize.py) on a 320x240 clip: within 2 levels (two rounded
    interpolations); one antialiased resize of the box was far off (mean 6.3, max 121)."""
    from benchmarks.measure_resize import published_views, scene

    frames = scene(2)
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)
    crop = ClipCrop(224, (0.08, 1.0), (3 / 4, 4 / 3), 0.0)
    hwc = lambda t: t.permute(0, 2, 3, 1).numpy().astype(int)  # noqa: E731
    for box in [(0, 0, 256, 341), (10, 40, 120, 150), (100, 200, 156, 141), (3, 5, 70, 80)]:
        train, centre, three = published_views(frames, 224, box)
        for ours, ref in [(crop.crop(clip, box), train), (SpatialViews(224, 1)(clip)[0], centre)] + \
                [(v, r) for v, r in zip(SpatialViews(224, 3)(clip), three)]:
            diff = abs(hwc(ours) - ref.astype(int))
            assert diff.max() <= 2 and diff.mean() < 0.5, (box, diff.max(), diff.mean())
