"""The synthetic demo dataset: real videos that both decoders read, balanced, deterministic."""
import csv
import hashlib
import os

import av
import numpy as np
import pytest

from datasets import synthetic
from tools import make_demo_data
from utils.errors import UserError


def _read_pyav(path):
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])


def _read_decord(path):
    decord = pytest.importorskip('decord')
    reader = decord.VideoReader(path)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def _rows(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


@pytest.fixture(scope='module')
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic')
    paths = synthetic.generate(str(out), clips_per_class=3, val_per_class=2, size=(40, 56),
                               num_frames=6, seed=3, workers=1)
    return out, paths


def test_annotations_are_balanced_and_in_the_dataset_format(small_set):
    out, paths = small_set
    assert paths == {'root': str(out), 'train_file': str(out / 'train.csv'),
                     'val_file': str(out / 'val.csv'), 'label_list': str(out / 'labels.csv')}
    labels = _rows(paths['label_list'])
    assert labels[0] == ['id', 'name']
    assert labels[1:] == [[str(i), name] for i, name in enumerate(synthetic.DEFAULT_CLASSES)]
    for key, per_class in (('train_file', 3), ('val_file', 2)):
        rows = _rows(paths[key])
        counts = np.bincount([int(label) for _, label in rows], minlength=len(labels) - 1)
        assert counts.tolist() == [per_class] * (len(labels) - 1)
        for rel, label in rows:
            assert os.path.isfile(out / rel), rel
            assert rel.split('/')[1] == labels[1 + int(label)][1]
    train = {rel for rel, _ in _rows(paths['train_file'])}
    assert not train & {rel for rel, _ in _rows(paths['val_file'])}


def test_videos_decode_identically_with_pyav_and_decord(small_set):
    out, paths = small_set
    for rel, _ in _rows(paths['val_file']):
        frames = _read_pyav(str(out / rel))
        assert frames.shape == (6, 40, 56, 3)
        np.testing.assert_array_equal(_read_decord(str(out / rel)), frames)


def test_decoded_frames_follow_the_rendered_clip(small_set):
    """The codec keeps the picture: decoded frames stay close to what was rendered."""
    out, _ = small_set
    rendered = synthetic.render_clip(np.random.default_rng([3, 0, synthetic.CLASSES.index('grow'), 1]),
                                     'grow', 40, 56, 6)
    decoded = _read_pyav(str(out / 'train/grow/grow_00001.mp4')).astype(float)
    assert np.abs(decoded - rendered).mean() < 8


def test_same_seed_gives_the_same_files_and_another_seed_does_not(tmp_path, small_set):
    out, paths = small_set
    again = synthetic.generate(str(tmp_path / 'a'), clips_per_class=3, val_per_class=2,
                               size=(40, 56), num_frames=6, seed=3, workers=2)
    other = synthetic.generate(str(tmp_path / 'b'), clips_per_class=3, val_per_class=2,
                               size=(40, 56), num_frames=6, seed=4, workers=1)

    def digests(root, csv_path):
        return [hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel, _ in _rows(csv_path)]

    assert digests(tmp_path / 'a', again['train_file']) == digests(out, paths['train_file'])
    assert digests(tmp_path / 'a', again['val_file']) == digests(out, paths['val_file'])
    rel = 'train/up/up_00000.mp4'
    assert not np.array_equal(_read_pyav(str(out / rel)), _read_pyav(str(tmp_path / 'b' / rel)))


@pytest.mark.parametrize('name', synthetic.CLASSES)
def test_each_class_shows_its_motion(name):
    """The object moves or scales as the class says, in a straight line that never leaves the frame
    (no wrapping around to the opposite border)."""
    signs = {'up': (-1, 0, 0), 'down': (1, 0, 0), 'left': (0, -1, 0), 'right': (0, 1, 0),
             'grow': (0, 0, 1), 'shrink': (0, 0, -1)}[name]
    for i in range(50):
        rng = np.random.default_rng([0, 0, synthetic.CLASSES.index(name), i])
        cys, cxs, sizes = synthetic._trajectory(rng, name, 48, 64, 16)
        for values, sign in zip((cys, cxs, sizes), signs):
            assert (np.sign(np.diff(values)) == sign).all(), (name, i)
        assert (cys >= 0).all() and (cys <= 48).all() and (cxs >= 0).all() and (cxs <= 64).all()
        if name in ('up', 'down'):
            assert 0.4 * 48 <= abs(cys[-1] - cys[0]) <= 0.7 * 48
        if name in ('left', 'right'):
            assert 0.4 * 64 <= abs(cxs[-1] - cxs[0]) <= 0.7 * 64
        if name in ('grow', 'shrink'):  # a scaling object stays whole in view at its largest
            half = sizes.max() / 2
            assert half <= cys[0] <= 48 - half and half <= cxs[0] <= 64 - half


def test_object_size_in_one_frame_does_not_tell_the_class():
    """Growing and shrinking cover the same sizes, and a moving object's size follows the law of a
    scaling object's size in a random frame."""
    def sizes(name, frame=None):
        out = []
        for i in range(3000):
            trajectory = synthetic._trajectory(np.random.default_rng([9, i]), name, 64, 64, 16)[2]
            out.append(trajectory[i % 16 if frame is None else frame])
        return np.array(out)

    np.testing.assert_allclose(np.sort(sizes('grow', 0)), np.sort(sizes('shrink', -1)))
    grow, shrink = sizes('grow'), sizes('shrink')
    for moving in (sizes('up'), sizes('left')):
        for q in (0.1, 0.25, 0.5, 0.75, 0.9):  # sizes span 10 to 54 pixels; 3000 draws each
            assert abs(np.quantile(moving, q) - np.quantile(grow, q)) < 1.5, q
            assert abs(np.quantile(shrink, q) - np.quantile(grow, q)) < 1.5, q


@pytest.mark.parametrize('name', synthetic.CLASSES)
def test_rendered_object_is_where_the_trajectory_says(name):
    """In every frame the pixels inside the object's disc differ strongly in brightness from the
    pixels outside its square (the object is drawn as one or the other)."""
    for i in range(4):
        key = [7, i]
        frames = synthetic.render_clip(np.random.default_rng(key), name, 40, 56, 8)
        assert frames.shape == (8, 40, 56, 3) and frames.dtype == np.uint8
        trajectory = synthetic._trajectory(np.random.default_rng(key), name, 40, 56, 8)
        dy, dx = synthetic.object_coordinates(*trajectory, 40, 56)
        inner = np.broadcast_to(dy ** 2 + dx ** 2 < 0.2, frames.shape[:3])
        outer = np.broadcast_to((np.abs(dy) > 0.55) | (np.abs(dx) > 0.55), frames.shape[:3])
        gray = frames.astype(float).mean(-1)
        for t in range(8):
            assert abs(gray[t][inner[t]].mean() - gray[t][outer[t]].mean()) > 50, (name, i, t)


def test_camera_shake_moves_the_whole_picture():
    """A shaken clip is the unshaken scene 2 * shake larger, cut at a random offset in every frame."""
    shake = 5
    for name in ('up', 'grow'):
        frames = synthetic.render_clip(np.random.default_rng([4, 1]), name, 40, 56, 8, shake)
        scene = synthetic.render_clip(np.random.default_rng([4, 1]), name, 50, 66, 8)
        assert frames.shape == (8, 40, 56, 3)
        offsets = []
        for frame, full in zip(frames, scene):
            found = [(top, left) for top in range(2 * shake + 1) for left in range(2 * shake + 1)
                     if np.array_equal(full[top:top + 40, left:left + 56], frame)]
            assert len(found) == 1, name
            offsets += found
        assert len(set(offsets)) > 4, offsets  # the camera moves between frames


def test_bad_arguments_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match='sideways'):
        synthetic.generate(str(tmp_path), 1, 1, classes=['up', 'sideways'])
    with pytest.raises(ValueError, match='shake'):
        synthetic.generate(str(tmp_path), 1, 1, shake=-1)
    with pytest.raises(ValueError, match='even'):
        synthetic.generate(str(tmp_path), 1, 1, size=33)
    with pytest.raises(ValueError, match='decord'):
        synthetic.generate(str(tmp_path), 1, 1, size=48)
    with pytest.raises(ValueError, match='num_frames'):
        synthetic.generate(str(tmp_path), 1, 1, num_frames=1)
    assert not os.listdir(tmp_path)


def test_command_line_writes_the_dataset(tmp_path, capsys):
    out = tmp_path / 'demo'
    make_demo_data.main(['--out', str(out), '--clips-per-class', '1', '--val-per-class', '1',
                         '--size', '32', '--frames', '4', '--shake', '3', '--classes', 'grow', 'shrink'])
    assert 'wrote 4 clips (2 classes)' in capsys.readouterr().out
    assert _rows(out / 'labels.csv') == [['id', 'name'], ['0', 'grow'], ['1', 'shrink']]
    assert _rows(out / 'train.csv') == [['train/grow/grow_00000.mp4', '0'],
                                        ['train/shrink/shrink_00000.mp4', '1']]
    assert _read_pyav(str(out / 'val/shrink/shrink_00000.mp4')).shape == (4, 32, 32, 3)
    with pytest.raises(UserError, match='even'):
        make_demo_data.main(['--out', str(tmp_path / 'bad'), '--size', '31'])
