"""A small synthetic action dataset written as real video files, for the demo and the tests.

Each clip shows one textured object over a textured, noisy background. The classes differ only in
how the object moves over time, so a single frame carries no class information:

- ``up``, ``down``, ``horizontal`` (left or right at random): the object keeps its size and travels
  on a torus (it leaves one edge and re-enters at the opposite one), so at every time step its
  position is uniform over the frame;
- ``grow``, ``shrink``: the object stays in place and scales; both cover the same size range, and a
  moving object's size follows the same law as a scaling object's size in a random frame.

All classes are invariant to a horizontal flip (left and right motion form one class), so the
training recipe's flips, crops, colour jitter and grayscale keep the labels valid. The object is
kept far from the background in brightness so that it stays visible under grayscale and jitter.

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

# Every class the generator knows, with a fixed id that seeds its clips (so a subset of classes
# still gives the same clips per class).
CLASSES = ('up', 'down', 'horizontal', 'grow', 'shrink')
DEFAULT_CLASSES = CLASSES
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


def _trajectory(rng, name, h, w, t):
    """Per-frame object centre (cy, cx) and side length, all in pixels, for class `name`.

    A moving object's size is drawn from the law that the scaling classes follow at a random time,
    so the size of the object in one frame says nothing about the class.
    """
    side = min(h, w)
    progress = np.linspace(0.0, 1.0, t)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    small, factor = _scale_law(rng, side)
    if name in ('up', 'down', 'horizontal'):
        size = np.full(t, small * factor ** rng.uniform())
        travel = rng.uniform(0.5, 0.9) * (h if name != 'horizontal' else w)
        if name == 'up':
            ys, xs = cy - travel * progress, np.full(t, cx)
        elif name == 'down':
            ys, xs = cy + travel * progress, np.full(t, cx)
        else:
            ys, xs = np.full(t, cy), cx + rng.choice((-1.0, 1.0)) * travel * progress
        return ys % h, xs % w, size
    if name in ('grow', 'shrink'):
        size = small * factor ** progress
        if name == 'shrink':
            size = size[::-1]
        return np.full(t, cy), np.full(t, cx), size
    raise ValueError(f"unknown synthetic class '{name}'; choose from {', '.join(CLASSES)}")


def object_coordinates(cys, cxs, sizes, height, width):
    """Offsets (dy (T, H, 1), dx (T, 1, W)) of every pixel to the object's centre on the torus, in
    object sides: the object covers [-0.5, 0.5) on both axes (a disc: dy**2 + dx**2 < 0.25)."""
    iy, ix = np.arange(height)[None, :, None] + 0.5, np.arange(width)[None, None, :] + 0.5
    dy = ((iy - cys[:, None, None] + height / 2) % height - height / 2) / sizes[:, None, None]
    dx = ((ix - cxs[:, None, None] + width / 2) % width - width / 2) / sizes[:, None, None]
    return dy, dx


def render_clip(rng, name, height, width, num_frames):
    """One clip of class `name` as uint8 frames (T, H, W, 3).

    The trajectory is drawn first, so `_trajectory(rng_with_the_same_seed, ...)` reproduces it.
    """
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
    return np.clip(frames, 0, 255, out=frames).round().astype(np.uint8)


def write_video(path, frames, fps=FPS, codec=None):
    """Encode uint8 frames (T, H, W, 3) into an .mp4 (yuv420p) with PyAV."""
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f'{path}: yuv420p needs even frame sizes, got {width}x{height}')
    codec = codec or _pick_codec()
    with av.open(path, mode='w') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.codec_context.thread_count = 1  # one thread: identical bytes on every run
        if codec == 'libx264':
            stream.options = {'crf': '10', 'preset': 'ultrafast'}
        else:
            stream.bit_rate = 4_000_000
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format='rgb24')))
        container.mux(stream.encode())


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
    path, key, name, height, width, num_frames, codec = job
    frames = render_clip(np.random.default_rng(key), name, height, width, num_frames)
    write_video(path, frames, codec=codec)


def generate(out_dir, clips_per_class=100, val_per_class=24, size=64, num_frames=16, seed=0,
             classes=None, workers=None):
    """Write the dataset under `out_dir`; returns the paths to put in the DATA config keys.

    `size` is the frame side (or a (height, width) pair, both even). Clip `i` of a class and split
    depends only on (seed, split, class, i), whatever the number of `workers` (processes; None: one
    per usable CPU, at most 4). The annotation files are written last, so their presence means the
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
                             name, height, width, num_frames, codec))
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
