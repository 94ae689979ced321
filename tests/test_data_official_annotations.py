"""Official annotation files (Kinetics CSV, SSv2 JSON, Diving48 JSON) become our `path,label` lists
with the class list's ids; bad rows and unknown classes fail naming the file and the row; SSv2's
WebM videos decode through our decoder and loader."""
import json
import subprocess
import sys

import av
import numpy as np
import pytest

from datasets.annotations import AnnotationError, read_annotations
from datasets.decode import read_clip
from datasets.encode import marker_frames, write_video
from datasets.official_annotations import diving48_rows, kinetics_rows, ssv2_rows, write_annotations
from tests.helpers.runs import ROOT
from tests.helpers.videos import BACKENDS

CLASSES = ['abseiling', 'air drumming', 'passing American football (in game)']


def write(path, text):
    path.write_text(text)
    return str(path)


def label_list(tmp_path, names):
    return write(tmp_path / 'classes.csv', 'id,name\n' + ''.join(f'{i},{n}\n' for i, n in enumerate(names)))


# ------------------------------------------------------------------------------------------------
# Kinetics
# ------------------------------------------------------------------------------------------------
KINETICS_CSV = ('label,youtube_id,time_start,time_end,split\n'
                'air drumming,--nQbRBEz2s,104,114,train\n'
                '"passing American football (in game)",-5EOqMpEvkk,3,13,train\n'
                'abseiling,0347ZoDXyP0,14.0,24.0,train\n')


def test_kinetics_csv_to_paths_and_ids(tmp_path):
    rows = kinetics_rows(write(tmp_path / 'train.csv', KINETICS_CSV), CLASSES)
    assert rows == [('train/--nQbRBEz2s_000104_000114.mp4', 1), ('train/-5EOqMpEvkk_000003_000013.mp4', 2),
                    ('train/0347ZoDXyP0_000014_000024.mp4', 0)]
    rows = kinetics_rows(str(tmp_path / 'train.csv'), CLASSES, path_format='{label}/{youtube_id}.mp4')
    assert rows[0] == ('air drumming/--nQbRBEz2s.mp4', 1)


@pytest.mark.parametrize('text, match', [
    (KINETICS_CSV + 'abseilin,xyz,1,11,train\n', r"train.csv, line 5: class 'abseilin' is not in .*close: 'abseiling'"),
    (KINETICS_CSV + 'abseiling,xyz,one,11,train\n', r'train.csv, line 5: time_start/time_end must be numbers'),
    (KINETICS_CSV + 'abseiling,xyz,1,11\n', r'train.csv, line 5: expected 5 columns, got 4'),
    ('label,youtube_id,time_start\nabseiling,x,1\n', r"train.csv, line 1: .*missing \['time_end', 'split'\]"),
    ('label,youtube_id,time_start,time_end,split\n', r'train.csv: no videos listed'),
])
def test_kinetics_bad_rows_name_file_and_line(tmp_path, text, match):
    with pytest.raises(AnnotationError, match=match):
        kinetics_rows(write(tmp_path / 'train.csv', text), CLASSES, 'classes.csv')


# ------------------------------------------------------------------------------------------------
# Something-Something-v2
# ------------------------------------------------------------------------------------------------
SSV2_CLASSES = ['Approaching something with your camera', 'Putting something on something',
                'Pushing something from left to right']
SSV2 = [{'id': '78687', 'label': 'putting a cup on a table', 'template': 'Putting [something] on [something]',
         'placeholders': ['a cup', 'a table']},
        {'id': '42326', 'label': 'pushing pen from left to right',
         'template': 'Pushing [something] from left to right', 'placeholders': ['pen']},
        {'id': '3', 'label': 'approaching door with your camera',
         'template': 'Approaching [something] with your camera', 'placeholders': ['door']}]


def test_ssv2_json_to_paths_and_ids(tmp_path):
    labels = write(tmp_path / 'labels.json', json.dumps({n: str(i) for i, n in enumerate(SSV2_CLASSES)}))
    rows = ssv2_rows(write(tmp_path / 'train.json', json.dumps(SSV2)), SSV2_CLASSES, labels_json=labels)
    assert rows == [('78687.webm', 1), ('42326.webm', 2), ('3.webm', 0)]


def test_ssv2_errors_name_file_entry_and_id(tmp_path):
    bad = SSV2 + [{'id': '9', 'label': 'x', 'template': 'Spinning [something]'}]
    with pytest.raises(AnnotationError, match=r"train.json, entry 4 \(id 9\): class 'Spinning something' is not in"):
        ssv2_rows(write(tmp_path / 'train.json', json.dumps(bad)), SSV2_CLASSES)
    with pytest.raises(AnnotationError, match=r"test.json, entry 1: missing \['template'\] \(the test split has no labels\)"):
        ssv2_rows(write(tmp_path / 'test.json', json.dumps([{'id': '1'}])), SSV2_CLASSES)
    labels = write(tmp_path / 'labels.json', json.dumps({'Spinning something': '0'}))
    with pytest.raises(AnnotationError, match=r"labels.json: names other classes .*'Spinning something'"):
        ssv2_rows(str(tmp_path / 'train.json'), SSV2_CLASSES, labels_json=labels)
    with pytest.raises(AnnotationError, match='broken.json: not valid JSON'):
        ssv2_rows(write(tmp_path / 'broken.json', '[{"id": '), SSV2_CLASSES)


# ------------------------------------------------------------------------------------------------
# Diving48
# ------------------------------------------------------------------------------------------------
VOCAB = [['Back', '15som', '05Twis', 'FREE'], ['Back', '15som', '15Twis', 'FREE'], ['Forward', '25som', 'NoTwis', 'PIKE']]
DIVING_CLASSES = ['_'.join(v) for v in VOCAB]
DIVING = [{'vid_name': '-mmq0PT-u8k_00000', 'label': 2, 'start_frame': 0, 'end_frame': 103},
          {'vid_name': '-mmq0PT-u8k_00001', 'label': 0, 'start_frame': 0, 'end_frame': 86}]


def test_diving48_json_to_paths_and_ids(tmp_path):
    vocab = write(tmp_path / 'vocab.json', json.dumps(VOCAB))
    rows = diving48_rows(write(tmp_path / 'train.json', json.dumps(DIVING)), DIVING_CLASSES, vocab_json=vocab)
    assert rows == [('-mmq0PT-u8k_00000.mp4', 2), ('-mmq0PT-u8k_00001.mp4', 0)]


def test_diving48_errors_name_file_and_entry(tmp_path):
    bad = DIVING + [{'vid_name': 'x_00002', 'label': 3}]
    with pytest.raises(AnnotationError, match=r'train.json, entry 3 \(x_00002\): label 3 is not a class id in \[0, 3\)'):
        diving48_rows(write(tmp_path / 'train.json', json.dumps(bad)), DIVING_CLASSES)
    vocab = write(tmp_path / 'vocab.json', json.dumps(VOCAB[::-1]))
    with pytest.raises(AnnotationError, match=r"vocab.json: the vocabulary does not match .*class 0 is 'Forward_25som"):
        diving48_rows(str(tmp_path / 'train.json'), DIVING_CLASSES, vocab_json=vocab)


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------
def convert(*args):
    proc = subprocess.run([sys.executable, '-m', 'tools.convert_annotations', *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_command_writes_a_list_our_reader_takes_and_skips_missing_videos(tmp_path):
    src, classes = write(tmp_path / 'k.csv', KINETICS_CSV), label_list(tmp_path, CLASSES)
    root = tmp_path / 'k400'
    (root / 'train').mkdir(parents=True)
    for name in ('--nQbRBEz2s_000104_000114.mp4', '0347ZoDXyP0_000014_000024.mp4'):
        (root / 'train' / name).write_bytes(b'')
    out = tmp_path / 'lists' / 'train.csv'
    code, text = convert('kinetics', src, out, '--labels', classes, '--root', root)
    assert code == 2 and 'error: ' in text and '1 listed videos are not under' in text and not out.exists()
    code, text = convert('kinetics', src, out, '--labels', classes, '--root', root, '--skip-missing')
    assert code == 0, text
    assert '2 videos of 2 of the 3 classes' in text and '1 missing' in text
    assert out.read_text() == 'train/--nQbRBEz2s_000104_000114.mp4,1\ntrain/0347ZoDXyP0_000014_000024.mp4,0\n'
    assert read_annotations(str(out), str(root), 3) == [
        (str(root / 'train/--nQbRBEz2s_000104_000114.mp4'), 1), (str(root / 'train/0347ZoDXyP0_000014_000024.mp4'), 0)]
    code, text = convert('kinetics', write(tmp_path / 'bad.csv', KINETICS_CSV + 'zumba,a,1,2,train\n'), out,
                         '--labels', classes)
    assert code == 2 and "bad.csv, line 5: class 'zumba'" in text


# ------------------------------------------------------------------------------------------------
# WebM (SSv2's container) through our decoder and loader
# ------------------------------------------------------------------------------------------------
def encoder(name):
    try:
        av.codec.Codec(name, 'w')
        return name
    except Exception:  # noqa: BLE001 - PyAV raises different types for an absent codec
        return None


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('codec', ['libvpx', 'libvpx-vp9'], ids=['vp8', 'vp9'])
def test_webm_videos_decode_through_the_ssv2_list(tmp_path, codec, backend):
    if encoder(codec) is None:
        pytest.skip(f'this PyAV/FFmpeg build has no {codec} encoder')
    root = tmp_path / 'ssv2'
    root.mkdir()
    frames = {}
    for k, entry in enumerate(SSV2):
        frames[entry['id']] = marker_frames(12, 48, 32, seed=k)
        write_video(str(root / f'{entry["id"]}.webm'), frames[entry['id']], codec=codec)
    out = tmp_path / 'train.csv'
    write_annotations(ssv2_rows(write(tmp_path / 'train.json', json.dumps(SSV2)), SSV2_CLASSES), str(out))
    samples = read_annotations(str(out), str(root), len(SSV2_CLASSES))
    assert [label for _, label in samples] == [1, 2, 0]
    for (path, _), entry in zip(samples, SSV2):
        clip, indices = read_clip(path, lambda total: [0, total // 2, total - 1], backend)
        assert clip.shape == (3, 3, 32, 48) and list(indices) == [0, 6, 11]
        # lossy VP8/VP9, but each frame still has its own grey level (8 apart): within 3 on average
        want = frames[entry['id']][[0, 6, 11]].astype(np.int64)
        got = clip.permute(0, 2, 3, 1).numpy().astype(np.int64)
        assert np.abs(got - want).mean() < 3
