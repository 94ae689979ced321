"""A small synthetic action dataset written as real video files, for the demo and the tests.

Each clip shows one textured object over a textured, noisy background, filmed by a camera that may
shake. The classes differ only in how the object moves over time, so a single frame says next to
nothing about the class:

- ``up``, ``down``, ``left``, ``right``: the object keeps its size and travels 0.4 to 0.7 of the
  frame in a straight line;
- ``grow``, ``shrink``: the object stays in place and scales; both cover the same size range, and a
  moving object's size follows the same law as a scaling object's size in a random frame.

The object stays whole in the scene where its path allows (its place is drawn uniformly among those
that keep it so; a path too long for a large object is centred, cutting it equally at both ends).
Objects never wrap around to the opposite border: a jump across the frame between two sampled
frames reads as motion the other way, and it kept the demo's models at chance for several epochs.

The camera shake (``shake`` pixels, 0 for none) cuts every frame at its own random offset from a
scene ``2 * shake`` pixels larger: the motion between two frames is the object's plus a random jump
of the whole picture, so telling the classes apart takes more than comparing two positions.

``left`` and ``right`` are mirror images of each other, so a horizontal flip changes the label: train
on them with ``AUG.FLIP_PROB 0.0`` (as the SSv2 configs do). Crops keep the labels valid. The object
is kept far from the background in brightness so that it stays visible under grayscale and jitter.

``python -m tools.make_demo_data --out data/demo`` (``generate``) writes ``train/<class>/*.mp4``,
``val/<class>/*.mp4``, ``train.csv`` and ``val.csv`` (``relative/path.mp4,label`` lines) and
``labels.csv`` (``id,name`` with a header) under ``--out``; point ``DATA.ROOT``,
``DATA.TRAIN_FILE``, ``DATA.VAL_FILE`` and ``DATA.LABEL_LIST`` at them.
"""
import concurrent.futures
import multiprocessing
import os
import sys

import av
import numpy as np

from .encode import write_video

# Every class the generator knows, with a fixed id that seeds its clips (so a subset of classes
# still gives the same clips per class).
CLASSES = ('up', 'down', 'left', 'right', 'grow', 'shrink')
DEFAULT_CLASSES = CLASSES
# The travelling classes: (axis of motion, 0 for rows and 1 for columns; sign of the motion).
_MOTIONS = {'up': (0, -1), 'down': (0, 1), 'left': (1, -1), 'right': (1, 1)}
FPS = 16
_SPLITS = {'train': 0, 'val': 1}
_TEXTURE_CELLS = 4  # the object's texture is a 4x4 grid of two colours
# decord 0.6 misreads RGB frames of these widths (rows padded to 96 bytes come back as 4 or 6
# channels, or get_batch fails); found by decoding every even width from 16 to 320.
DECORD_BAD_WIDTHS = (16, 24, 48, 72)


def _pick_codec():
    """H.264 when this PyAV build can encode it, otherwise MPEG-4 part 2."""
    try:
        av.codec.Codec('libx264', 'w')
        return 'libx264'
    except Exception:  # noqa: BLE001 - any failure to find the encoder means "not available"
        return 'mpeg4'


def _smooth_noise(rng, h, w, cells, channels=3):
    """Low-frequency random texture in [0, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1, channels))
    ys = np.linspace(0, cells, h, endpoint=False)
    xs = np.linspace(0, cells, w, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _tinted(rng, level, spread=35.0):
    """An RGB colour whose mean is about `level` (0-255), with a random tint."""
    return level + rng.uniform(-spread, spread, 3)


def _scale_law(rng, side):
    """(smallest size, growth factor) of a scaling object; sizes span 0.15 to 0.84 of the side."""
    return rng.uniform(0.15, 0.28) * side, rng.uniform(2.0, 3.0)


def _place(rng, along, travel, size):
    """Start of a path of length `travel` on an axis of `along` pixels for an object of side `size`:
    uniform over the starts that keep the whole object in view, or the centred path where none does."""
    free = along - travel
    margin = min(size, free) / 2
    return rng.uniform(margin, free - margin)


def _trajectory(rng, name, h, w, t):
    """Per-frame object centre (cy, cx) and side length, all in pixels, for class `name`.

    A moving object's size is drawn from the law that the scaling classes follow at a random time,
    so the size of the object in one frame says nothing about the class.
    """
    progress = np.linspace(0.0, 1.0, t)
    small, factor = _scale_law(rng, min(h, w))
    if name in _MOTIONS:
        axis, sign = _MOTIONS[name]
        size = small * factor ** rng.uniform()
        along, across = (h, w) if axis == 0 else (w, h)
        travel = rng.uniform(0.4, 0.7) * along
        path = _place(rng, along, travel, size) + travel * (progress if sign > 0 else 1.0 - progress)
        still = np.full(t, _place(rng, across, 0.0, size))
        ys, xs = (path, still) if axis == 0 else (still, path)
        return ys, xs, np.full(t, size)
    if name in ('grow', 'shrink'):
        size = small * factor ** progress
        if name == 'shrink':
            size = size[::-1]
        largest = small * factor
        return np.full(t, _place(rng, h, 0.0, largest)), np.full(t, _place(rng, w, 0.0, largest)), size
    raise ValueError(f"unknown synthetic class '{name}'; choose from {', '.join(CLASSES)}")


def object_coordinates(cys, cxs, sizes, height, width):
    """Offsets (dy (T, H, 1), dx (T, 1, W)) of every pixel to the object's centre, in object sides:
    the object covers [-0.5, 0.5) on both axes (a disc: dy**2 + dx**2 < 0.25)."""
    iy, ix = np.arange(height)[None, :, None] + 0.5, np.arange(width)[None, None, :] + 0.5
    dy = (iy - cys[:, None, None]) / sizes[:, None, None]
    dx = (ix - cxs[:, None, None]) / sizes[:, None, None]
    return dy, dx


def render_clip(rng, name, height, width, num_frames, shake=0):
    """One clip of class `name` as uint8 frames (T, H, W, 3), seen by a camera that shakes by up to
    `shake` pixels on each axis: every frame is cut at its own offset from a scene 2 * shake larger.

    The trajectory is drawn first, in the scene's coordinates, so
    `_trajectory(rng_with_the_same_seed, ...)` reproduces it.
    """
    frames = _render_scene(rng, name, height + 2 * shake, width + 2 * shake, num_frames)
    if shake:
        tops, lefts = rng.integers(0, 2 * shake + 1, num_frames), rng.integers(0, 2 * shake + 1, num_frames)
        frames = np.stack([frame[top:top + height, left:left + width]
                           for frame, top, left in zip(frames, tops, lefts)])
    return np.clip(frames, 0, 255, out=frames).round().astype(np.uint8)


def _render_scene(rng, name, height, width, num_frames):
    """The scene as float32 frames (T, H, W, 3), before the camera cuts and quantises them."""
    cys, cxs, sizes = _trajectory(rng, name, height, width, num_frames)
    bright_object = rng.random() < 0.5
    bg_level, obj_levels = (70.0, (225.0, 165.0)) if bright_object else (185.0, (30.0, 90.0))
    background = bg_level + (_smooth_noise(rng, height, width, int(rng.integers(2, 6))) - 0.5) * 70
    background = (background + _tinted(rng, 0.0, 25.0)).astype(np.float32)
    colours = np.stack([_tinted(rng, level) for level in obj_levels])
    pattern = rng.integers(0, 2, (_TEXTURE_CELLS, _TEXTURE_CELLS))
    pattern[0, 0], pattern[-1, -1] = 0, 1  # both colours always appear
    texture = colours[pattern].astype(np.float32)  # (cells, cells, 3)
    disc = rng.random() < 0.5

    dy, dx = object_coordinates(cys, cxs, sizes, height, width)
    inside = (dy ** 2 + dx ** 2 < 0.25) if disc else ((np.abs(dy) < 0.5) & (np.abs(dx) < 0.5))
    ty = np.clip(((dy + 0.5) * _TEXTURE_CELLS).astype(int), 0, _TEXTURE_CELLS - 1)
    tx = np.clip(((dx + 0.5) * _TEXTURE_CELLS).astype(int), 0, _TEXTURE_CELLS - 1)
    object_pixels = np.take(texture.reshape(-1, 3), ty * _TEXTURE_CELLS + tx, axis=0)

    frames = np.where(inside[..., None], object_pixels, background[None])
    # Sensor noise, new in every frame: uniform on [-14, 14], standard deviation about 8.
    frames += rng.random(frames.shape, dtype=np.float32) * 28.0 - 14.0
    return frames


def _parse_size(size):
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _write_lines(path, lines):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
    os.replace(tmp, path)


def _write_clip(job):
    path, key, name, height, width, num_frames, shake, codec = job
    frames = render_clip(np.random.default_rng(key), name, height, width, num_frames, shake)
    # One encoder thread: identical bytes on every run. H.264 at high quality, else MPEG-4 at 4 Mbit/s.
    options, bit_rate = ({'crf': '10', 'preset': 'ultrafast'}, None) if codec == 'libx264' else ({}, 4_000_000)
    write_video(path, frames, fps=FPS, codec=codec, options=options, threads=1, bit_rate=bit_rate)


def generate(out_dir, clips_per_class=100, val_per_class=24, size=64, num_frames=16, seed=0,
             classes=None, workers=None, shake=0):
    """Write the dataset under `out_dir`; returns the paths to put in the DATA config keys.

    `size` is the frame side (or a (height, width) pair, both even); `shake` the camera's largest
    offset in pixels (module docstring). Clip `i` of a class and split depends only on (seed, split,
    class, i), whatever the number of `workers` (processes; None: one per usable CPU, at most 4). The annotation files are written last, so their presence means the
    videos are complete. Returns a dict with 'root', 'train_file', 'val_file' and 'label_list'.
    """
    classes = list(DEFAULT_CLASSES if classes is None else classes)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f'classes must be distinct names from {", ".join(CLASSES)}; got {classes}')
    height, width = _parse_size(size)
    if height % 2 or width % 2 or min(height, width) < 16:
        raise ValueError(f'size must be even and at least 16 pixels, got {width}x{height}')
    if width in DECORD_BAD_WIDTHS:
        raise ValueError(f'width {width} is misread by decord (the default DATA.DECODER); choose '
                         f'another even width, e.g. {width + 8}, not one of {DECORD_BAD_WIDTHS}')
    if num_frames < 2:
        raise ValueError(f'num_frames must be at least 2 to show motion, got {num_frames}')
    if shake < 0:
        raise ValueError(f'shake must be >= 0 pixels, got {shake}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if clips_per_class < 1 or val_per_class < 1:
        raise ValueError(f'clips_per_class and val_per_class must be >= 1, got '
                         f'{clips_per_class} and {val_per_class}')
    codec = _pick_codec()
    jobs, annotations = [], {'train': [], 'val': []}
    for split, count in (('train', clips_per_class), ('val', val_per_class)):
        for label, name in enumerate(classes):
            os.makedirs(os.path.join(out_dir, split, name), exist_ok=True)
            for i in range(count):
                rel = f'{split}/{name}/{name}_{i:05d}.mp4'
                annotations[split].append(f'{rel},{label}')
                jobs.append((os.path.join(out_dir, rel), (seed, _SPLITS[split], CLASSES.index(name), i),
                             name, height, width, num_frames, shake, codec))
    workers = min(len(os.sched_getaffinity(0)), 4) if workers is None else workers
    if workers > 1 and sys.platform == 'linux':
        # fork: the workers need no re-import of this package (which imports torch).
        context = multiprocessing.get_context('fork')
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(_write_clip, jobs, chunksize=16))
    else:
        for job in jobs:
            _write_clip(job)

    paths = {'root': out_dir,
             'train_file': os.path.join(out_dir, 'train.csv'),
             'val_file': os.path.join(out_dir, 'val.csv'),
             'label_list': os.path.join(out_dir, 'labels.csv')}
    _write_lines(paths['label_list'], ['id,name'] + [f'{i},{n}' for i, n in enumerate(classes)])
    _write_lines(paths['val_file'], annotations['val'])
    _write_lines(paths['train_file'], annotations['train'])
    return paths
