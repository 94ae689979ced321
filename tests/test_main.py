"""main.py end to end on generated videos (single process and torchrun/gloo), checkpoints, resume,
and the engine's distributed and accumulation arithmetic."""
import os
import re

import pytest
import torch

from tests.helpers.runs import final_record, records, run, run_dir, run_inline, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def dataset(tiny_dataset):
    """3 classes x 4 training videos; 5 validation videos (an odd count, for sharding over 2 ranks)."""
    return tiny_dataset


@pytest.fixture(scope='module')
def trained(dataset, tmp_path_factory):
    """One 2-epoch single-process training run shared by the tests below."""
    tmp = tmp_path_factory.mktemp('trained')
    cfg = write_config(tmp / 'tiny.yaml', *dataset, num_classes=3)
    _, log = run(['main.py', '--cfg', cfg, '--output', str(tmp / 'out')])
    return cfg, run_dir(tmp / 'out'), log


def final_scores(folder):
    """(videos, views, top-1, loss) of the final evaluation recorded in folder/log.jsonl."""
    r = final_record(folder)
    return r['test_num_videos'], r['test_num_views'], r['test_acc1'], r['test_loss']


def test_train_writes_checkpoints_config_and_metrics(trained):
    cfg, out, log = trained
    assert out.endswith(os.path.join('tiny', 'tiny', 'LR_0.5_EP_2_OPT_sgd_FRAMES_4'))
    assert sorted(os.listdir(out)) == ['ckpt_epoch_0.pth', 'ckpt_epoch_1.pth', 'config.yaml', 'confusion.csv',
                                       'confusion.png', 'log.jsonl', 'log_rank0.txt', 'per_class.csv']
    ckpt = torch.load(os.path.join(out, 'ckpt_epoch_1.pth'), weights_only=True)
    assert set(ckpt) == {'model', 'optimizer', 'lr_scheduler', 'scaler', 'epoch', 'max_accuracy', 'config',
                         'world_size', 'steps_per_epoch'}
    assert (ckpt['world_size'], ckpt['steps_per_epoch']) == (1, 6)
    assert ckpt['epoch'] == 1 and isinstance(ckpt['config'], str) and 'NUM_CLASSES: 3' in ckpt['config']
    assert not any(k.startswith('module.') for k in ckpt['model'])
    lines = records(out)
    assert [r.get('epoch') for r in lines] == [0, 1, None] and lines[-1]['final']
    assert {'train_loss', 'lr', 'val_acc1', 'val_acc5'} <= set(lines[0])
    assert re.search(r'Train: \[1/2\]\[5/6\]\seta .*\slr .*\sloss .*\sgrad_norm .*\smem', log)
    assert final_scores(out)[:2] == (5, 1)


def test_eval_with_trailing_view_overrides(trained, tmp_path):
    cfg, out, _ = trained
    _, log = run(['main.py', '--eval', '--cfg', cfg, '--output', str(tmp_path), '--resume',
                  os.path.join(out, 'ckpt_epoch_1.pth'), 'TEST.NUM_CLIP', '2', 'TEST.NUM_CROP', '3'])
    assert '2 clips x 3 crops = 6 views per video' in log
    assert final_scores(tmp_path / 'eval_2x3')[:2] == (5, 6)


def test_torchrun_two_processes_train_and_distributed_eval_matches_single(dataset, trained, tmp_path):
    cfg, out, _ = trained
    ckpt = os.path.join(out, 'ckpt_epoch_1.pth')
    run(['main.py', '--eval', '--cfg', cfg, '--output', str(tmp_path / 'a'), '--resume', ckpt, 'TEST.NUM_CLIP', '2'])
    run(['main.py', '--eval', '--cfg', cfg, '--output', str(tmp_path / 'b'), '--resume', ckpt, 'TEST.NUM_CLIP', '2'],
        torchrun=2)
    videos, views, acc1, loss = final_scores(tmp_path / 'b' / 'eval_2x1')
    assert (videos, views) == (5, 2)  # 5 videos over 2 ranks: 3 + 2, none dropped or repeated
    assert final_scores(tmp_path / 'a' / 'eval_2x1') == pytest.approx((videos, views, acc1, loss), abs=1e-4)

    _, log = run(['main.py', '--cfg', cfg, '--output', str(tmp_path / 'c'), '--opts', 'TRAIN.EPOCHS', '1'],
                 torchrun=2)
    assert 'world size 2' in log and re.search(r'Train: \[0/1\]\[2/3\]', log)  # 12 clips / (2 x 2)
    assert os.path.isfile(os.path.join(run_dir(tmp_path / 'c'), 'ckpt_epoch_0.pth'))
    assert os.path.isfile(os.path.join(run_dir(tmp_path / 'c'), 'log_rank1.txt'))


def test_resume_replays_the_epoch_exactly(trained, tmp_path):
    """Train 2 epochs in one go (the shared run) vs. resume from epoch 0's checkpoint."""
    cfg, out, _ = trained
    resumed = tmp_path / 'out'
    target = os.path.join(run_dir_for(resumed, out))
    os.makedirs(target)
    os.link(os.path.join(out, 'ckpt_epoch_0.pth'), os.path.join(target, 'ckpt_epoch_0.pth'))
    _, log = run(['main.py', '--cfg', cfg, '--output', str(resumed)])
    assert 'resumed from' in log and 'Train: [0/2]' not in log
    a = torch.load(os.path.join(out, 'ckpt_epoch_1.pth'), weights_only=True)['model']
    b = torch.load(os.path.join(target, 'ckpt_epoch_1.pth'), weights_only=True)['model']
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def run_dir_for(new_root, old_run):
    """The same run folder layout as `old_run` under another --output root."""
    return os.path.join(str(new_root), *old_run.split(os.sep)[-3:])


def test_non_finite_loss_stops_naming_the_step(dataset, tmp_path):
    cfg = write_config(tmp_path / 'tiny.yaml', *dataset, num_classes=3,
                       extra={'TRAIN': {'BASE_LR': 1e30, 'WARMUP_EPOCHS': 0, 'CLIP_GRAD': 0.0}})
    code, log = run(['main.py', '--cfg', cfg, '--output', str(tmp_path / 'out')], check=False)
    assert code != 0
    assert re.search(r'NonFiniteLossError: loss is (nan|inf) at epoch 0 step \d+/6', log), log[-2000:]
    assert not any(name.endswith('.tmp') for name in os.listdir(run_dir(tmp_path / 'out')))


def test_eval_refuses_a_checkpoint_for_another_head(trained, tmp_path, monkeypatch, capsys):
    cfg, out, _ = trained
    code = run_inline('main.py', ['--eval', '--cfg', cfg, '--output', str(tmp_path), '--resume',
                                  os.path.join(out, 'ckpt_epoch_1.pth'), 'MODEL.NUM_CLASSES', '4',
                                  'DATA.LABEL_LIST', ''], monkeypatch)  # the 3-name list is refused first
    assert code == 2 and 'head.weight: checkpoint (3, 64) vs model (4, 64)' in capsys.readouterr().err
