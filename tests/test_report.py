"""The per-class evaluation report (utils/report.py) on a hand-made case: per-class top-1/top-5,
the confusion matrix, the most confused pairs, the files, and tools.summary's per-class table."""
import logging
import math

import pytest
import torch
from PIL import Image

from tools.summary import main as summary_main
from utils.report import class_stats, most_confused, read_per_class, write_report

NAMES = ['run', 'jump', 'swim', 'dive', 'ride', 'row', 'ski']
# (label, classes from most to least likely): 7 videos of classes 0-3; classes 4-6 have none.
VIDEOS = [
    (0, [0, 1, 2, 3, 4, 5, 6]),   # right
    (0, [1, 0, 2, 3, 4, 5, 6]),   # -> jump, label second: a top-5 hit
    (1, [1, 0, 2, 3, 4, 5, 6]),   # right
    (2, [3, 2, 0, 1, 4, 5, 6]),   # -> dive
    (2, [3, 2, 1, 0, 4, 5, 6]),   # -> dive
    (2, [2, 3, 0, 1, 4, 5, 6]),   # right
    (3, [0, 1, 2, 4, 5, 6, 3]),   # -> run, label last: a top-5 miss
]


def hand_made():
    probs = torch.zeros(len(VIDEOS), len(NAMES))
    for i, (_, order) in enumerate(VIDEOS):
        for rank, c in enumerate(order):
            probs[i, c] = (len(NAMES) - rank) / 28.0  # 7/28 ... 1/28, rows sum to 1
    return probs, torch.tensor([label for label, _ in VIDEOS])


def test_class_stats_and_pairs_on_the_hand_made_case():
    probs, labels = hand_made()
    confusion, videos, hit1, hit5 = class_stats(probs, labels, len(NAMES))
    expected = torch.zeros(7, 7, dtype=torch.int64)
    for (t, p), n in {(0, 0): 1, (0, 1): 1, (1, 1): 1, (2, 3): 2, (2, 2): 1, (3, 0): 1}.items():
        expected[t, p] = n
    assert torch.equal(confusion, expected)
    assert videos.tolist() == [2, 1, 3, 1, 0, 0, 0]
    assert hit1.tolist() == [1, 1, 1, 0, 0, 0, 0] and hit5.tolist() == [2, 1, 3, 0, 0, 0, 0]
    assert most_confused(confusion) == [(2, 3, 2), (0, 1, 1), (3, 0, 1)]  # ties by (true, predicted)


def test_report_files_and_log(tmp_path, caplog):
    probs, labels = hand_made()
    with caplog.at_level(logging.INFO, logger='utils.report'):
        pairs = write_report(str(tmp_path), probs, labels, NAMES)
    assert pairs[0] == (2, 3, 2)
    assert 'most confused (true -> predicted): swim -> dive: 2 of 3; run -> jump: 1 of 2; dive -> run: 1 of 1' \
        in caplog.text
    rows = read_per_class(str(tmp_path / 'per_class.csv'))
    assert [r[:3] for r in rows] == [(i, n, v) for i, (n, v) in enumerate(zip(NAMES, [2, 1, 3, 1, 0, 0, 0]))]
    assert [r[3] for r in rows[:4]] == pytest.approx([50.0, 100.0, 33.33, 0.0])
    assert [r[4] for r in rows[:4]] == pytest.approx([100.0, 100.0, 100.0, 0.0])
    assert all(math.isnan(r[3]) and math.isnan(r[4]) for r in rows[4:])  # no videos: no accuracy
    lines = (tmp_path / 'confusion.csv').read_text().splitlines()
    assert lines[0] == 'true \\ predicted,' + ','.join(NAMES)
    assert lines[3] == 'swim,0,0,1,2,0,0,0' and lines[4] == 'dive,1,0,0,0,0,0,0'
    with Image.open(tmp_path / 'confusion.png') as image:
        assert image.format == 'PNG' and min(image.size) > 400


def test_the_png_gives_101_classes_room(tmp_path):
    """101 labelled rows and columns: at least 20 pixels per class on each axis."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(101).repeat(3)
    probs = torch.rand(len(labels), 101, generator=g).softmax(1)
    write_report(str(tmp_path), probs, labels, [f'Class{i:03d}' for i in range(101)])
    with Image.open(tmp_path / 'confusion.png') as image:
        assert min(image.size) >= 101 * 20


def test_summary_prints_the_per_class_table_lowest_first(tmp_path, capsys):
    write_report(str(tmp_path), *hand_made(), NAMES)
    summary_main(['--per-class', str(tmp_path), '--limit', '3'])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(tmp_path)
    body = [line.split('|')[2].strip() for line in out[3:]]
    assert body == ['dive', 'swim', 'run']  # 0 %, 33 %, 50 %

