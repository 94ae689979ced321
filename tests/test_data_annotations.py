"""Annotation and class-list validation: each defect fails with the file, line and value."""
import os

import pytest

from datasets import read_annotations, read_label_list
from datasets.annotations import AnnotationError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The paper's lists as shipped in data/<dataset>/ (HMDB51 relabelled; see DATA.md).
SPLITS = {'ucf101': (101, 'ucf_101_labels.csv', 10690, 2630), 'ucf50': (50, 'ucf_50_labels.csv', 5360, 1321),
          'hmdb51': (51, 'hmdb_51_labels.csv', 5393, 1317)}
PUBLISHED_HMDB51 = os.path.join(ROOT, 'tests', 'fixtures', 'hmdb51_published_excerpt.csv')


def write(path, text):
    with open(path, 'w', newline='') as f:
        f.write(text)
    return str(path)


def test_reads_crlf_lines_joined_to_root(tmp_path):
    csv = write(tmp_path / 'a.csv', 'train/A/v_A_g01_c01.avi,0\r\ntrain/B/v_B_g01_c01.avi,1\r\n\r\n')
    assert read_annotations(csv, '/data', 2) == [('/data/train/A/v_A_g01_c01.avi', 0),
                                                 ('/data/train/B/v_B_g01_c01.avi', 1)]


@pytest.mark.parametrize('line, message', [
    ('train/A/v.avi', "line 2: expected `relative/path,label`, got 'train/A/v.avi'"),
    ('train/A/v.avi,', 'line 2: expected `relative/path,label`'),
    ('train/A/v.avi,one', "line 2: label 'one' is not an integer"),
    ('train/A/v.avi,1.5', "line 2: label '1.5' is not an integer"),
    ('train/A/v.avi,3', 'line 2: label 3 is outside [0, 3)'),
    ('train/A/v.avi,-1', 'line 2: label -1 is outside [0, 3)'),
])
def test_annotation_errors_name_file_line_and_value(tmp_path, line, message):
    csv = write(tmp_path / 'bad.csv', f'train/A/ok.avi,0\r\n{line}\r\n')
    with pytest.raises(AnnotationError) as err:
        read_annotations(csv, '', 3)
    assert str(err.value).startswith(csv) and message in str(err.value)


def test_empty_and_missing_annotation_files(tmp_path):
    with pytest.raises(AnnotationError, match='no samples'):
        read_annotations(write(tmp_path / 'e.csv', '\r\n'), '', 3)
    with pytest.raises(AnnotationError, match='not found'):
        read_annotations(str(tmp_path / 'nope.csv'), '', 3)


def test_label_list_with_and_without_header(tmp_path):
    assert read_label_list(write(tmp_path / 'l.csv', 'id,name\r\n1,b\r\n0,a\r\n'), 2) == ['a', 'b']
    assert read_label_list(write(tmp_path / 'm.csv', '0,a\n1,b\n2,c\n'), 3) == ['a', 'b', 'c']


@pytest.mark.parametrize('text, classes, message', [
    ('id,name\n0,a\n1,b\n', 3, 'lists 2 classes, but MODEL.NUM_CLASSES is 3'),
    ('0,a\n1,b\n2,c\n', 2, 'lists 3 classes, but MODEL.NUM_CLASSES is 2'),
    ('0,a\n0,b\n', 2, 'line 2: class id 0 listed twice'),
    ('0,a\n2,b\n', 2, 'missing [1]'),
    ('0,a\nx,b\n', 2, "line 2: class id 'x' is not an integer"),
    ('0,a\n1\n', 2, "line 2: expected `id,name`"),
])
def test_label_list_errors(tmp_path, text, classes, message):
    path = write(tmp_path / 'labels.csv', text)
    with pytest.raises(AnnotationError) as err:
        read_label_list(path, classes)
    assert str(err.value).startswith(path) and message in str(err.value)


@pytest.mark.parametrize('name', sorted(SPLITS))
def test_shipped_paper_splits_read(name):
    """data/<dataset>/{train,val}.csv: every class present, paths under train/ and val/, the
    class folder of each path is its label's name in labels/, and no video in both lists."""
    classes, label_file, n_train, n_val = SPLITS[name]
    labels = read_label_list(os.path.join(ROOT, 'labels', label_file), classes)
    assert len(labels) == classes
    paths = {}
    for split, count in (('train', n_train), ('val', n_val)):
        samples = read_annotations(os.path.join(ROOT, 'data', name, f'{split}.csv'), 'root', classes)
        assert len(samples) == count
        assert {label for _, label in samples} == set(range(classes))
        assert all(path.startswith(os.path.join('root', split)) for path, _ in samples)
        assert all(path.split('/')[2].lower() == labels[label].lower() for path, label in samples)
        paths[split] = {os.path.basename(p) for p, _ in samples}
    assert not paths['train'] & paths['val']


def test_shipped_ucf_lists_are_the_published_crlf_files():
    for name in ('ucf101', 'ucf50'):
        for split in ('train', 'val'):
            with open(os.path.join(ROOT, 'data', name, f'{split}.csv'), 'rb') as f:
                data = f.read()
            assert data.count(b'\r\n') == data.count(b'\n') > 1000


def test_published_hmdb51_labels_are_rejected_with_the_offending_line():
    csv = PUBLISHED_HMDB51
    with pytest.raises(AnnotationError) as err:
        read_annotations(csv, '', 51)
    with open(csv, newline=None) as f:
        lines = f.read().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if int(line.split(',')[1]) >= 51)
    value = lines[number - 1].split(',')[1]
    assert f'{csv}, line {number}: label {value} is outside [0, 51)' in str(err.value)
