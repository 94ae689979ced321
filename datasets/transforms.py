"""Clip transforms on uint8 `(T, C, H, W)` tensors (docs/protocol.md), in the loader workers.

Training: `ClipCrop` (random resized crop + flip, one draw per clip from the clip's own generator,
shared by all frames); the rest of the recipe runs batched on the device (batch_augment.py).
Testing: `SpatialViews`. Frames stay uint8; `normalize` makes the float model input.
"""
import math

import torch
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.transforms.v2 import functional as F

from utils.errors import ConfigValueError


def resize_side(input_size):
    """Short side before cropping: 256/224 * INPUT_SIZE (256 for 224)."""
    return round(input_size * 256 / 224)


def short_side_size(height, width, side):
    """(h, w) with the short side `side` and the long side rounded half up: mmcv.rescale_size, which
    the published Resize(scale=(-1, side)) used."""
    factor = side / min(height, width)
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize_short(clip, side):
    """Short side to `side`, bilinear without antialias (half-pixel centres): what cv2.resize
    INTER_LINEAR did in the published pipeline, within one level (cv2 uses fixed-point weights)."""
    size = short_side_size(*clip.shape[-2:], side)
    if tuple(clip.shape[-2:]) == size:
        return clip
    return F.resize(clip, list(size), antialias=False)


def decode_side(config, train, num_crop=1):
    """Short side the decoder may scale down to: what the first resize of the chain asks for."""
    size = config.DATA.INPUT_SIZE
    return size if (not train and num_crop == 3) else resize_side(size)


def normalize(clip):
    """uint8 -> float32 normalised with ImageNet mean/std (0-255: mean 123.675.., std 58.395..).
    Made contiguous first: decoded frames are channels-last views, slow for element-wise ops."""
    clip = F.to_dtype(clip.contiguous(), torch.float32, scale=True)
    return F.normalize(clip, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)


def crop_box(height, width, scale, ratio, generator):
    """(top, left, h, w) of a random resized crop: area fraction in `scale`, aspect ratio in `ratio`
    (log-uniform), drawn from `generator`; torchvision's RandomResizedCrop.get_params (10 tries,
    then the largest centred box within the ratio range)."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio, dtype=torch.float64))
    for _ in range(10):
        u = torch.rand(2, generator=generator, dtype=torch.float64)
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u[0].item())
        aspect = math.exp((log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1]).item())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class ClipCrop:
    """The worker half of the train augmentation: random resized crop to INPUT_SIZE and horizontal
    flip, one draw per clip, on uint8 `(T, C, H, W)` -> uint8 `(T, C, S, S)` (workers never ship
    float: a quarter of the bytes). Colour jitter, grayscale and normalisation follow on the
    training device (datasets/batch_augment.py).

    As the published pipeline: the short side goes to 256/224 * S (bilinear, no antialias, as its
    cv2 resize), the box is drawn on that frame, and the box is resized to S x S the same way (two
    interpolations; benchmarks/measure_resize.py gives the difference to one antialiased resize)."""

    def __init__(self, input_size, scale, ratio, flip_prob):
        self.size, self.scale, self.ratio, self.flip_prob = input_size, tuple(scale), tuple(ratio), flip_prob
        if not (len(self.scale) == 2 and 0 < self.scale[0] <= self.scale[1] <= 1):
            raise ConfigValueError(f'AUG.CROP_SCALE must be (min, max) area fractions in (0, 1], got {scale}')
        if not (len(self.ratio) == 2 and 0 < self.ratio[0] <= self.ratio[1]):
            raise ConfigValueError(f'AUG.CROP_RATIO must be (min, max) aspect ratios > 0, got {ratio}')

    def crop(self, frames, box):
        """Frames at any size -> short side 256/224 * S -> the box (top, left, h, w), given on that
        frame, resized to S x S."""
        clip = resize_short(frames, resize_side(self.size))
        return F.resized_crop(clip, *box, [self.size, self.size], antialias=False)

    def __call__(self, frames, generator):
        height, width = short_side_size(*frames.shape[-2:], resize_side(self.size))
        clip = self.crop(frames, crop_box(height, width, self.scale, self.ratio, generator))
        if torch.rand((), generator=generator) < self.flip_prob:
            clip = F.horizontal_flip(clip)
        return clip


def clip_crop(config):
    aug = config.AUG
    return ClipCrop(config.DATA.INPUT_SIZE, aug.CROP_SCALE, aug.CROP_RATIO, aug.FLIP_PROB)


def three_crops(clip, size):
    """Three `size` squares along the long side (short side == size) at 0, step and 2 * step,
    step = (long - size) // 2: mmaction's ThreeCrop (start, centre, end to within a pixel)."""
    height, width = clip.shape[-2:]
    if width >= height:
        step = (width - size) // 2
        return [F.crop(clip, 0, left, size, size) for left in (0, step, 2 * step)]
    step = (height - size) // 2
    return [F.crop(clip, top, 0, size, size) for top in (0, step, 2 * step)]


class SpatialViews:
    """Spatial test views of a clip: uint8 (T,C,H,W) -> uint8 (num_crop, T, C, S, S).

    One crop: short side to 256/224*S, centre crop (offsets rounded down, as mmaction's CenterCrop).
    Three crops: short side to S, three squares along the long side. Resizes as `resize_short`."""

    def __init__(self, input_size, num_crop=1):
        if num_crop not in (1, 3):
            raise ConfigValueError(f'TEST.NUM_CROP must be 1 or 3, got {num_crop}')
        self.size, self.num_crop = input_size, num_crop

    def __call__(self, clip):
        if self.num_crop == 1:
            clip = resize_short(clip, resize_side(self.size))
            height, width = clip.shape[-2:]
            top, left = (height - self.size) // 2, (width - self.size) // 2
            return F.crop(clip, top, left, self.size, self.size).unsqueeze(0)
        clip = resize_short(clip, self.size)
        return torch.stack(three_crops(clip, self.size))
