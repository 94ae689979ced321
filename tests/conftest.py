"""Shared fixtures: the tiny model, tiny dataset and tiny config factories every test file uses.

The implementations live in tests/helpers/runs.py (configs, subprocess runs, the tiny model) and
tests/helpers/videos.py (real generated video files); these fixtures are the one way tests reach them.
"""
import os

import pytest

from tests.helpers import runs
from tests.helpers.deploy import tiny_deployment
from tests.helpers.markers import pytest_collection_modifyitems, pytest_runtest_makereport  # noqa: F401
from tests.helpers.videos import make_dataset


@pytest.fixture(autouse=True)
def restore_logging():
    """A test that configures the project's logging in this process (setup_logging puts handlers on
    the root logger) leaves none behind, so its console never lands in another test's output."""
    with runs.logging_restored():
        yield


@pytest.fixture
def tiny_model():
    """Factory: `tiny_model(num_classes=3, embed_dim=8, depths=(1, 1, 1, 1), num_frames=2, seed=0)`."""
    return runs.tiny_model


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
    """(train.csv, val.csv, labels.csv): 3 classes x 4 training videos, 5 validation videos (an odd
    count, for sharding over 2 ranks), 10 frames of 40x32. Shared: do not modify its files."""
    root = tmp_path_factory.mktemp('tiny_dataset')
    train, val, labels = make_dataset(root, num_classes=3, videos_per_class=4, num_frames=10,
                                      size=(40, 32), val_per_class=2)
    lines = open(val, newline='').read().splitlines(keepends=True)
    with open(val, 'w', newline='') as f:
        f.write(''.join(lines[:5]))
    return train, val, labels


@pytest.fixture(scope='session')
def trained_teacher(tmp_path_factory, tiny_dataset):
    """The checkpoint of runs.TINY_TEACHER after one epoch of main.py on tiny_dataset. Shared: read only."""
    root = tmp_path_factory.mktemp('trained_teacher')
    config = runs.write_config(root / 'teacher.yaml', *tiny_dataset, 3,
                               extra={'MODEL': runs.TINY_TEACHER, 'TRAIN': {'EPOCHS': 1}})
    runs.run(['main.py', '--cfg', config, '--output', str(root / 'out')])
    return os.path.join(runs.run_dir(root / 'out'), 'ckpt_epoch_0.pth')


@pytest.fixture(scope='session')
def deployed(tmp_path_factory):
    """A trained-model stand-in (tests/helpers/deploy.py: config, checkpoint, model, videos) for the
    tools.predict, tools.export and tools.visualize tests. Shared: do not modify it or its files."""
    return tiny_deployment(tmp_path_factory.mktemp('deployed'))


@pytest.fixture(scope='session')
def deployed_onnx(deployed):
    """`deployed`'s model exported to ONNX, once per session (the export takes 10-30 s). Read only."""
    from models.deploy import export_onnx

    return export_onnx(deployed.model, deployed.config.DATA.NUM_FRAMES, deployed.config.DATA.INPUT_SIZE,
                       os.path.join(os.path.dirname(deployed.cfg), 'tiny.onnx'))


@pytest.fixture
def tiny_config(tmp_path, tiny_dataset):
    """Factory: `tiny_config(extra=None, name='tiny.yaml', dataset=None, num_classes=3)` writes a config
    file for main.py / main_KD.py over `dataset` (default: tiny_dataset) and returns its path."""
    def make(extra=None, name='tiny.yaml', dataset=None, num_classes=3):
        return runs.write_config(tmp_path / name, *(dataset or tiny_dataset), num_classes=num_classes,
                                 extra=extra)
    return make
