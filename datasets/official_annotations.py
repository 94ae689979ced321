"""Official annotation files of Kinetics, Something-Something-v2 and Diving48 as our
`relative/path.ext,label` lists (datasets/annotations.py), with the label ids of a class list.

The class list (labels/*.csv) decides the ids, because its order is the order of the published
checkpoints' heads; a class name the list lacks, a malformed row or an unknown column is an error
naming the file and the row. `python -m tools.convert_annotations` is the command over these.

- Kinetics-400/600 CSV: `label,youtube_id,time_start,time_end,split[,...]` with a header; a video is
  `{split}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4` (the CVDF release's names).
- SSv2 JSON: a list of {"id", "label", "template", ...}; the class is the template without its
  brackets ("Putting [something] on [something]" -> "Putting something on something"); a video is
  `{id}.webm`. The labels JSON ({name: "index"}) is optional and, when given, must name the same
  classes as the class list.
- Diving48 JSON: a list of {"vid_name", "label" (int), ...}; a video is `{vid_name}.mp4`. The vocab
  JSON (one [takeoff, somersault, twist, flight] list per class) is optional and, when given, must
  spell the class list's names in its order ('_'-joined).
"""
import csv
import difflib
import json
import os

from .annotations import AnnotationError

KINETICS_PATH = '{split}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4'
SSV2_PATH = '{id}.webm'
DIVING48_PATH = '{vid_name}.mp4'
KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')


def _class_id(ids, name, where, class_list):
    if name in ids:
        return ids[name]
    close = difflib.get_close_matches(name, list(ids), n=2, cutoff=0.6)
    hint = f' (close: {", ".join(repr(c) for c in close)})' if close else ''
    raise AnnotationError(f'{where}: class {name!r} is not in {class_list}{hint}')


def _format(path_format, where, **fields):
    try:
        return path_format.format(**fields)
    except (KeyError, ValueError, IndexError) as err:
        raise AnnotationError(f'{where}: path format {path_format!r} does not fit this row: {err}') from None


def kinetics_rows(csv_path, class_names, class_list='the class list', path_format=KINETICS_PATH):
    """[(relative path, label id)] from a Kinetics CSV; the split column names the folder."""
    ids = {name: i for i, name in enumerate(class_names)}
    if not os.path.isfile(csv_path):
        raise AnnotationError(f'{csv_path}: annotation file not found')
    rows = []
    with open(csv_path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in KINETICS_COLUMNS if c not in header]
        if missing:
            raise AnnotationError(f'{csv_path}, line 1: a Kinetics CSV header needs the columns '
                                  f'{",".join(KINETICS_COLUMNS)}; missing {missing}, got {header}')
        col = {c: header.index(c) for c in KINETICS_COLUMNS}
        for number, row in enumerate(reader, 2):
            if not any(cell.strip() for cell in row):
                continue
            where = f'{csv_path}, line {number}'
            if len(row) != len(header):
                raise AnnotationError(f'{where}: expected {len(header)} columns, got {len(row)}: {row}')
            cell = {c: row[i].strip() for c, i in col.items()}
            try:
                start, end = (int(float(cell[k])) for k in ('time_start', 'time_end'))
            except ValueError:
                raise AnnotationError(f'{where}: time_start/time_end must be numbers, got '
                                      f'{cell["time_start"]!r}, {cell["time_end"]!r}') from None
            if not cell['youtube_id']:
                raise AnnotationError(f'{where}: empty youtube_id')
            label = _class_id(ids, cell['label'], where, class_list)
            rows.append((_format(path_format, where, youtube_id=cell['youtube_id'], time_start=start,
                                 time_end=end, split=cell['split'], label=cell['label']), label))
    if not rows:
        raise AnnotationError(f'{csv_path}: no videos listed')
    return rows


def _json_list(path):
    if not os.path.isfile(path):
        raise AnnotationError(f'{path}: annotation file not found')
    with open(path, encoding='utf-8-sig') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise AnnotationError(f'{path}: not valid JSON: {err}') from None
    return data


def _entries(path, required):
    data = _json_list(path)
    if not isinstance(data, list) or not data:
        raise AnnotationError(f'{path}: expected a non-empty JSON list of videos, got {type(data).__name__}')
    for number, entry in enumerate(data, 1):
        where = f'{path}, entry {number}'
        if not isinstance(entry, dict):
            raise AnnotationError(f'{where}: expected an object, got {entry!r}')
        absent = [k for k in required if k not in entry]
        if absent:
            what = ' (the test split has no labels)' if 'template' in absent or 'label' in absent else ''
            raise AnnotationError(f'{where}: missing {absent}{what}: {entry}')
        yield where, entry


def ssv2_template_class(template):
    """The class of an SSv2 template: 'Putting [something] on [something]' -> 'Putting something on something'."""
    return template.replace('[', '').replace(']', '').strip()


def ssv2_rows(json_path, class_names, class_list='the class list', labels_json=None, path_format=SSV2_PATH):
    """[(relative path, label id)] from an SSv2 train/validation JSON."""
    ids = {name: i for i, name in enumerate(class_names)}
    if labels_json:
        official = _json_list(labels_json)
        if not isinstance(official, dict):
            raise AnnotationError(f'{labels_json}: expected a JSON object {{class name: index}}')
        extra, lacking = sorted(set(official) - set(ids)), sorted(set(ids) - set(official))
        if extra or lacking:
            raise AnnotationError(f'{labels_json}: names other classes than {class_list}: only in the JSON '
                                  f'{extra[:3]}, only in the class list {lacking[:3]}')
    rows = []
    for where, entry in _entries(json_path, ('id', 'template')):
        where = f'{where} (id {entry["id"]})'
        label = _class_id(ids, ssv2_template_class(str(entry['template'])), where, class_list)
        rows.append((_format(path_format, where, id=entry['id']), label))
    return rows


def diving48_rows(json_path, class_names, class_list='the class list', vocab_json=None,
                  path_format=DIVING48_PATH):
    """[(relative path, label id)] from a Diving48 (V2) train/test JSON."""
    if vocab_json:
        vocab = _json_list(vocab_json)
        names = ['_'.join(map(str, v)) if isinstance(v, list) else str(v) for v in vocab] \
            if isinstance(vocab, list) else None
        if names != list(class_names):
            bad = next((i for i, (a, b) in enumerate(zip(names or [], class_names)) if a != b), None)
            detail = (f'class {bad} is {names[bad]!r} there, {class_names[bad]!r} in {class_list}'
                      if bad is not None else f'{len(names or [])} classes vs {len(class_names)}')
            raise AnnotationError(f'{vocab_json}: the vocabulary does not match {class_list}: {detail}')
    rows = []
    for where, entry in _entries(json_path, ('vid_name', 'label')):
        where = f'{where} ({entry["vid_name"]})'
        label = entry['label']
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(class_names):
            raise AnnotationError(f'{where}: label {label!r} is not a class id in [0, {len(class_names)}) '
                                  f'of {class_list}')
        rows.append((_format(path_format, where, vid_name=entry['vid_name']), label))
    return rows


FORMATS = {'kinetics': kinetics_rows, 'ssv2': ssv2_rows, 'diving48': diving48_rows}


def split_missing(rows, root):
    """(rows whose video exists under `root`, relative paths that do not)."""
    present, missing = [], []
    for path, label in rows:
        (present if os.path.isfile(os.path.join(root, path)) else missing).append((path, label))
    return present, [path for path, _ in missing]


def write_annotations(rows, out_path):
    """Write `path,label` lines (our list format); a path may not contain a newline."""
    for path, _ in rows:
        if '\n' in path or '\r' in path:
            raise AnnotationError(f'{path!r}: a video path with a line break cannot go into {out_path}')
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, 'w', newline='\n') as f:
        f.writelines(f'{path},{label}\n' for path, label in rows)
