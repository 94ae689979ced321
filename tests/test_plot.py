"""utils/plot.py and tools.plot: the training-curve PNG from log.jsonl files, and clear errors on bad logs."""
import json

import numpy as np
import pytest
from PIL import Image

from tools.plot import main as plot_main
from utils import plot
from utils.errors import UserError


def _write_log(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'log.jsonl'
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return path


def _teacher_records():
    records = []
    for epoch in range(6):
        record = {'epoch': epoch, 'train_loss': 1.6 - 0.2 * epoch, 'lr': 1e-3 * (epoch + 1)}
        if epoch % 2:  # validated every other epoch
            record.update(val_acc1=20.0 + 10 * epoch, val_acc5=80.0 + epoch, val_loss=1.5 - 0.1 * epoch)
        records.append(record)
    records.append({'final': True, 'test_acc1': 61.5, 'test_acc5': 99.0})
    return records


def _kd_records():
    return [{'epoch': e, 'train_loss': 2.0 - 0.1 * e, 'train_loss_kd': 1.0, 'train_loss_ce': 1.0 - 0.1 * e,
             'lr': 5e-4, 'val_acc1': 30.0 + e, 'val_acc5': 90.0} for e in range(4)]


def test_read_log_keeps_epoch_records_and_the_final_summary(tmp_path):
    path = _write_log(tmp_path / 'run', [{'note': 'start'}] + _teacher_records()
                      + [{'epoch': 2, 'train_loss': 0.5, 'lr': 3e-3}])  # epoch 2 again, after a resume
    records, final = plot.read_log(str(path))
    assert [r['epoch'] for r in records] == list(range(6))
    assert records[2]['train_loss'] == 0.5
    assert final == {'final': True, 'test_acc1': 61.5, 'test_acc5': 99.0}
    assert plot._series(records, 'val_acc1') == ([1, 3, 5], [30.0, 50.0, 70.0])


def test_two_runs_make_one_png_with_four_panels(tmp_path):
    teacher = _write_log(tmp_path / 'out' / 'teacher', _teacher_records())
    _write_log(tmp_path / 'out' / 'distilled', _kd_records())
    out = tmp_path / 'plots' / 'curves.png'
    # A run folder and a log file are both accepted.
    plot.plot_runs([str(teacher), str(tmp_path / 'out' / 'distilled')], str(out))
    with Image.open(out) as image:
        assert image.format == 'PNG'
        assert image.size == (1100, 800)
        pixels = np.asarray(image.convert('RGB'))
    assert pixels.std() > 10  # not a blank canvas
    # Both runs' colours (matplotlib C0 blue, C1 orange) are drawn.
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels.astype(int) - colour).sum(-1) < 30).sum() > 200, colour


def test_default_labels_name_the_runs(tmp_path):
    a = _write_log(tmp_path / 'out' / 'teacher' / 'LR_0.1', _teacher_records())
    b = _write_log(tmp_path / 'out' / 'student' / 'LR_0.1', _kd_records())
    assert plot._default_labels([str(a), str(b)]) == ['teacher/LR_0.1', 'student/LR_0.1']
    assert plot._default_labels([str(a)]) == ['LR_0.1']


def test_command_line_with_labels(tmp_path, capsys):
    a = _write_log(tmp_path / 'a', _teacher_records())
    b = _write_log(tmp_path / 'b', _kd_records())
    out = tmp_path / 'p.png'
    plot_main([str(a.parent), str(b.parent), '--out', str(out), '--labels', 'teacher', 'distilled'])
    assert out.stat().st_size > 10_000
    assert 'wrote' in capsys.readouterr().out
    with pytest.raises(UserError, match='1 labels for 2 runs'):
        plot_main([str(a.parent), str(b.parent), '--out', str(out), '--labels', 'teacher'])


def test_bad_line_is_reported_with_file_and_line(tmp_path):
    path = _write_log(tmp_path / 'run', _kd_records())
    with open(path, 'a') as f:
        f.write('{"epoch": 4, "train_loss": 1.0\n')
    with pytest.raises(plot.LogError, match=r'log\.jsonl:5: not a JSON line'):
        plot.plot_runs([str(path)], str(tmp_path / 'p.png'))
    assert not (tmp_path / 'p.png').exists()


@pytest.mark.parametrize('line, message', [
    ('[1, 2]', 'expected a JSON object'),
    ('{"epoch": "3", "train_loss": 1.0}', "'epoch' must be an integer"),
    ('{"epoch": 3, "val_acc1": "high"}', "'val_acc1' must be a number"),
])
def test_malformed_records_are_reported(tmp_path, line, message):
    path = _write_log(tmp_path / 'run', _kd_records())
    with open(path, 'a') as f:
        f.write(line + '\n')
    with pytest.raises(plot.LogError, match=message) as exc:
        plot.read_log(str(path))
    assert f'{path}:5' in str(exc.value)


def test_missing_or_empty_logs_are_reported(tmp_path, capsys):
    with pytest.raises(plot.LogError, match='no such log file') as exc:
        plot.plot_runs([str(tmp_path / 'nowhere')], str(tmp_path / 'p.png'))
    assert str(tmp_path / 'nowhere' / 'log.jsonl') in str(exc.value)
    empty = _write_log(tmp_path / 'empty', [{'final': True, 'test_acc1': 1.0}])
    with pytest.raises(plot.LogError, match='no per-epoch records'):
        plot.read_log(str(empty))
    with pytest.raises(UserError, match='no such log file'):
        plot_main([str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'p.png')])
