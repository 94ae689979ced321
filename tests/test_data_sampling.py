"""Segment sampling: the published code's segments over the first N - 3 frames (the default), or
segments over all N frames (AUG.SAMPLE_ALL_FRAMES); a random frame inside each segment for training,
deterministic distinct test views."""
import math

import pytest
import torch

from datasets.sampling import Sampling
from datasets.sampling import test_indices as view_indices
from datasets.sampling import train_indices, train_offsets

ALL = Sampling(all_frames=True)
PUBLISHED = Sampling()  # AUG.FRAME_INTERVAL 4, AUG.SAMPLE_ALL_FRAMES False


def published_train(total, draws, num_frames=8, frame_interval=4):
    """mmaction SampleFrames._get_train_clips as the published code ran it (clip_len 1, the
    configs' frame_interval 4), `np.random.randint(n)` being the draw `int(u * n)`."""
    ori_clip_len = 1 * frame_interval
    avg_interval = (total - ori_clip_len + 1) // num_frames
    if avg_interval > 0:
        return [i * avg_interval + int(u * avg_interval) for i, u in enumerate(draws)]
    if total > max(num_frames, ori_clip_len):
        return sorted(int(u * (total - ori_clip_len + 1)) for u in draws)
    if avg_interval == 0:
        ratio = (total - ori_clip_len + 1.0) / num_frames
        return [round(i * ratio) for i in range(num_frames)]
    return [0] * num_frames


def published_test(total, num_frames=8, frame_interval=4):
    """mmaction SampleFrames._get_test_clips (clip_len 1, frame_interval 4): segment centres."""
    ori_clip_len = 1 * frame_interval
    avg_interval = (total - ori_clip_len + 1) / float(num_frames)
    if total > ori_clip_len - 1:
        return [int(i * avg_interval + avg_interval / 2.0) for i in range(num_frames)]
    return [0] * num_frames


def test_published_train_frames_for_186_and_40_frame_videos():
    """Segments of (N - 3) // 8 frames: 22 for N = 186 (frames 176-185 never drawn), 4 for N = 40
    (frames 32-39 never drawn)."""
    low, high = torch.zeros(8, dtype=torch.float64), torch.full((8,), 0.999, dtype=torch.float64)
    assert train_indices(186, 8, low) == [22 * i for i in range(8)]
    assert train_indices(186, 8, high) == [22 * i + 21 for i in range(8)]
    assert train_indices(40, 8, low) == [4 * i for i in range(8)]
    assert train_indices(40, 8, high) == [4 * i + 3 for i in range(8)]
    generator = torch.Generator().manual_seed(0)
    for total in (186, 40):
        for _ in range(50):
            draws = train_offsets(8, generator)
            assert train_indices(total, 8, draws) == published_train(total, draws.tolist())
    # the same draws over all frames: segments of N / 8, up to the last frame
    assert train_indices(186, 8, high, ALL) == [math.floor((i + 0.999) * 186 / 8) for i in range(8)]
    assert train_indices(186, 8, high, ALL)[-1] == 185


def test_published_one_view_test_frames_for_186_and_40_frame_videos():
    assert view_indices(186, 8) == published_test(186) == [11, 34, 57, 80, 102, 125, 148, 171]
    assert view_indices(40, 8) == published_test(40) == [2, 6, 11, 16, 20, 25, 30, 34]
    # AUG.SAMPLE_ALL_FRAMES: centres of N / 8 segments (up to 3 frames later)
    assert view_indices(40, 8, sampling=ALL) == [2, 7, 12, 17, 22, 27, 32, 37]
    assert view_indices(186, 8, sampling=ALL) == [11, 34, 58, 81, 104, 127, 151, 174]


@pytest.mark.parametrize('total', [1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 31, 100, 301])
def test_published_formula_at_every_length(total):
    """Short videos too: sorted random frames when N - 3 < 8 < N, evenly rounded positions when
    N <= 8, all zeros when N <= 3."""
    generator = torch.Generator().manual_seed(total)
    for _ in range(20):
        draws = train_offsets(8, generator)
        indices = train_indices(total, 8, draws)
        assert indices == published_train(total, draws.tolist())
        assert all(0 <= i < total for i in indices) and indices == sorted(indices)
    assert view_indices(total, 8) == published_test(total)


def test_frame_interval_sets_the_published_span():
    """AUG.FRAME_INTERVAL F: the span is N - F + 1 (F = 1: all N frames, in whole-frame segments)."""
    assert view_indices(40, 8, sampling=Sampling(frame_interval=1)) == published_test(40, frame_interval=1)
    low = torch.zeros(8, dtype=torch.float64)
    assert train_indices(40, 8, low, Sampling(frame_interval=1)) == [5 * i for i in range(8)]
    with pytest.raises(ValueError, match='AUG.FRAME_INTERVAL must be an integer >= 1, got 0'):
        train_indices(40, 8, low, Sampling(frame_interval=0))


@pytest.mark.parametrize('total', [8, 9, 31, 100, 301])
def test_all_frames_train_indices_lie_in_their_segments(total):
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        indices = train_indices(total, 8, train_offsets(8, generator), ALL)
        assert len(indices) == 8
        for i, index in enumerate(indices):
            low, high = math.floor(i * total / 8), math.ceil((i + 1) * total / 8) - 1
            assert low <= index <= high, (i, index, low, high)
        seen.add(tuple(indices))
    if total >= 16:
        assert len(seen) > 100  # really random, not a fixed pattern


def test_short_videos_repeat_frames():
    generator = torch.Generator().manual_seed(0)
    for sampling in (PUBLISHED, ALL):
        for _ in range(20):
            indices = train_indices(3, 8, train_offsets(8, generator), sampling)
            assert indices == sorted(indices) and set(indices) <= {0, 1, 2}
        assert view_indices(1, 8, sampling=sampling) == [0] * 8
    assert set(view_indices(3, 8, sampling=ALL)) == {0, 1, 2}
    assert train_indices(8, 8, torch.zeros(8)) == [0, 1, 1, 2, 2, 3, 4, 4]  # round(i * 5 / 8), half to even
    assert train_indices(3, 8, torch.zeros(8)) == [0] * 8 == view_indices(3, 8)


def test_test_views_are_deterministic_and_distinct():
    """Multi-view testing spans all frames under either sampling (the published multi-view sampler
    used frame_interval 1); only its random frames became fixed fractions."""
    total, frames = 160, 8
    views = [view_indices(total, frames, k, 4) for k in range(4)]
    assert views == [view_indices(total, frames, k, 4, ALL) for k in range(4)]
    assert len({tuple(v) for v in views}) == 4
    # view k of K sits at fraction (k + 0.5) / K of each segment; one view = segment centres
    assert view_indices(total, frames, sampling=ALL) == [10 + 20 * i for i in range(8)]
    assert views[0] == [int((i + 0.125) * 20) for i in range(8)]
    assert views[3] == [int((i + 0.875) * 20) for i in range(8)]


def test_bad_arguments():
    with pytest.raises(ValueError, match='0 frames'):
        train_indices(0, 8, torch.zeros(8))
    with pytest.raises(ValueError, match='view 2 is not in'):
        view_indices(10, 4, 2, 2)
