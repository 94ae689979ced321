"""Segment sampling: random frame inside each segment for training, deterministic distinct test views."""
import math

import pytest
import torch

from datasets.sampling import test_indices as view_indices
from datasets.sampling import train_indices, train_offsets


@pytest.mark.parametrize('total', [8, 9, 31, 100, 301])
def test_train_indices_lie_in_their_segments(total):
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        indices = train_indices(total, 8, train_offsets(8, generator))
        assert len(indices) == 8
        for i, index in enumerate(indices):
            low, high = math.floor(i * total / 8), math.ceil((i + 1) * total / 8) - 1
            assert low <= index <= high, (i, index, low, high)
        seen.add(tuple(indices))
    if total >= 16:
        assert len(seen) > 100  # really random, not a fixed pattern


def test_short_videos_repeat_frames():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        indices = train_indices(3, 8, train_offsets(8, generator))
        assert indices == sorted(indices) and set(indices) <= {0, 1, 2}
    assert set(view_indices(3, 8)) == {0, 1, 2}
    assert view_indices(1, 8) == [0] * 8


def test_test_views_are_deterministic_and_distinct():
    total, frames = 160, 8
    views = [view_indices(total, frames, k, 4) for k in range(4)]
    assert views == [view_indices(total, frames, k, 4) for k in range(4)]
    assert len({tuple(v) for v in views}) == 4
    # view k of K sits at fraction (k + 0.5) / K of each segment; one view = segment centres
    assert view_indices(total, frames) == [10 + 20 * i for i in range(8)]
    assert views[0] == [int((i + 0.125) * 20) for i in range(8)]
    assert views[3] == [int((i + 0.875) * 20) for i in range(8)]


def test_bad_arguments():
    with pytest.raises(ValueError, match='0 frames'):
        train_indices(0, 8, torch.zeros(8))
    with pytest.raises(ValueError, match='view 2 is not in'):
        view_indices(10, 4, 2, 2)
