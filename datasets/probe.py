"""What a video stream is, as a player sees it, and whether decord reads it right.

`probe` opens a file with PyAV and decodes its first frame: the display rotation is frame side data
(the container's display matrix), so it is only known once a frame decodes. The shown size is the
stored size turned by that rotation; decode sizes are computed from it.

`decord_trouble` says why decord must not read a stream, or None. decord's random access
(`get_batch`) returns other frames than an in-order decode on many streams (docs/videos.md has the
measurements); it is trusted only where it was measured right:
- codecs that never reorder frames (intra-only MJPEG, FFV1, raw video; VP8, VP9), any container;
- H.264 and HEVC in MP4/MOV and Matroska/WebM, with or without B-frames;
- MPEG-4 part 2 without B-frames (UCF101's Simple Profile AVIs), any container.
Everything else (MPEG-4 or MPEG-2 with B-frames in any container, H.264 in AVI or MPEG-TS, codecs
not measured) is read with PyAV.
"""
import functools
import os
from collections import namedtuple

import av

Probe = namedtuple('Probe', 'container codec b_frames width height rotation')
Probe.__doc__ = """container: PyAV's format name; codec: decoder name; b_frames: the stream reorders
frames (has_b_frames); width, height: as shown (rotation applied); rotation: degrees
counter-clockwise (0, 90, 180 or 270) a player turns the stored frames by."""

_TIMESTAMPED = ('mp4', 'mov', 'matroska', 'webm')   # containers that store presentation timestamps


def _probe(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = 1
        rotation = 0
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError:
                continue
            if frames:
                rotation = int(frames[0].rotation) % 360
                break
        width, height = (ctx.height, ctx.width) if rotation % 180 else (ctx.width, ctx.height)
        return Probe(container.format.name, ctx.codec.name, bool(ctx.has_b_frames), width, height, rotation)


@functools.lru_cache(maxsize=4096)
def _cached(path, mtime, size):
    return _probe(path)


def probe(path):
    """The Probe of `path` (cached per file version); None when PyAV cannot open it or it has no
    video stream (the decoders then say why)."""
    try:
        stat = os.stat(path)
        return _cached(path, stat.st_mtime_ns, stat.st_size)
    except (av.error.FFmpegError, OSError, IndexError, UnicodeDecodeError):
        return None


def decord_trouble(info):
    """Why decord returns wrong frames for a stream of Probe `info`, or None where it was measured
    right (module docstring)."""
    if info is None:
        return None  # nothing to judge: decord gets its chance, a failure falls back to PyAV
    try:
        reorders = av.codec.Codec(info.codec, 'r').reorder
    except (av.error.FFmpegError, ValueError):  # pragma: no cover - a decoder PyAV does not know
        reorders = True
    formats = set(info.container.split(','))
    if not reorders:
        return None
    if info.codec in ('h264', 'hevc') and formats & set(_TIMESTAMPED):
        return None
    if info.codec == 'mpeg4' and not info.b_frames:
        return None
    b_frames = ' with B-frames' if info.b_frames else ''
    return (f'decord seeks {info.codec}{b_frames} in {info.container.split(",")[0]} to other frames than '
            'an in-order decode')
