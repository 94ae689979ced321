"""Pixel error of our train and test views against the published pipeline's resizes, on a generated
320x240 AVI (UCF101's size).

    python -m benchmarks.measure_resize [--boxes 200]

The published pipeline (mmaction Resize / RandomResizedCrop / CenterCrop / ThreeCrop on numpy
frames) resized with cv2 bilinear, no antialias, twice for training: short side to 256 (long side
rounded half up), the random box cut from that, the box resized to 224x224. The reference here is
`cv2.resize(..., INTER_LINEAR)` when cv2 can be imported (it is no dependency of the project:
`pip install opencv-python-headless` to use it), else `cv2_bilinear` below, the same formula in
numpy (half-pixel centres, edge clamp; cv2's 11-bit fixed-point weights aside, so within 1 level).

Compared, with the same crop boxes:
- `ours`: datasets/transforms.py as it is (`ClipCrop`, `SpatialViews`);
- `one step, antialias`: one torchvision resize with antialias=True from the decoded frame, the box
  mapped onto it (our path before the views were matched to the published two steps).
Prints mean and max absolute error (0-255 levels) per view; nothing is asserted.
"""
import tempfile

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from datasets.decode import decode_frames
from datasets.encode import write_video
from datasets.transforms import ClipCrop, SpatialViews, crop_box, resize_side
from utils import cli
from utils.errors import cli_main

try:
    import cv2
except ImportError:
    cv2 = None


def cv2_bilinear(image, width, height):
    """cv2.resize(image, (width, height), interpolation=INTER_LINEAR) in float numpy, rounded:
    source x = (dx + 0.5) * src_w / width - 0.5, clamped at the edges, no antialias."""
    def taps(dst, src):
        pos = (np.arange(dst) + 0.5) * (src / dst) - 0.5
        low = np.floor(pos).astype(np.int64)
        frac = pos - low
        frac[low < 0], low[low < 0] = 0.0, 0
        top = low >= src - 1
        frac[top], low[top] = 0.0, src - 1
        return low, np.minimum(low + 1, src - 1), frac

    y0, y1, fy = taps(height, image.shape[0])
    x0, x1, fx = taps(width, image.shape[1])
    img = image.astype(np.float64)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def reference_resize(image, width, height):
    if cv2 is not None:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2_bilinear(image, width, height)


def short_side_size(height, width, side):
    """mmcv.rescale_size for scale (inf, side): the short side to `side`, the long side rounded."""
    factor = side / min(height, width)
    return int(height * factor + 0.5), int(width * factor + 0.5)


def published_views(frames, size, box):
    """(train view for `box` (top, left, h, w) on the 256 frame, 1-crop view, 3 crops) of HxWx3 frames."""
    side = resize_side(size)
    h, w = short_side_size(*frames.shape[1:3], side)
    big = np.stack([reference_resize(f, w, h) for f in frames])
    top, left, bh, bw = box
    train = np.stack([reference_resize(f[top:top + bh, left:left + bw], size, size) for f in big])
    ct, cl = (h - size) // 2, (w - size) // 2
    centre = big[:, ct:ct + size, cl:cl + size]
    h3, w3 = short_side_size(*frames.shape[1:3], size)
    small = np.stack([reference_resize(f, w3, h3) for f in frames])
    step = (w3 - size) // 2  # mmaction ThreeCrop: left, middle, right at 2 * step
    three = [small[:, :, x:x + size] for x in (0, step, 2 * step)]
    return train, centre, three


def one_step_antialiased(clip, size, box, scale):
    """The former path: the box mapped onto the decoded frame, one antialiased resize."""
    top, left, bh, bw = (round(v * scale) for v in box)
    train = F.resized_crop(clip, top, left, bh, bw, [size, size], antialias=True)
    centre = F.center_crop(F.resize(clip, [resize_side(size)], antialias=True), [size, size])
    return train, centre


def to_hwc(t):
    return t.permute(0, 2, 3, 1).numpy()


def errors(a, b):
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return d.mean(), d.max()


def scene(num_frames, width=320, height=240, seed=0):
    """Camera-like frames: smooth shading, a fine texture, sharp-edged moving shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    texture = rng.normal(0, 18, (height, width, 3))
    frames = []
    for t in range(num_frames):
        base = 110 + 60 * np.sin(xx / 37 + t / 5)[..., None] * np.cos(yy / 23)[..., None] * [1, 0.8, 0.6]
        frame = base + texture
        x0 = 20 + 6 * t
        frame[60:120, x0:x0 + 50] = (230, 40, 30)
        frame[150:200:4, :] = 20  # thin stripes alias when scaled without antialias
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(frames)


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.measure_resize', __doc__)
    parser.add_argument('--boxes', type=int, default=200, help='random train crop boxes to average over')
    parser.add_argument('--size', type=int, default=224)
    args = cli.parse(parser, argv)
    size = args.size
    with tempfile.TemporaryDirectory() as root:
        path = write_video(f'{root}/v.avi', scene(8), fps=25)  # mpeg4, as UCF101
        clip = decode_frames(path, list(range(8)), 'pyav')        # uint8 (8, 3, 240, 320)
    frames = to_hwc(clip)
    print(f'reference: {"cv2 " + cv2.__version__ if cv2 is not None else "numpy cv2_bilinear (cv2 not installed)"}')
    side = resize_side(size)
    big_h, big_w = short_side_size(*frames.shape[1:3], side)
    generator = torch.Generator().manual_seed(0)
    crop = ClipCrop(size, (0.08, 1.0), (3 / 4, 4 / 3), flip_prob=0.0)
    results = {'ours': {'train': [], 'test 1 crop': [], 'test 3 crops': []},
               'one step, antialias': {'train': [], 'test 1 crop': []}}
    _, centre_ref, three_ref = published_views(frames, size, (0, 0, side, side))
    ours_views = SpatialViews(size, 1)(clip)[0]
    results['ours']['test 1 crop'].append(errors(to_hwc(ours_views), centre_ref))
    ours_three = SpatialViews(size, 3)(clip)
    for k in range(3):
        results['ours']['test 3 crops'].append(errors(to_hwc(ours_three[k]), three_ref[k]))
    for _ in range(args.boxes):
        box = crop_box(big_h, big_w, crop.scale, crop.ratio, generator)
        train_ref, _, _ = published_views(frames, size, box)
        results['ours']['train'].append(errors(to_hwc(crop.crop(clip, box)), train_ref))
        old_train, old_centre = one_step_antialiased(clip, size, box, frames.shape[1] / big_h)
        results['one step, antialias']['train'].append(errors(to_hwc(old_train), train_ref))
    results['one step, antialias']['test 1 crop'].append(errors(to_hwc(old_centre), centre_ref))
    if cv2 is not None:  # how close the numpy formula (the tests' reference) is to cv2 itself
        results['numpy cv2_bilinear'] = {'resize to 256': [errors(
            cv2_bilinear(frames[0], big_w, big_h), reference_resize(frames[0], big_w, big_h))]}
    print(f'{"path":22s} {"view":14s} {"mean abs":>9s} {"max abs":>8s}')
    for name, views in results.items():
        for view, errs in views.items():
            mean = float(np.mean([e[0] for e in errs]))
            worst = int(max(e[1] for e in errs))
            print(f'{name:22s} {view:14s} {mean:9.3f} {worst:8d}')


if __name__ == '__main__':
    cli_main(main)
