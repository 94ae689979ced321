"""Segment-based frame sampling (docs/protocol.md): the video is cut into `num_frames` equal segments
and one frame is taken from each. Videos shorter than `num_frames` repeat frames (segments shorter
than a frame share it)."""
import torch


def _check(total, num_frames):
    if total < 1:
        raise ValueError(f'cannot sample from a video of {total} frames')
    if num_frames < 1:
        raise ValueError(f'num_frames must be positive, got {num_frames}')


def _pick(total, num_frames, offsets):
    """Frame at fraction `offsets[i]` (in [0, 1)) of segment i."""
    seg = total / num_frames
    pos = (torch.arange(num_frames, dtype=torch.float64) + offsets) * seg
    return pos.floor().long().clamp_(0, total - 1).tolist()


def train_offsets(num_frames, generator):
    """Where in its segment each training frame is taken: fractions in [0, 1), drawn before the
    frame count is known (so a decoder that recounts frames reuses the same draw)."""
    return torch.rand(num_frames, generator=generator, dtype=torch.float64)


def train_indices(total, num_frames, offsets):
    """The frame at fraction `offsets[i]` (from `train_offsets`) of each segment i."""
    _check(total, num_frames)
    return _pick(total, num_frames, offsets)


def test_indices(total, num_frames, view=0, num_views=1):
    """Deterministic temporal view `view` of `num_views`: the frame at fraction (view + 0.5) /
    num_views of each segment (one view = the segment centres)."""
    _check(total, num_frames)
    if not 0 <= view < num_views:
        raise ValueError(f'view {view} is not in [0, {num_views})')
    return _pick(total, num_frames, torch.full((num_frames,), (view + 0.5) / num_views, dtype=torch.float64))
