"""Tiny real video datasets for tests (never committed: tests write into tmp_path).

`make_dataset` writes a small dataset in the published layout and CSV format (encoded with
datasets.encode.write_video); `data_config` is a project config that reads it; `BACKENDS`
parametrises a test over the decoders.
"""
import os

import numpy as np
import pytest

from datasets import decode
from datasets.encode import write_video

# Decoder parametrization for tests: where decord cannot be imported its cases show as skipped
# (tests/test_platform_packages.py fails on Linux x86_64, where decord has wheels and must be installed).
BACKENDS = [pytest.param('decord', marks=pytest.mark.skipif(decode.decord is None, reason='decord cannot be imported')),
            'pyav']


def class_frames(label, num_classes, num_frames, width, height, seed):
    """Frames whose colour and motion depend on the class, so a model can learn the labels."""
    rng = np.random.default_rng(seed)
    hue = label / max(1, num_classes)
    colour = np.array([128 + 100 * np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)])
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        noise = rng.normal(0, 12, size=(height, width, 3))
        frame = np.clip(colour + noise, 0, 255)
        y = (i * (label + 1) * 2) % max(1, height - 8)
        frame[y:y + 8, width // 4:width // 4 + 8] = 255 - colour
        frames[i] = frame.astype(np.uint8)
    return frames


def _cycle(value, k, scalar):
    return value if isinstance(value, scalar) else value[k % len(value)]


def make_dataset(root, num_classes=3, videos_per_class=2, num_frames=12, size=(64, 48), fps=25,
                 ext='.avi', val_per_class=None, crlf=True):
    """Write a tiny dataset in the published layout: `<root>/{train,val}/<class>/v_<class>_gNN_c01<ext>`
    (train groups 1.., val groups 21..), CSVs `train/...,label` and a label list `id,name`.
    `num_frames`, `size`, `fps` and `ext` may be lists, cycled over the videos written (to mix
    formats, sizes, rates and lengths). Returns (train_csv, val_csv, label_csv) as strings."""
    root = str(root)
    val_per_class = videos_per_class if val_per_class is None else val_per_class
    k = 0
    end = '\r\n' if crlf else '\n'
    names = [f'Class{c:02d}' for c in range(num_classes)]
    lines = {'train': [], 'val': []}
    for split, count, first_group in (('train', videos_per_class, 1), ('val', val_per_class, 21)):
        for label, name in enumerate(names):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for v in range(count):
                width, height = size if isinstance(size[0], int) else size[k % len(size)]
                rel = f'{split}/{name}/v_{name}_g{first_group + v:02d}_c01{_cycle(ext, k, str)}'
                frames = class_frames(label, num_classes, _cycle(num_frames, k, int), width, height, seed=k)
                write_video(os.path.join(root, rel), frames, fps=_cycle(fps, k, int))
                lines[split].append(f'{rel},{label}')
                k += 1
    paths = []
    for split in ('train', 'val'):
        path = os.path.join(root, f'{split}.csv')
        with open(path, 'w', newline='') as f:
            f.write(''.join(line + end for line in lines[split]))
        paths.append(path)
    label_csv = os.path.join(root, 'labels.csv')
    with open(label_csv, 'w', newline='') as f:
        f.write('id,name' + end + ''.join(f'{i},{n}{end}' for i, n in enumerate(names)))
    return paths[0], paths[1], label_csv


def data_config(train_csv, val_csv, label_csv, num_classes, root=None, **overrides):
    """A frozen project config reading the files of `make_dataset`, small and single-process;
    `overrides` are dotted keys with '__' for '.', e.g. DATA__NUM_FRAMES=4."""
    from config import get_config

    config = get_config()
    config.defrost()
    config.DATA.ROOT = str(root if root is not None else os.path.dirname(train_csv))
    config.DATA.TRAIN_FILE, config.DATA.VAL_FILE, config.DATA.LABEL_LIST = train_csv, val_csv, label_csv
    config.MODEL.NUM_CLASSES = num_classes
    config.DATA.BATCH_SIZE, config.DATA.NUM_WORKERS, config.DATA.INPUT_SIZE = 2, 0, 32
    config.DATA.NUM_FRAMES = 4
    for key, value in overrides.items():
        node, *path = key.split('__')
        target = config[node]
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    config.freeze()
    return config
