"""Config system: merge order, forgiving case, helpful errors, inheritance, output folder; every
shipped config builds and runs; get_flops.py prints the zoo's cost."""
import glob
import os
import re
import subprocess
import sys

import pytest
import torch

from config import ConfigError, load_config_file
from main import parse_option
from models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*', '*.yaml')))
DATASET_CONFIGS = [c for c in CONFIGS if '_base_' not in c]


def parse(*argv):
    return parse_option(argv=list(argv))[1]


def test_eval_command_trailing_overrides_without_opts():
    cfg = parse('--eval', '--cfg', 'configs/ucf101/VFL-Net.yaml', '--resume', 'x.pth',
                'TEST.NUM_CLIP', '4', 'TEST.NUM_CROP', '3')
    assert cfg.EVAL_MODE and cfg.MODEL.RESUME == 'x.pth'
    assert (cfg.TEST.NUM_CLIP, cfg.TEST.NUM_CROP) == (4, 3)


def test_merge_order_file_then_opts_then_trailing_then_flags():
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--batch-size', '3', 'DATA.BATCH_SIZE', '5',
                '--opts', 'DATA.BATCH_SIZE', '4', 'TRAIN.EPOCHS', '7')
    assert cfg.DATA.BATCH_SIZE == 3  # the flag wins over both kinds of overrides
    assert cfg.TRAIN.EPOCHS == 7
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'TRAIN.EPOCHS', '9', '--opts', 'TRAIN.EPOCHS', '7')
    assert cfg.TRAIN.EPOCHS == 9  # trailing pairs come after --opts


def test_protocol_kd_command_parses():
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net_kd.yaml', '--output', 'output/', '--opts',
                'DATA.NUM_FRAMES', '8', 'KD.ALPHA', '0.2', 'KD.BETA', '0.3', 'KD.GAMMA', '0.5',
                'KD.TEMPERATURE', '10')
    assert (cfg.KD.ALPHA, cfg.KD.BETA, cfg.KD.GAMMA, cfg.KD.TEMPERATURE) == (0.2, 0.3, 0.5, 10.0)
    assert cfg.TEACHER_MODEL.TYPE == 'videofocalnet_base' and cfg.MODEL.TYPE == 'videofocalnet_nano'


def test_keys_differing_only_in_case_resolve():
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--opts', 'DATA.NUM_Frames', '16', 'data.input_size', '112')
    assert cfg.DATA.NUM_FRAMES == 16 and cfg.DATA.INPUT_SIZE == 112


def test_unknown_key_names_the_closest_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'DATA.NUM_FRAME'.*DATA.NUM_FRAMES"):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--opts', 'DATA.NUM_FRAME', '16')
    with pytest.raises(ConfigError, match=r"TRAIN.BASE_LRR.*TRAIN.BASE_LR"):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'TRAIN.BASE_LRR', '0.1')


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('MODEL:\n  FOCAL:\n    EMBED_DIMS: 64\n')
    with pytest.raises(ConfigError, match=r'bad.yaml.*MODEL.FOCAL.EMBED_DIMS.*MODEL.FOCAL.EMBED_DIM'):
        load_config_file(str(bad))


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match='DATA.NUM_FRAMES'):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--opts', 'DATA.NUM_FRAMES', 'eight')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('TRAIN:\n  EPOCHS: ten\n')
    with pytest.raises(ConfigError, match=r'TRAIN.EPOCHS expects int'):
        load_config_file(str(bad))


def test_scientific_notation_without_a_dot_is_a_float(tmp_path):
    path = tmp_path / 'sci.yaml'
    path.write_text('TRAIN:\n  WEIGHT_DECAY: 1e-4\n  BASE_LR: 5e-3\n')
    cfg = load_config_file(str(path))
    assert (cfg.TRAIN.WEIGHT_DECAY, cfg.TRAIN.BASE_LR) == (1e-4, 5e-3)


def test_odd_override_list_is_an_error():
    with pytest.raises(ConfigError, match='KEY VALUE pairs'):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'TEST.NUM_CLIP')


def test_base_inheritance_later_files_win(tmp_path):
    (tmp_path / 'a.yaml').write_text('TRAIN:\n  EPOCHS: 5\n  BASE_LR: 0.5\n')
    (tmp_path / 'b.yaml').write_text("BASE: ['a.yaml']\nTRAIN:\n  EPOCHS: 6\n")
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'c.yaml').write_text("BASE: ['../b.yaml']\nDATA:\n  NUM_FRAMES: 4\n")
    cfg = load_config_file(str(tmp_path / 'sub' / 'c.yaml'))
    assert (cfg.TRAIN.EPOCHS, cfg.TRAIN.BASE_LR, cfg.DATA.NUM_FRAMES) == (6, 0.5, 4)


def test_output_folder_follows_protocol():
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--output', 'output/')
    assert cfg.OUTPUT == os.path.join('output', 'ucf101', 'VFL-Net', 'LR_0.1_EP_120_OPT_sgd_FRAMES_8')
    cfg = parse('--cfg', 'configs/hmdb51/video-focalnet_base.yaml', '--output', '/tmp/o', 'TRAIN.EPOCHS', '3',
                'DATA.NUM_FRAMES', '16')
    assert cfg.OUTPUT == '/tmp/o/hmdb51/video-focalnet_base/LR_0.1_EP_3_OPT_sgd_FRAMES_16'


def test_each_suggestion_is_named_once():
    with pytest.raises(ConfigError) as exc:
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'TRAIN.EPOCH', '3')
    hint = str(exc.value).split('Did you mean: ')[1].rstrip('?').split(', ')
    assert hint[0] == 'TRAIN.EPOCHS' and len(hint) == len(set(hint)), hint


def test_retired_keys_are_gone():
    """TAG and LOCAL_RANK were never read: the GPU comes from torchrun's LOCAL_RANK variable."""
    for key in ('TAG', 'LOCAL_RANK'):
        with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
            parse('--cfg', 'configs/ucf101/VFL-Net.yaml', key, '1')


def test_flags_map_to_keys():
    cfg = parse('--cfg', 'configs/ucf101/VFL-Net.yaml', '--accumulation-steps', '2', '--use-checkpoint',
                '--amp-opt-level', 'O0')
    assert cfg.TRAIN.ACCUMULATION_STEPS == 2 and cfg.TRAIN.USE_CHECKPOINT and cfg.AMP_OPT_LEVEL == 'O0'


def test_every_dataset_has_the_five_configs_and_scripts():
    for ds in ('ucf50', 'ucf101', 'hmdb51'):
        for name in ('video-focalnet_base', 'video-focalnet_small', 'video-focalnet_tiny', 'VFL-Net', 'VFL-Net_kd'):
            assert os.path.isfile(os.path.join(ROOT, 'configs', ds, name + '.yaml'))
            script = open(os.path.join(ROOT, 'scripts', ds, name + '.sh')).read()
            assert f'configs/{ds}/{name}.yaml' in script and 'torchrun' in script


@pytest.mark.parametrize('path', DATASET_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_config_builds_and_runs_forward(path):
    """Full size on the meta device (the architecture as configured), then a forward at reduced
    width and input size (every stage, depth, focal level and window as configured)."""
    cfg = load_config_file(path)
    if cfg.DATA.DATASET == 'demo':  # its label list is written by the generator
        from datasets.synthetic import DEFAULT_CLASSES
        assert len(DEFAULT_CLASSES) == cfg.MODEL.NUM_CLASSES
    else:
        labels = open(os.path.join(ROOT, cfg.DATA.LABEL_LIST)).read().strip().splitlines()[1:]
        assert len(labels) == cfg.MODEL.NUM_CLASSES
    small = load_config_file(path, ['DATA.INPUT_SIZE', '32', 'DATA.NUM_FRAMES', '2',
                                    'MODEL.FOCAL.EMBED_DIM', '8', 'TEACHER_MODEL.FOCAL.EMBED_DIM', '8'])
    names = ['MODEL'] + (['TEACHER_MODEL'] if path.endswith('_kd.yaml') else [])
    for name in names:
        with torch.device('meta'):
            full = build_model(cfg, cfg[name])
        assert full.num_features == 8 * cfg[name].FOCAL.EMBED_DIM
        assert sum(len(layer.blocks) for layer in full.layers) == sum(cfg[name].FOCAL.DEPTHS)
        model = build_model(small, small[name]).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 2, 3, 32, 32))
        assert out.shape == (1, cfg.MODEL.NUM_CLASSES) and torch.isfinite(out).all()


def _flops(cfg, *extra):
    out = subprocess.run([sys.executable, 'get_flops.py', '--cfg', cfg, *extra], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    params = float(re.search(r'params: ([\d.]+)M', out).group(1))
    gflops = float(re.search(r'GFLOPs: ([\d.]+)', out).group(1))
    return params, gflops


def test_get_flops_prints_params_and_gflops():
    params, gflops = _flops('configs/ucf101/VFL-Net.yaml')
    assert params == 22.2 and abs(gflops - 27.2) < 0.3
    params, gflops = _flops('configs/ucf101/video-focalnet_base.yaml')
    assert params == 157.1 and abs(gflops - 220.9) < 1.0
