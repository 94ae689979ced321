"""Decoding only the sampled frames of a video, with PyAV (the default, docs/videos.md) or decord.

- Frames come back as uint8 `(N, C, H, W)` tensors, RGB, as a player shows them: the display
  rotation (a phone's portrait video stored landscape) is applied by both decoders.
- `short_side`: when the video's shown short side is larger, the decoder scales it down while
  converting (decord's `width`/`height`, PyAV's `to_ndarray(width, height)`, both bilinear), so large
  videos never exist at full size in RGB. Videos are never scaled up here.
- decord is not used on the streams its random access reads wrong (datasets/probe.py); those are
  read with PyAV, logged once per kind of stream with the file that showed it.
- decord reads with `get_batch`. PyAV indexes the packets' timestamps (no decoding, as decord does)
  and seeks to the keyframe before a wanted frame when that skips work; without usable timestamps
  it decodes in order up to the last wanted frame, converting only the wanted ones. A packet that
  fails to decode is skipped, as a player does: the frames after it still count.
- Frame counts are what the container reports; when fewer frames decode (truncated files, wrong
  headers), sampling is redone over the frames that do decode and the file is logged once.
- When decord fails on a file it is retried with PyAV (logged once); when nothing can decode it, a
  `VideoDecodeError` names the file. decord missing (no wheels for aarch64 / macOS arm64) means PyAV.
"""
import bisect
import logging
import os
from collections import namedtuple

import av
import av.logging
import numpy as np
import torch

from utils.errors import UserError

from .probe import decord_trouble, probe

try:
    import decord
except ImportError:  # pragma: no cover - depends on the platform
    decord = None

logger = logging.getLogger(__name__)
BACKENDS = ('decord', 'pyav')
_logged = set()


class VideoDecodeError(UserError, RuntimeError):
    """A video that is missing, empty, corrupt or cannot be decoded; `path` names it. (A DataLoader
    re-raises a worker's error as `VideoDecodeError(message)`: hence the optional reason.)"""

    def __init__(self, path, reason=None):
        super().__init__(path if reason is None else f'{path}: {reason}')
        self.path = path
        self.reason = reason


def _log_once(key, message, *args, log=logger):
    """Warn once per process for `key` (a loader worker is a process: once per worker)."""
    if key not in _logged:
        _logged.add(key)
        log.warning(message, *args)


def resolve_backend(name):
    """'decord' or 'pyav' for a DATA.DECODER value; decord that cannot be imported means PyAV."""
    backend = str(name).lower()
    if backend not in BACKENDS:
        raise ValueError(f'DATA.DECODER must be one of {BACKENDS}, got {name!r}')
    if backend == 'decord' and decord is None:
        _log_once('no-decord', 'decord cannot be imported on this platform; decoding with PyAV')
        return 'pyav'
    return backend


def scaled_size(width, height, short_side):
    """(width, height) with the short side brought down to `short_side`, or None to keep the size.
    The long side is rounded half up as transforms.short_side_size does (the published mmcv
    rescale), so the transforms' own resize is then a no-op."""
    if not short_side or min(width, height) <= short_side:
        return None
    factor = short_side / min(width, height)
    return int(width * factor + 0.5), int(height * factor + 0.5)


def _check_file(path):
    if not os.path.isfile(path):
        raise VideoDecodeError(path, 'file not found')
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, 'empty file (0 bytes)')


class _Failure(Exception):
    """A backend could not decode; the reason goes into the final error."""


# ------------------------------------------------------------------------------------------------
# PyAV: decode sequentially up to the last wanted frame, converting only the wanted ones.
# ------------------------------------------------------------------------------------------------
def _pyav_open(path):
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise _Failure(f'cannot open ({err})') from None
    if not container.streams.video:
        container.close()
        raise _Failure('no video stream')
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return container, stream


def _pyav_reported(container, stream):
    """Frames the container claims (header count, else duration x rate), or 0 if it does not say."""
    if stream.frames > 0:
        return stream.frames
    rate = stream.average_rate or stream.guessed_rate
    if rate is None:
        return 0
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    else:
        return 0
    return max(0, round(seconds * float(rate)))


def _pyav_frames(container, stream, wanted, short_side, damage=None, to_end=False):
    """({index: HxWx3 array} for `wanted` (sorted), frames decoded). Stops after the last wanted
    frame unless `to_end`. A packet that fails to decode is skipped (FFmpeg goes on at the next one,
    as a player does); a demuxing error after at least one frame is taken as the end of the stream.
    `damage` (a list) collects each frame the decoder flags as damaged (concealed) and each packet
    it skips that more data follows (a cut end is not damage: the frame count tells it)."""
    out, count, last, error, skipped = {}, 0, wanted[-1] if wanted else -1, None, 0
    wanted = set(wanted)
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.FFmpegError as err:
                error, skipped = err, skipped + 1
                continue
            if damage is not None and packet.size and skipped:  # data decodes after the skipped
                damage.extend([f'packet before frame {count}'] * skipped)
                skipped = 0
            for frame in frames:
                if count in wanted:
                    out[count] = frame_to_rgb(frame, short_side)
                if damage is not None and frame.is_corrupt:
                    damage.append(f'frame {count}')
                count += 1
            if count > last >= 0 and not to_end:
                break
    except av.error.FFmpegError as err:
        error = err
    if count == 0:
        raise _Failure(f'no frame decodes ({error})' if error else 'no frame decodes') from None
    return out, count


def frame_to_rgb(frame, short_side):
    """RGB array of `frame` as shown: scaled (bilinear) so that the shown short side is at most
    `short_side`, then turned by the display rotation (counter-clockwise degrees)."""
    rotation = int(frame.rotation) % 360
    width, height = (frame.height, frame.width) if rotation % 180 else (frame.width, frame.height)
    size = scaled_size(width, height, short_side)
    # One scaler thread, like the decoder (FFmpeg's automatic thread pool would also deadlock a
    # process forked after a conversion, e.g. a check_data worker).
    if size is None:
        array = frame.to_ndarray(format='rgb24', threads=1)
    else:
        stored = size[::-1] if rotation % 180 else size
        array = frame.to_ndarray(width=stored[0], height=stored[1], format='rgb24', interpolation='BILINEAR',
                                 threads=1)
    return np.rot90(array, rotation // 90) if rotation else array


def _pyav_index(container, stream):
    """(sorted frame timestamps, sorted keyframe timestamps) from one pass over the packets (no
    decoding), as decord builds its index; None when timestamps are missing or the file is cut."""
    pts, keys = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    except av.error.FFmpegError:
        return None
    if not pts or not keys or len(set(pts)) != len(pts):
        return None
    return sorted(pts), sorted(keys)


def _pyav_seek_frames(container, stream, wanted, short_side, index):
    """{index: array} for `wanted` (sorted), seeking to the keyframe before a wanted frame whenever
    that keyframe lies past the frames decoded so far. None when the decoded timestamps do not
    match the index (the caller then decodes in order)."""
    frame_pts, key_pts = index
    out, frames, position = {}, None, None
    try:
        for i in wanted:
            target = frame_pts[i]
            key = key_pts[max(0, bisect.bisect_right(key_pts, target) - 1)]
            if frames is None or key > position:
                container.seek(min(key, target), stream=stream, backward=True)
                frames = container.decode(stream)
            for frame in frames:
                position = frame.pts
                if position is None or position > target:
                    return None
                if position == target:
                    out[i] = frame_to_rgb(frame, short_side)
                    break
            else:
                return None
    except av.error.FFmpegError:
        return None
    return out


def _pyav_read(path, sample, short_side):
    """Frames by timestamp with keyframe seeks when the packets carry usable timestamps, else by
    decoding in order up to the last wanted frame (which also finds where a cut file ends)."""
    container, stream = _pyav_open(path)
    with container:
        index = _pyav_index(container, stream)
        if index is not None:
            indices = sample(len(index[0]))
            frames = _pyav_seek_frames(container, stream, sorted(set(indices)), short_side, index)
            if frames is not None:
                return np.stack([frames[i] for i in indices]), indices
        container.seek(0)
        reported = _pyav_reported(container, stream)
        if reported < 1:  # the container does not say: count by decoding
            _, reported = _pyav_frames(container, stream, [], None)
            container.seek(0)
        indices = sample(reported) if reported else []
        frames, decoded = _pyav_frames(container, stream, sorted(set(indices)), short_side)
    if decoded <= max(indices):  # the container over-reported: sample again from what decodes
        _log_once(('short', path), '%s: the container reports %d frames but only %d decode; '
                  'sampling from those', path, reported, decoded)
        indices = sample(decoded)
        container, stream = _pyav_open(path)
        with container:
            frames, _ = _pyav_frames(container, stream, sorted(set(indices)), short_side)
    return np.stack([frames[i] for i in indices]), indices


# ------------------------------------------------------------------------------------------------
# decord: random access with get_batch on the unique sorted indices.
# ------------------------------------------------------------------------------------------------
def _decord_open(path, short_side, info=None):
    """A VideoReader at the decode size computed from the shown size (decord applies the display
    rotation itself and takes the target size as shown)."""
    size = scaled_size(info.width, info.height, short_side) if short_side and info else None
    width, height = size if size else (-1, -1)
    try:
        return decord.VideoReader(path, width=width, height=height, num_threads=1)
    except Exception as err:  # decord raises RuntimeError / DECORDError with C++ messages
        raise _Failure(f'decord: cannot open ({str(err).splitlines()[0][:200]})') from None


def _decord_read(path, sample, short_side, info):
    reader = _decord_open(path, short_side, info)
    total = len(reader)
    if total < 1:
        raise _Failure('decord: no frames')
    indices = sample(total)
    unique = sorted(set(indices))
    try:
        batch = reader.get_batch(unique).asnumpy()
    except Exception as err:
        raise _Failure(f'decord: get_batch failed ({str(err).splitlines()[0][:200]})') from None
    if batch.ndim != 4 or batch.shape[-1] != 3:
        # decord 0.6 misreads some frame widths (e.g. 16, 24, 48, 72) as 4 or 6 channels.
        raise _Failure(f'decord: frames of shape {tuple(batch.shape)} instead of (N, H, W, 3)')
    position = {index: k for k, index in enumerate(unique)}
    return batch[[position[i] for i in indices]], indices


def _use_decord(path, backend):
    """(use decord?, Probe): decord when it is the backend and reads this kind of stream right;
    the first file of each kind it reads wrong is logged."""
    if resolve_backend(backend) != 'decord':
        return False, None
    info = probe(path)
    trouble = decord_trouble(info)
    if trouble:
        _log_once(('trouble', trouble), '%s: %s; reading such files with PyAV (logged once per kind of '
                  'stream)', path, trouble)
    return not trouble, info


def read_clip(path, sample, backend='decord', short_side=None):
    """Decode the frames that `sample(total_frames)` (a list of indices) picks.

    Returns (uint8 tensor (len(indices), 3, H, W), indices actually used). Raises VideoDecodeError.
    """
    path = os.fspath(path)
    _check_file(path)
    reasons = []
    use_decord, info = _use_decord(path, backend)
    if use_decord:
        try:
            array, indices = _decord_read(path, sample, short_side, info)
            return torch.from_numpy(array).permute(0, 3, 1, 2), indices
        except _Failure as err:
            reasons.append(str(err))
    try:
        array, indices = _pyav_read(path, sample, short_side)
    except _Failure as err:
        raise VideoDecodeError(path, '; '.join(reasons + [f'PyAV: {err}'])) from None
    if reasons:
        _log_once(('fallback', path), '%s: %s; decoded with PyAV instead', path, reasons[0])
    return torch.from_numpy(array).permute(0, 3, 1, 2), indices


def decode_frames(path, indices, backend='decord', short_side=None):
    """uint8 tensor (len(indices), 3, H, W) of the given frames; indices past the frames that
    decode are clamped to the last one."""
    indices = [int(i) for i in indices]
    if not indices or min(indices) < 0:
        raise ValueError(f'indices must be a non-empty list of non-negative ints, got {indices}')
    frames, _ = read_clip(path, lambda total: [min(i, total - 1) for i in indices], backend, short_side)
    return frames


def count_frames(path, backend='decord'):
    """Frames the file reports (decord: from its packets; PyAV: header or duration x rate, else
    counted). Decoding clamps to what really decodes; `scan_video` tells the two apart."""
    path = os.fspath(path)
    _check_file(path)
    if _use_decord(path, backend)[0]:
        try:
            return len(_decord_open(path, None))
        except _Failure:
            pass
    try:
        container, stream = _pyav_open(path)
        with container:
            reported = _pyav_reported(container, stream)
            return reported or _pyav_frames(container, stream, [], None)[1]
    except _Failure as err:
        raise VideoDecodeError(path, str(err)) from None


# ------------------------------------------------------------------------------------------------
# tools.check_data: every frame once, in order, and the configured decoder checked against it.
# ------------------------------------------------------------------------------------------------
Scan = namedtuple('Scan', 'reported decoded errors damaged mismatch')
Scan.__doc__ = """reported: frames the container claims; decoded: frames that decode; errors: the
decoder's error messages; damaged: frames it flags as damaged (concealed) plus packets it skips
before the last frame that decodes (a cut end is not counted: `decoded < reported` tells it);
mismatch: how the configured decoder's frames differ from the in-order decode, or None."""
MISMATCH_LEVELS = 2.0  # mean |difference| per frame; decord and PyAV round RGB within 0.5 of each other


def compared_indices(total, count=6):
    """`count` frame indices spread over `total` frames (the middle of `count` equal parts)."""
    return sorted({min(total - 1, int((k + 0.5) * total / count)) for k in range(count)})


def _in_order(path, count):
    """(reported, decoded, {index: frame} at compared_indices, damaged, error messages): every frame
    decoded once, in order, with FFmpeg's error log captured."""
    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # else a repeat count arrives with the next file's messages
    damage = []
    try:
        with av.logging.Capture() as logs:
            container, stream = _pyav_open(path)
            with container:
                reported = _pyav_reported(container, stream)
                wanted = compared_indices(reported, count) if reported else []
                frames, decoded = _pyav_frames(container, stream, wanted, None, damage, to_end=True)
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)
    if not wanted or max(wanted) >= decoded:  # fewer frames decode than reported: pick again
        container, stream = _pyav_open(path)
        with container:
            frames, _ = _pyav_frames(container, stream, compared_indices(decoded, count), None)
    errors = [f'{name}: {" ".join(message.split())}' for lvl, name, message in logs if lvl <= av.logging.ERROR]
    return reported or decoded, decoded, frames, len(damage), errors


def scan_video(path, backend='decord', count=6):
    """Scan of `path` for `tools.check_data`: every frame decoded once in order with PyAV (what a
    player shows), what the decoder reports on the way, and `count` frames spread over the video
    read with `backend` as training reads them, compared with the in-order ones.
    Raises VideoDecodeError when nothing decodes."""
    path = os.fspath(path)
    _check_file(path)
    try:
        reported, decoded, reference, damaged, errors = _in_order(path, count)
    except _Failure as err:
        raise VideoDecodeError(path, str(err)) from None
    wanted = sorted(reference)
    name = 'decord' if _use_decord(path, backend)[0] else 'PyAV'
    frames, used = read_clip(path, lambda total: [min(i, total - 1) for i in wanted], backend)
    mismatch = None
    for i, k, frame in zip(wanted, used, frames.permute(0, 2, 3, 1).numpy()):
        expected = reference[i]
        if i != k or frame.shape != expected.shape:
            mismatch = (f'{name} gives {"frame %d" % k if i != k else "a %dx%d frame" % frame.shape[1::-1]} '
                        f'for frame {i} ({expected.shape[1]}x{expected.shape[0]}) of the in-order decode')
            break
        levels = np.abs(frame.astype(np.int16) - expected).mean()
        if levels > MISMATCH_LEVELS:
            mismatch = f'{name} frame {i} differs from the in-order decode by {levels:.1f} levels on average'
            break
    return Scan(reported, decoded, errors, damaged, mismatch)
