"""Video files from frames with PyAV: what the tests and benchmarks decode (datasets/decode.py reads
them back), and frames whose index and position can be read back from the pixels.

`write_video` encodes uint8 frames into MP4 (H.264), AVI (MPEG-4 part 2), MKV (FFV1) or WebM (VP8),
or an exact (lossless) encoding; `marker_frames` makes frames that say which frame they are.
"""
import os

import av
import numpy as np

# Encoder and stream options per kind of file. 'lossless' kinds decode to the exact pixels written.
CODECS = {
    '.mp4': ('libx264', 'yuv420p', {'preset': 'ultrafast', 'crf': '18', 'g': '8', 'bf': '2'}),
    '.avi': ('mpeg4', 'yuv420p', {'q:v': '3', 'g': '8'}),
    '.mkv': ('ffv1', 'bgr0', {}),
    '.webm': ('libvpx', 'yuv420p', {'deadline': 'realtime', 'cpu-used': '8', 'b': '1M'}),
}
LOSSLESS = {
    '.mp4': ('libx264rgb', 'rgb24', {'preset': 'ultrafast', 'qp': '0', 'g': '8', 'bf': '2'}),
    '.avi': ('ffv1', 'bgr0', {}),
    '.mkv': ('ffv1', 'bgr0', {}),
}


def write_video(path, frames, fps=25, codec=None, lossless=False, options=None, faststart=False,
                threads=None, bit_rate=None):
    """Encode `frames` (uint8 array-like, T x H x W x 3, RGB) into `path`; the container follows the
    extension. `codec` overrides the encoder, `lossless` picks an exact one (libx264rgb qp 0 for MP4,
    FFV1 for AVI/MKV). `faststart` puts the MP4 index first (so a truncated file still lists all
    frames: an over-reported frame count). `threads` 1 gives identical bytes on every run (the demo
    data); `bit_rate` is for encoders without a quality option. Returns `path`."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f'frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}')
    ext = os.path.splitext(str(path))[1].lower()
    table = LOSSLESS if lossless else CODECS
    if ext not in table:
        raise ValueError(f'no {"lossless " if lossless else ""}codec for {ext!r}; use one of {sorted(table)}')
    name, pix_fmt, opts = table[ext]
    if codec is not None:
        name, pix_fmt, opts = codec, 'yuv420p', {}
    opts = {**opts, **(options or {})}
    container_opts = {'movflags': 'faststart'} if faststart else {}
    with av.open(str(path), 'w', options=container_opts) as container:
        stream = container.add_stream(name, rate=fps, options=opts)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if threads is not None:
            stream.codec_context.thread_count = threads
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format='rgb24')
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def marker_frames(num_frames, width=64, height=48, seed=0):
    """Frames that say which frame they are: frame i is filled with grey level `frame_level(i)` and
    carries a small bright square that moves with i, over a fixed texture, so a wrong index, a
    wrong crop or a mirror shows as a large pixel difference."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(-12, 13, size=(height, width, 1))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frame = np.full((height, width, 3), frame_level(i), np.int64) + texture
        x = (i * 4) % max(1, width - 8)
        frame[2:10, x:x + 8] = (250, 30, 30)
        frames[i] = np.clip(frame, 0, 255)
    return frames


def frame_level(i):
    """Grey level of frame i in `marker_frames` (27 distinct levels, 8 apart, then repeats)."""
    return 24 + 8 * (i % 27)
