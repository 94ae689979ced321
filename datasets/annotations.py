"""Annotation files: `relative/path.ext,label` lines and `id,name` class lists.

Everything is validated when read, so a wrong file fails at start-up with the file, line and value
at fault instead of hours into training. CRLF line endings and a UTF-8 BOM are accepted.
"""
import os

from utils.errors import UserError


class AnnotationError(UserError, ValueError):
    """An annotation or class-list file that cannot be used as it is."""


def _lines(path):
    """(line number, stripped text) for each non-blank line of `path`."""
    if not os.path.isfile(path):
        raise AnnotationError(f'{path}: annotation file not found')
    with open(path, encoding='utf-8-sig', newline=None) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield number, line


def _parse_label(path, number, text, num_classes):
    try:
        label = int(text)
    except ValueError:
        raise AnnotationError(f'{path}, line {number}: label {text!r} is not an integer') from None
    if not 0 <= label < num_classes:
        raise AnnotationError(
            f'{path}, line {number}: label {label} is outside [0, {num_classes}) '
            f'(labels are 0-based ids of DATA.LABEL_LIST; MODEL.NUM_CLASSES is {num_classes})')
    return label


def read_annotations(csv_path, root, num_classes):
    """[(root/relative_path, label), ...] from a `relative/path.ext,label` file, validated."""
    samples = []
    for number, line in _lines(csv_path):
        path, sep, label = line.rpartition(',')
        path, label = path.strip(), label.strip()
        if not sep or not path or not label:
            raise AnnotationError(f'{csv_path}, line {number}: expected `relative/path,label`, got {line!r}')
        samples.append((os.path.join(root, path), _parse_label(csv_path, number, label, num_classes)))
    if not samples:
        raise AnnotationError(f'{csv_path}: no samples listed')
    return samples


def read_label_list(path, num_classes=None):
    """Class names ordered by id from an `id,name` file (header optional); the ids must be exactly
    0..num_classes-1, since their order is the classifier head's order (None: any count)."""
    names = {}
    for number, line in _lines(path):
        cid, sep, name = line.partition(',')
        cid, name = cid.strip(), name.strip()
        if number == 1 and cid.lower() == 'id':
            continue
        if not sep or not cid or not name:
            raise AnnotationError(f'{path}, line {number}: expected `id,name`, got {line!r}')
        try:
            cid = int(cid)
        except ValueError:
            raise AnnotationError(f'{path}, line {number}: class id {cid!r} is not an integer') from None
        if cid in names:
            raise AnnotationError(f'{path}, line {number}: class id {cid} listed twice')
        names[cid] = name
    if num_classes is None:
        num_classes = len(names)
    if len(names) != num_classes:
        raise AnnotationError(f'{path}: lists {len(names)} classes, but MODEL.NUM_CLASSES is {num_classes}')
    missing = sorted(set(range(num_classes)) - set(names))
    if missing:
        raise AnnotationError(f'{path}: class ids must be 0..{num_classes - 1}; missing {missing[:5]}')
    return [names[i] for i in range(num_classes)]
