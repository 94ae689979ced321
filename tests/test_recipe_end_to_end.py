"""The paper's recipe paths end to end on tiny videos: main.py and main_KD.py at AMP O1 (bfloat16
autocast on the CPU) with Mixup/CutMix, the KD loss checked from log.jsonl, and --eval writing into
its own folder while the training run's files stay byte-identical."""
import os

import pytest

from tests.helpers.runs import (TINY_TEACHER, assert_kd_mix, final_record, records, run, run_dir, teacher_section,
                       write_config)

pytestmark = pytest.mark.slow

RECIPE = {'AMP_OPT_LEVEL': 'O1', 'TRAIN': {'EPOCHS': 1},
          'AUG': {'MIXUP': 0.8, 'CUTMIX': 1.0, 'MIXUP_PROB': 1.0, 'MIXUP_SWITCH_PROB': 0.5, 'LABEL_SMOOTH': 0.1}}


@pytest.fixture(scope='module')
def teacher(tiny_dataset, tmp_path_factory):
    """One epoch of main.py at the recipe's AMP and mixing: (config file, run folder, console)."""
    tmp = tmp_path_factory.mktemp('teacher')
    cfg = write_config(tmp / 'teacher.yaml', *tiny_dataset, num_classes=3, extra=dict(RECIPE, MODEL=TINY_TEACHER))
    _, console = run(['main.py', '--cfg', cfg, '--output', str(tmp / 'out')])
    return cfg, run_dir(tmp / 'out'), console


def snapshot(folder):
    return {os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), 'rb').read()
            for d, _, files in os.walk(folder) for f in files}


def test_main_at_amp_o1_with_mixup_and_cutmix(teacher):
    _, out, console = teacher
    assert 'AMP O1: autocast dtype torch.bfloat16, GradScaler False' in console
    epoch = records(out)[0]
    assert epoch['epoch'] == 0 and 0 < epoch['train_loss'] < 10 and epoch['grad_norm'] > 0
    assert final_record(out)['test_num_videos'] == 5


def test_main_kd_loss_is_alpha_kd_plus_one_minus_alpha_ce(teacher, tiny_dataset, tmp_path):
    _, teacher_out, _ = teacher
    kd_teacher = teacher_section(os.path.join(teacher_out, 'ckpt_epoch_0.pth'))
    cfg = write_config(tmp_path / 'kd.yaml', *tiny_dataset, num_classes=3, extra=dict(
        RECIPE, MODEL={'NAME': 'student'}, TEACHER_MODEL=kd_teacher, KD={'ALPHA': 0.25, 'TEMPERATURE': 4.0}))
    _, console = run(['main_KD.py', '--cfg', cfg, '--output', str(tmp_path / 'out')])
    assert 'autocast dtype torch.bfloat16' in console
    epoch = records(run_dir(tmp_path / 'out'))[0]
    assert_kd_mix(epoch, 0.25, rel=1e-4)
    kd, ce, loss = epoch['train_loss_kd'], epoch['train_loss_ce'], epoch['train_loss']
    assert loss != pytest.approx(0.75 * kd + 0.25 * ce, rel=1e-3)


def test_eval_writes_its_own_folder_and_leaves_the_run_alone(teacher, tmp_path):
    cfg, out, _ = teacher
    ckpt = os.path.join(out, 'ckpt_epoch_0.pth')
    before = snapshot(out)
    _, console = run(['main.py', '--eval', '--cfg', cfg, '--resume', ckpt, 'TEST.NUM_CLIP', '2'])
    eval_dir = os.path.join(out, 'eval_2x1')
    assert {k: v for k, v in snapshot(out).items() if not k.startswith('eval_2x1')} == before
    assert sorted(os.listdir(eval_dir)) == ['config.yaml', 'confusion.csv', 'confusion.png', 'log.jsonl',
                                            'log_rank0.txt', 'per_class.csv']
    result = final_record(eval_dir)
    assert result['checkpoint'] == ckpt and result['test_num_views'] == 2 and result['test_num_videos'] == 5
    assert f'evaluation results written to {eval_dir}' in console
    assert 'EVAL_MODE: true' in open(os.path.join(eval_dir, 'config.yaml')).read()

    elsewhere = tmp_path / 'elsewhere'
    run(['main.py', '--eval', '--cfg', cfg, '--resume', ckpt, '--output', str(elsewhere), 'TEST.NUM_CROP', '3'])
    assert final_record(elsewhere / 'eval_1x3')['test_num_views'] == 3
    assert {k: v for k, v in snapshot(out).items() if not k.startswith('eval_2x1')} == before
