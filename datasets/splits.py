"""Train/val annotation files and the class list from official split lists or a folder tree, and
the group-leakage check of a split (the command line is tools/splits.py).

Each builder returns (train, val, class names) for `write_split`, which writes `train.csv`, `val.csv`
(`relative/path,label`, relative to the dataset folder that DATA.ROOT points at) and `labels.csv`
(`id,name`); a split that puts one group (UCF `_gNN_`: clips cut from the same long video) in both
train and val is refused.
"""
import math
import os
import random
import re
from collections import defaultdict

from utils.errors import UserError

from .annotations import read_label_list

GROUP_PATTERN = r'_g(\d+)_'
VIDEO_EXTENSIONS = ('.avi', '.mp4', '.webm', '.mkv', '.mov', '.m4v', '.mpg', '.mpeg', '.flv', '.wmv')


class SplitError(UserError, ValueError):
    """Input lists or a split that cannot be used; the message names the file, line or group."""


def annotation_paths(csv_path):
    """The video paths of a `path,label` file, in order."""
    return [line.rpartition(',')[0] for _, line in _read_lines(csv_path)]


def _read_lines(path):
    if not os.path.isfile(path):
        raise SplitError(f'{path}: file not found')
    with open(path, encoding='utf-8-sig', newline=None) as f:
        return [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]


def _class_ids(names, labels_file):
    """{class name: id}: the order of `labels_file` if given (names matched ignoring case), else
    the order of `names`."""
    if not labels_file:
        return {name: i for i, name in enumerate(names)}, list(names)
    listed = read_label_list(labels_file)
    by_lower = {name.lower(): i for i, name in enumerate(listed)}
    unknown = [name for name in names if name.lower() not in by_lower]
    if unknown:
        raise SplitError(f'{labels_file}: classes {unknown[:5]} of the dataset are not in this list')
    return {name: by_lower[name.lower()] for name in names}, listed


def group_of(path, pattern=GROUP_PATTERN):
    """(class folder, group) of a video path, or None when the file name carries no group."""
    match = re.search(pattern, os.path.basename(path))
    if not match:
        return None
    return os.path.basename(os.path.dirname(path)).lower(), match.group(1) if match.groups() else match.group(0)


def find_leakage(train_paths, val_paths, pattern=GROUP_PATTERN):
    """{group: (videos in train, videos in val)} for groups found on both sides."""
    counts = defaultdict(lambda: [0, 0])
    for side, paths in ((0, train_paths), (1, val_paths)):
        for path in paths:
            group = group_of(path, pattern)
            if group is not None:
                counts[group][side] += 1
    return {g: tuple(c) for g, c in sorted(counts.items()) if c[0] and c[1]}


def _refuse_leakage(train, val, pattern, source):
    leaks = find_leakage([p for p, _ in train], [p for p, _ in val], pattern)
    if leaks:
        examples = ', '.join(f'{c}/g{g}' for c, g in list(leaks)[:5])
        raise SplitError(f'{source}: {len(leaks)} group(s) would be in both train and val (e.g. {examples}); '
                         'clips of one group come from the same long video, so this split leaks')


# ------------------------------------------------------------------------------------------------
# Builders: each returns (train rows, val rows, class names), rows = [(relative path, label)].
# ------------------------------------------------------------------------------------------------
def ucf101_split(lists_dir, split, labels_file=None, pattern=GROUP_PATTERN):
    """Official UCF101 lists: classInd.txt (`1 ApplyEyeMakeup`, 1-based), trainlist0N.txt
    (`Class/v_Class_gGG_cCC.avi 1`), testlist0N.txt (paths only, the class from the folder)."""
    class_file = os.path.join(lists_dir, 'classInd.txt')
    names = []
    for number, line in _read_lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
            raise SplitError(f'{class_file}, line {number}: expected `{len(names) + 1} ClassName`, got {line!r}')
        names.append(parts[1])
    ids, listed = _class_ids(names, labels_file)
    by_folder = {name.lower(): ids[name] for name in names}
    official = {name.lower(): str(i + 1) for i, name in enumerate(names)}

    def rows(name, labelled):
        path = os.path.join(lists_dir, f'{name}list{split:02d}.txt')
        out = []
        for number, line in _read_lines(path):
            parts = line.split()
            video = parts[0].replace('\\', '/')
            folder = video.split('/')[0].lower()
            if len(parts) != (2 if labelled else 1) or '/' not in video or folder not in by_folder:
                raise SplitError(f'{path}, line {number}: expected `Class/video.avi{" id" if labelled else ""}`'
                                 f' with a class of classInd.txt, got {line!r}')
            if labelled and parts[1] != official[folder]:
                raise SplitError(f'{path}, line {number}: label {parts[1]} does not match the folder {video.split("/")[0]}')
            out.append((video, by_folder[folder]))
        return out

    train, val = rows('train', True), rows('test', False)
    _refuse_leakage(train, val, pattern, f'{lists_dir} split {split}')
    return train, val, listed


def hmdb51_split(splits_dir, split, labels_file=None):
    """Official HMDB51 split files `<class>_test_split<N>.txt`, lines `<video> <0|1|2>`
    (1 train, 2 test, 0 unused); classes in alphabetical order unless `labels_file` is given."""
    suffix = f'_test_split{split}.txt'
    files = sorted(f for f in os.listdir(splits_dir) if f.endswith(suffix)) if os.path.isdir(splits_dir) else []
    if not files:
        raise SplitError(f'{splits_dir}: no *{suffix} files')
    names = [f[:-len(suffix)] for f in files]
    ids, listed = _class_ids(names, labels_file)
    train, val = [], []
    for name, file in zip(names, files):
        path = os.path.join(splits_dir, file)
        for number, line in _read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
                raise SplitError(f'{path}, line {number}: expected `<video> <0|1|2>`, got {line!r}')
            if parts[1] != '0':
                (train if parts[1] == '1' else val).append((f'{name}/{parts[0]}', ids[name]))
    return train, val, listed


def _parse_groups(spec):
    """'21-25' or '20,21,25' -> {'20', '21', ...} as ints (so g07 == 7)."""
    groups = set()
    for part in str(spec).split(','):
        part = part.strip()
        lo, sep, hi = part.partition('-')
        try:
            groups.update(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise SplitError(f'--val-groups: {part!r} is not a number or a range like 21-25') from None
    return groups


def folder_split(root, val_groups=None, val_fraction=0.2, pattern=GROUP_PATTERN, labels_file=None, seed=0,
                 extensions=VIDEO_EXTENSIONS):
    """A folder tree `<root>/<class>/<video>` split by group: `val_groups` (e.g. '21-25') picks the
    validation groups by number; otherwise a seeded `val_fraction` of each class's groups. A file
    whose name has no group is a group of its own."""
    if not os.path.isdir(root):
        raise SplitError(f'{root}: folder not found')
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not names:
        raise SplitError(f'{root}: no class folders')
    ids, listed = _class_ids(names, labels_file)
    wanted = _parse_groups(val_groups) if val_groups else None
    train, val = [], []
    for k, name in enumerate(names):
        videos = sorted(f for f in os.listdir(os.path.join(root, name)) if f.lower().endswith(tuple(extensions)))
        groups = defaultdict(list)
        for video in videos:
            match = re.search(pattern, video)
            groups[(match.group(1) if match.groups() else match.group(0)) if match else video].append(video)
        if wanted is not None:
            chosen = {g for g in groups if g.isdigit() and int(g) in wanted}
        else:
            order = sorted(groups)
            random.Random(f'{seed}/{name}').shuffle(order)
            chosen = set(order[:math.ceil(val_fraction * len(order))]) if val_fraction > 0 else set()
        for group, members in groups.items():
            side = val if group in chosen else train
            side.extend((f'{name}/{video}', ids[name]) for video in members)
    _refuse_leakage(train, val, pattern, root)
    return train, val, listed


def relabel(csv_path, labels_file):
    """Rows of an existing `path,label` file relabelled from each video's class folder and the
    class list (fixes the published HMDB51 files, whose labels run 2..52 in another order)."""
    names = read_label_list(labels_file)
    ids = {name.lower(): i for i, name in enumerate(names)}
    rows = []
    for number, line in _read_lines(csv_path):
        path = line.rpartition(',')[0].strip() or line
        folder = os.path.basename(os.path.dirname(path)).lower()
        if folder not in ids:
            raise SplitError(f'{csv_path}, line {number}: class folder {folder!r} of {path!r} is not in {labels_file}')
        rows.append((path, ids[folder]))
    return rows, names


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        f.writelines(f'{p},{label}\n' for p, label in rows)


def write_split(out_dir, train, val, names, prefix=''):
    """train.csv, val.csv and labels.csv in `out_dir`; `prefix` is prepended to every path."""
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, 'train.csv'), [(prefix + p, y) for p, y in train])
    write_csv(os.path.join(out_dir, 'val.csv'), [(prefix + p, y) for p, y in val])
    with open(os.path.join(out_dir, 'labels.csv'), 'w', newline='') as f:
        f.write('id,name\n' + ''.join(f'{i},{n}\n' for i, n in enumerate(names)))
