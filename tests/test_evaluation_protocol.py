"""Tests that tell the evaluation protocol from near misses: how views are combined (mean of
softmaxes, not mean of logits or the first view) and the one-crop test view's geometry (short side
to 256/224 x size, then a centre crop; not a plain centre crop, not a resize to size)."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from datasets.encode import write_video
from engine import evaluate
from tests.helpers.videos import data_config

# 4 videos x 3 views x 6 classes, labels [2, 5, 2, 5]. Top-1 / top-5 (%) by rule:
# mean of softmaxes 25 / 100, mean of logits 0 / 75, first view 50 / 50.
LOGITS = torch.tensor([
    [[3, 6, 8, -3, 5, 4], [5, 7, 3, 5, 2, 0], [7, -3, 3, 8, 1, -3]],
    [[7, 5, 6, 6, 6, -3], [0, 5, 0, 2, 7, 6], [5, 1, 6, 5, -1, -1]],
    [[3, 1, -3, 8, 4, 6], [4, -1, 7, 1, 2, 6], [5, -3, 5, -4, 1, -4]],
    [[6, 6, 1, -2, 4, 7], [3, 6, 3, -3, 4, -3], [4, 2, 4, 0, -1, -1]]], dtype=torch.float32)
LABELS = torch.tensor([2, 5, 2, 5])


class Lookup(nn.Module):
    """Logits are the clip's first pixel row: a model whose answer per view is chosen."""

    def forward(self, clips):
        return clips[:, 0, 0, 0, :]


def top_k(scores, k):
    top = scores.topk(k, -1).indices
    return (top == LABELS[:, None]).any(1).float().mean().item() * 100


def test_evaluate_averages_softmaxes_over_disagreeing_views():
    rules = {'mean of softmaxes': LOGITS.softmax(-1).mean(1), 'mean of logits': LOGITS.mean(1),
             'first view': LOGITS[:, 0]}
    expected = {name: (top_k(s, 1), top_k(s, 5)) for name, s in rules.items()}
    assert len({a for a, _ in expected.values()}) == 3 and len({b for _, b in expected.values()}) == 3

    views = LOGITS[:, :, None, None, None, :]  # (videos, views, T=1, C=1, H=1, W=6 classes)
    batches = [(views[:2], LABELS[:2], torch.tensor([0, 1])), (views[2:], LABELS[2:], torch.tensor([2, 3]))]
    stats = evaluate(Lookup(), batches, num_videos=4, num_classes=6, device=torch.device('cpu'), chunk_size=5)
    assert (stats['acc1'], stats['acc5']) == pytest.approx(expected['mean of softmaxes'])
    assert stats['num_views'] == 3 and stats['num_videos'] == 4


def test_one_crop_view_resizes_the_short_side_to_256_224_of_the_input_then_crops(tmp_path):
    """A static frame whose red codes x and green codes y (0..255 across the frame): the crop's border
    values say which part of the frame it covers."""
    height, width, size = 48, 64, 32
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.linspace(0, 255, width).round()[None, :]
    frame[..., 1] = np.linspace(0, 255, height).round()[:, None]
    path = write_video(str(tmp_path / 'ramp.mkv'), np.repeat(frame[None], 8, 0), lossless=True)
    config = data_config(path, path, '', num_classes=2, DATA__INPUT_SIZE=size, DATA__DECODER='pyav')
    from datasets import load_test_clip
    _, views = load_test_clip(config, path, num_clip=1, num_crop=1)
    assert views.shape == (1, 4, 3, size, size)
    red, green = views[0, 0, 0].float(), views[0, 0, 1].float()

    def edges(long, short, scaled_short):
        """(first, last) code along the long side of a centre crop of the frame scaled to scaled_short."""
        scaled = int(long * scaled_short / short)
        left = round((scaled - size) / 2)
        code = [((j + 0.5) * long / scaled - 0.5) * 255 / (long - 1) for j in (left, left + size - 1)]
        return code

    expected_x = edges(width, height, round(size * 256 / 224))  # about (43, 207)
    assert red[:, 0].mean() == pytest.approx(expected_x[0], abs=3)
    assert red[:, -1].mean() == pytest.approx(expected_x[1], abs=3)
    assert green[0].mean() == pytest.approx(edges(height, height, round(size * 256 / 224))[0], abs=3)
    # The near misses are far off: a plain centre crop starts at about 65, a resize to size at 32.
    assert abs(edges(width, height, height)[0] - expected_x[0]) > 15
    assert abs(edges(width, height, size)[0] - expected_x[0]) > 8
