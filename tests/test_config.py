"""Config system: merge order, forgiving case, helpful errors, inheritance, output folder; every
shipped config builds and runs; get_flops.py prints the zoo's cost."""
import glob
import os
import re

import pytest
import torch

import get_flops
from config import ConfigError, load_config_file, parse_option
from models import ZOO, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*', '*.yaml')))
DATASET_CONFIGS = [c for c in CONFIGS if '/_base_/' not in c]


def parse(*argv):
    return parse_option('main.py', argv=list(argv))[1]


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


def test_num_sample_must_divide_the_batch():
    with pytest.raises(ConfigError, match='AUG.NUM_SAMPLE 3 must be >= 1 and divide DATA.BATCH_SIZE 8'):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'AUG.NUM_SAMPLE', '3')
    assert parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'AUG.NUM_SAMPLE', '2').AUG.NUM_SAMPLE == 2


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
    names = ['MODEL'] + (['TEACHER_MODEL'] if path.endswith('_kd.yaml') else [])
    for name in names:
        node = cfg[name]
        with torch.device('meta'):
            full = build_model(cfg, node)
        if node.TYPE in ZOO and ZOO[node.TYPE]['depths']:  # the registry owns depth and width
            assert node.FOCAL.EMBED_DIM is None and node.FOCAL.DEPTHS is None
            dim, depths = ZOO[node.TYPE]['embed_dim'], ZOO[node.TYPE]['depths']
        else:
            dim, depths = node.FOCAL.EMBED_DIM, node.FOCAL.DEPTHS
        assert full.num_features == 8 * dim
        assert [len(layer.blocks) for layer in full.layers] == list(depths)
        # The same stages, depths, focal levels and windows at width 8 and input 32.
        small = load_config_file(path, ['DATA.INPUT_SIZE', '32', 'DATA.NUM_FRAMES', '2',
                                        f'{name}.TYPE', 'videofocalnet_custom', f'{name}.FOCAL.EMBED_DIM', '8',
                                        f'{name}.FOCAL.DEPTHS', str(list(depths))])
        model = build_model(small, small[name]).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 2, 3, 32, 32))
        assert out.shape == (1, cfg.MODEL.NUM_CLASSES) and torch.isfinite(out).all()


def test_a_config_that_contradicts_its_type_names_the_key(tmp_path):
    for key, value, match in (('EMBED_DIM', '64', r'MODEL.FOCAL.EMBED_DIM = 64 contradicts videofocalnet_nano, '
                                                   r'whose embed_dim is 96'),
                              ('DEPTHS', '[1, 1, 1, 1]', r'MODEL.FOCAL.DEPTHS = \[1, 1, 1, 1\] contradicts '
                                                         r'videofocalnet_nano, whose depths is \[1, 1, 2, 1\]')):
        cfg = load_config_file('configs/ucf101/VFL-Net.yaml', [f'MODEL.FOCAL.{key}', value])
        with pytest.raises(ValueError, match=match):
            build_model(cfg)
    cfg = load_config_file('configs/ucf101/VFL-Net_kd.yaml', ['TEACHER_MODEL.FOCAL.EMBED_DIM', '96'])
    with pytest.raises(ValueError, match='TEACHER_MODEL.FOCAL.EMBED_DIM = 96 contradicts videofocalnet_base'):
        build_model(cfg, cfg.TEACHER_MODEL)
    # Repeating the type's own values is allowed; the custom type needs both.
    cfg = load_config_file('configs/ucf101/VFL-Net.yaml', ['MODEL.FOCAL.EMBED_DIM', '96', 'DATA.INPUT_SIZE', '32'])
    with torch.device('meta'):
        assert build_model(cfg).num_features == 768
    cfg = load_config_file('configs/ucf101/VFL-Net.yaml', ['MODEL.TYPE', 'videofocalnet_custom',
                                                           'MODEL.FOCAL.EMBED_DIM', '8'])
    with pytest.raises(ValueError, match='videofocalnet_custom has no fixed architecture: set MODEL.FOCAL.DEPTHS'):
        build_model(cfg)


def test_colour_jitter_from_an_old_config_is_an_error(tmp_path):
    old = tmp_path / 'old.yaml'
    old.write_text('AUG:\n  COLOR_JITTER: 0.4\n')
    with pytest.raises(ConfigError, match=r'old.yaml: AUG.COLOR_JITTER expects tuple like the default '
                                          r'\(0.4, 0.4, 0.2, 0.1\), got 0.4'):
        load_config_file(str(old))
    with pytest.raises(ConfigError, match=r'AUG.COLOR_JITTER must be 4 numbers \(brightness, contrast, '
                                          r'saturation, hue\).*got \(0.4, 0.4, 0.2\)'):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'AUG.COLOR_JITTER', '[0.4, 0.4, 0.2]')
    with pytest.raises(ConfigError, match='AUG.COLOR_JITTER'):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'AUG.COLOR_JITTER', '0.4')
    with pytest.raises(ConfigError, match="TRAIN.PRETRAINED_DEPTH must be 'exact' or 'truncate', got 'loose'"):
        parse('--cfg', 'configs/ucf101/VFL-Net.yaml', 'TRAIN.PRETRAINED_DEPTH', 'loose')


def _flops(cfg, capsys, *extra):
    """(params M, GFLOPs) as `python get_flops.py --cfg CFG` prints them (its main, in this process)."""
    capsys.readouterr()
    get_flops.main(['--cfg', cfg, *extra])
    out = capsys.readouterr().out
    params = float(re.search(r'params: ([\d.]+)M', out).group(1))
    gflops = float(re.search(r'GFLOPs: ([\d.]+)', out).group(1))
    return params, gflops


def test_get_flops_prints_params_and_gflops(capsys):
    params, gflops = _flops('configs/ucf101/VFL-Net.yaml', capsys)
    assert params == 22.2 and abs(gflops - 27.2) < 0.3


@pytest.mark.slow
def test_get_flops_of_the_teacher(capsys):
    """Video-FocalNet-B at 8 x 224: 157M parameters to build and 221 GFLOPs to trace (seconds)."""
    params, gflops = _flops('configs/ucf101/video-focalnet_base.yaml', capsys)
    assert params == 157.1 and abs(gflops - 220.9) < 1.0
