"""Clip transforms on uint8 `(T, C, H, W)` tensors (PROTOCOL.md).

torchvision `transforms.v2` treats the leading T dimension as a batch and draws its random
parameters once per call, so every frame of a clip gets the same crop, flip and colour change.
Frames stay uint8 until the final normalisation.
"""
import torch
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


def resize_side(input_size):
    """Short side before cropping: 256/224 * INPUT_SIZE (256 for 224)."""
    return round(input_size * 256 / 224)


def decode_side(config, train, num_crop=1):
    """Short side the decoder may scale down to: what the first resize of the chain asks for."""
    size = config.DATA.INPUT_SIZE
    return size if (not train and num_crop == 3) else resize_side(size)


def normalize(clip):
    """uint8 -> float32 normalised with ImageNet mean/std (0-255: mean 123.675.., std 58.395..).
    Made contiguous first: decoded frames are channels-last views, slow for element-wise ops."""
    clip = F.to_dtype(clip.contiguous(), torch.float32, scale=True)
    return F.normalize(clip, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)


def train_transform(config):
    """Short-side resize, random resized crop to INPUT_SIZE, flip, colour jitter (with
    probability), grayscale (with probability), normalise: uint8 (T,C,H,W) -> float (T,C,S,S)."""
    aug, size = config.AUG, config.DATA.INPUT_SIZE
    ops = [
        v2.Resize(resize_side(size), antialias=True),
        v2.RandomResizedCrop(size, scale=tuple(aug.CROP_SCALE), ratio=tuple(aug.CROP_RATIO), antialias=True),
        v2.RandomHorizontalFlip(aug.FLIP_PROB),
    ]
    if any(aug.COLOR_JITTER) and aug.COLOR_JITTER_PROB > 0:  # (brightness, contrast, saturation, hue)
        ops.append(v2.RandomApply([v2.ColorJitter(*aug.COLOR_JITTER)], p=aug.COLOR_JITTER_PROB))
    if aug.GRAY_SCALE > 0:
        ops.append(v2.RandomGrayscale(aug.GRAY_SCALE))
    ops.append(v2.Lambda(normalize))
    return v2.Compose(ops)


def three_crops(clip, size):
    """Three `size` squares at the start, centre and end of the long side (short side == size)."""
    height, width = clip.shape[-2:]
    if width >= height:
        return [F.crop(clip, 0, left, size, size) for left in (0, (width - size) // 2, width - size)]
    return [F.crop(clip, top, 0, size, size) for top in (0, (height - size) // 2, height - size)]


class SpatialViews:
    """Spatial test views of a clip: uint8 (T,C,H,W) -> uint8 (num_crop, T, C, S, S).

    One crop: short side to 256/224*S, centre crop. Three crops: short side to S, three squares
    along the long side (start, centre, end)."""

    def __init__(self, input_size, num_crop=1):
        if num_crop not in (1, 3):
            raise ValueError(f'TEST.NUM_CROP must be 1 or 3, got {num_crop}')
        self.size, self.num_crop = input_size, num_crop

    def __call__(self, clip):
        if self.num_crop == 1:
            clip = F.resize(clip, [resize_side(self.size)], antialias=True)
            return F.center_crop(clip, [self.size, self.size]).unsqueeze(0)
        clip = F.resize(clip, [self.size], antialias=True)
        return torch.stack(three_crops(clip, self.size))
