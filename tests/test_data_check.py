"""`python -m tools.check_data`: decode every listed file once, report bad and short ones."""
import os
import subprocess
import sys

import pytest
import yaml

from datasets.annotations import AnnotationError
from datasets.encode import marker_frames, write_video
from tests.helpers.videos import make_dataset
from tools.check_data import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_file(tmp_path, files, classes):
    train, val, labels = files
    path = tmp_path / 'data.yaml'
    path.write_text(yaml.safe_dump({'DATA': {'ROOT': str(tmp_path), 'TRAIN_FILE': train, 'VAL_FILE': val,
                                             'LABEL_LIST': labels, 'DECODER': 'pyav'},
                                    'MODEL': {'NUM_CLASSES': classes}}))
    return str(path)


def test_clean_dataset_passes(tmp_path, capsys):
    cfg = config_file(tmp_path, make_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=5), 2)
    assert main(['--cfg', cfg, '--workers', '1']) == 0
    captured = capsys.readouterr()
    assert '8 videos: 0 bad, 0 short' in captured.out
    assert '8/8' in captured.err  # the progress line


def test_bad_and_short_files_are_reported(tmp_path, capsys):
    files = make_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=5, ext='.mp4')
    text = tmp_path / 'train' / 'Class00' / 'v_Class00_g01_c01.mp4'
    text.write_text('text, not video')
    short = str(tmp_path / 'val' / 'Class01' / 'v_Class01_g22_c01.mp4')
    write_video(short, marker_frames(30, 64, 48), faststart=True)
    data = open(short, 'rb').read()
    open(short, 'wb').write(data[:len(data) * 6 // 10])
    cfg = config_file(tmp_path, files, 2)
    report = tmp_path / 'report.txt'
    assert main(['--cfg', cfg, '--workers', '2', '--report', str(report)]) == 1
    out = capsys.readouterr().out
    assert f'BAD {text}: cannot open' in out and f'SHORT {short}: ' in out
    assert '8 videos: 1 bad, 1 short' in out
    assert len(report.read_text().splitlines()) == 2
    assert main(['--cfg', cfg, '--split', 'val', '--strict', '--workers', '1']) == 1
    assert main(['--cfg', cfg, '--split', 'val', '--workers', '1']) == 0


def run_module(cfg, *args):
    return subprocess.run([sys.executable, '-m', 'tools.check_data', '--cfg', cfg, *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_annotation_errors_are_reported(tmp_path):
    """A user error (cli_main turns it into `error: ...`, status 2: tests/test_commands.py)."""
    cfg = config_file(tmp_path, make_dataset(tmp_path, num_classes=2, videos_per_class=1, num_frames=3), 3)
    with pytest.raises(AnnotationError, match='lists 2 classes, but MODEL.NUM_CLASSES is 3'):
        main(['--cfg', cfg])


@pytest.mark.slow
def test_runs_as_a_module(tmp_path):
    cfg = config_file(tmp_path, make_dataset(tmp_path, num_classes=2, videos_per_class=1, num_frames=3), 2)
    os.remove(tmp_path / 'val' / 'Class01' / 'v_Class01_g21_c01.avi')
    run = run_module(cfg, '--opts', 'DATA.DECODER', 'decord')
    assert run.returncode == 1, run.stderr
    assert 'BAD ' in run.stdout and 'Traceback' not in run.stderr, run.stderr
    assert 'v_Class01_g21_c01.avi: file not found' in run.stdout
