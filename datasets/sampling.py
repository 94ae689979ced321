"""Segment-based frame sampling (docs/protocol.md): the video is cut into `num_frames` segments and
one frame is taken from each. Videos shorter than `num_frames` repeat frames.

Two ways to lay the segments (`Sampling`, from AUG.FRAME_INTERVAL and AUG.SAMPLE_ALL_FRAMES):

- the published code's (the default): mmaction's SampleFrames with clip_len 1 and frame_interval
  F, which cuts the first `total - F + 1` frames (N - 3 for the paper's F = 4) into segments of
  `(total - F + 1) // num_frames` whole frames, so the last 3 to num_frames + 2 frames are never
  drawn; one test view takes `int((i + 0.5) * span / num_frames)` of span `total - F + 1`.
- all frames (AUG.SAMPLE_ALL_FRAMES): `num_frames` equal segments of `total / num_frames` frames.

Multi-view testing (num_views > 1) always spans all frames: the published multi-view sampler used
frame_interval 1 (span N); its random frames are replaced by view k at fraction (k + 0.5) / K of
each segment.
"""
from typing import NamedTuple

import torch

from utils.errors import ConfigValueError


class Sampling(NamedTuple):
    """Where the segments lie: AUG.FRAME_INTERVAL (the published span is `total - F + 1`) and
    AUG.SAMPLE_ALL_FRAMES (segments over every frame instead)."""
    frame_interval: int = 4
    all_frames: bool = False


def _check(total, num_frames, sampling):
    if total < 1:
        raise ValueError(f'cannot sample from a video of {total} frames')
    if num_frames < 1:
        raise ValueError(f'num_frames must be positive, got {num_frames}')
    if isinstance(sampling.frame_interval, bool) or not isinstance(sampling.frame_interval, int) \
            or sampling.frame_interval < 1:
        raise ConfigValueError(f'AUG.FRAME_INTERVAL must be an integer >= 1, got {sampling.frame_interval!r}')


def _pick(total, num_frames, offsets):
    """Frame at fraction `offsets[i]` (in [0, 1)) of segment i of `total / num_frames` frames."""
    seg = total / num_frames
    pos = (torch.arange(num_frames, dtype=torch.float64) + offsets) * seg
    return pos.floor().long().clamp_(0, total - 1).tolist()


def train_offsets(num_frames, generator):
    """Where in its segment each training frame is taken: fractions in [0, 1), drawn before the
    frame count is known (so a decoder that recounts frames reuses the same draw)."""
    return torch.rand(num_frames, generator=generator, dtype=torch.float64)


def _published_train(total, num_frames, offsets, frame_interval):
    """mmaction SampleFrames._get_train_clips (clip_len 1), with `randint(n)` = floor(offset * n)."""
    span = total - frame_interval + 1
    seg = span // num_frames
    draw = [float(u) for u in offsets]
    if seg > 0:
        return [i * seg + int(u * seg) for i, u in enumerate(draw)]
    if total > max(num_frames, frame_interval):  # fewer frames than segments: sorted random frames
        return sorted(int(u * span) for u in draw)
    if span >= 0:  # np.around: round half to even, as Python's round
        ratio = span / num_frames
        return [round(i * ratio) for i in range(num_frames)]
    return [0] * num_frames


def train_indices(total, num_frames, offsets, sampling=Sampling()):
    """One frame per segment at the fractions `offsets` (from `train_offsets`)."""
    _check(total, num_frames, sampling)
    if sampling.all_frames:
        return _pick(total, num_frames, offsets)
    return _published_train(total, num_frames, offsets, sampling.frame_interval)


def test_indices(total, num_frames, view=0, num_views=1, sampling=Sampling()):
    """Deterministic temporal view `view` of `num_views`: the frame at fraction (view + 0.5) /
    num_views of each segment (one view = the segment centres)."""
    _check(total, num_frames, sampling)
    if not 0 <= view < num_views:
        raise ValueError(f'view {view} is not in [0, {num_views})')
    if num_views == 1 and not sampling.all_frames:  # mmaction SampleFrames._get_test_clips
        span = total - sampling.frame_interval + 1
        if span < 1:
            return [0] * num_frames
        seg = span / num_frames
        return [int(i * seg + seg / 2.0) for i in range(num_frames)]
    return _pick(total, num_frames, torch.full((num_frames,), (view + 0.5) / num_views, dtype=torch.float64))
