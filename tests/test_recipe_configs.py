"""The 15 paper configs against the recipe (the protocol's table, written out below), the scripts
against their configs, and main.py starting from ImageNet FocalNet weights the way a user runs it."""
import glob
import os
import re
import shlex

import pytest
import timm
import torch

from config import _C as DEFAULTS
from config import load_config_file
from models import build_model
from models.pretrained import convert_to_video
from tests.helpers.runs import ROOT, run, run_dir
from tests.helpers.videos import make_dataset
from utils.optim import build_optimizer, build_scheduler

DATASETS = {'ucf101': 101, 'ucf50': 50, 'hmdb51': 51}
# model config -> (TYPE, drop path, ImageNet FocalNet file, TRAIN.PRETRAINED_DEPTH)
MODELS = {
    'video-focalnet_base': ('videofocalnet_base', 0.5, 'focalnet_base_srf', 'exact'),
    'video-focalnet_small': ('videofocalnet_small', 0.3, 'focalnet_small_srf', 'exact'),
    'video-focalnet_tiny': ('videofocalnet_tiny', 0.2, 'focalnet_tiny_srf', 'exact'),
    'VFL-Net': ('videofocalnet_nano', 0.2, 'focalnet_tiny_srf', 'truncate'),
    'VFL-Net_kd': ('videofocalnet_nano', 0.1, 'focalnet_tiny_srf', 'truncate'),  # the distilled student
}
# Every config: the same recipe (dotted key -> value).
RECIPE = {
    'DATA.NUM_FRAMES': 8, 'DATA.INPUT_SIZE': 224, 'DATA.BATCH_SIZE': 8, 'AUG.FRAME_INTERVAL': 4,
    'AUG.SAMPLE_ALL_FRAMES': False, 'AUG.NUM_SAMPLE': 1,
    'AUG.FLIP_PROB': 0.5, 'AUG.CROP_SCALE': (0.08, 1.0), 'AUG.CROP_RATIO': (3 / 4, 4 / 3),
    'AUG.COLOR_JITTER': (0.4, 0.4, 0.2, 0.1), 'AUG.COLOR_JITTER_PROB': 0.8, 'AUG.GRAY_SCALE': 0.2,
    'AUG.MIXUP': 0.8, 'AUG.CUTMIX': 1.0, 'AUG.MIXUP_PROB': 1.0, 'AUG.MIXUP_SWITCH_PROB': 0.5,
    'AUG.LABEL_SMOOTH': 0.1,
    'TRAIN.OPTIMIZER.NAME': 'sgd', 'TRAIN.OPTIMIZER.MOMENTUM': 0.9, 'TRAIN.BASE_LR': 0.1,
    'TRAIN.WARMUP_LR': 0.001, 'TRAIN.MIN_LR': 0.001, 'TRAIN.EPOCHS': 120, 'TRAIN.WARMUP_EPOCHS': 20,
    'TRAIN.LR_SCHEDULER.NAME': 'cosine', 'TRAIN.CLIP_GRAD': 5.0, 'TRAIN.WEIGHT_DECAY': 0.0,
    'TRAIN.AUTO_RESUME': True, 'SAVE_FREQ': 10, 'AMP_OPT_LEVEL': 'O1', 'AMP_DTYPE': 'float16',
}
PAPER_CONFIGS = [(ds, name) for ds in DATASETS for name in MODELS]
# The published commands (the seed's scripts): main.py and main_KD.py overrides.
PUBLISHED_OPTS = {'main.py': ['DATA.NUM_FRAMES', '8'],
                  'main_KD.py': ['DATA.NUM_FRAMES', '8', 'KD.ALPHA', '0.2', 'KD.BETA', '0.3', 'KD.GAMMA', '0.5',
                                 'KD.TEMPERATURE', '10']}


def value(cfg, dotted):
    for part in dotted.split('.'):
        cfg = cfg[part]
    return cfg


def config_path(ds, name):
    return os.path.join(ROOT, 'configs', ds, f'{name}.yaml')


def test_the_fifteen_configs_are_all_there():
    paper = {os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', '*', '*.yaml'))
             if os.path.basename(os.path.dirname(p)) in DATASETS and not p.endswith('_k400.yaml')}
    assert paper == {os.path.relpath(config_path(ds, name), ROOT) for ds, name in PAPER_CONFIGS}


@pytest.mark.parametrize('ds, name', PAPER_CONFIGS, ids=lambda x: x)
def test_config_follows_the_recipe(ds, name):
    cfg = load_config_file(config_path(ds, name))
    model_type, drop_path, focalnet, depth_mode = MODELS[name]
    for key, expected in RECIPE.items():
        got = value(cfg, key)
        got = tuple(got) if isinstance(got, list) else got
        assert got == pytest.approx(expected) if isinstance(expected, (float, tuple)) else got == expected, key
    assert cfg.MODEL.TYPE == model_type and cfg.MODEL.DROP_PATH_RATE == drop_path
    assert cfg.MODEL.FOCAL.EMBED_DIM is None and cfg.MODEL.FOCAL.DEPTHS is None  # the registry's
    assert cfg.TRAIN.PRETRAINED_PATH == f'pretrained/{focalnet}.pth'
    assert cfg.TRAIN.PRETRAINED_DEPTH == depth_mode
    assert cfg.MODEL.NUM_CLASSES == DATASETS[ds] and cfg.DATA.DATASET == ds
    for f in (cfg.DATA.TRAIN_FILE, cfg.DATA.VAL_FILE, cfg.DATA.LABEL_LIST):
        assert os.path.isfile(os.path.join(ROOT, f)), f  # shipped in the repository
    assert cfg.DATA.ROOT == f'data/{ds}'
    if name == 'VFL-Net_kd':
        assert (cfg.TEACHER_MODEL.TYPE, cfg.TEACHER_MODEL.DROP_PATH_RATE) == ('videofocalnet_base', 0.5)
        assert cfg.TEACHER_MODEL.FOCAL.EMBED_DIM is None and cfg.TEACHER_MODEL.FOCAL.DEPTHS is None
        assert (cfg.KD.ALPHA, cfg.KD.TEMPERATURE) == (0.2, 10.0)
        assert cfg.TEACHER_MODEL.PRETRAINED_PATH == \
            f'output/{ds}/video-focalnet_base/LR_0.1_EP_120_OPT_sgd_FRAMES_8/ckpt_epoch_119.pth'


@pytest.mark.parametrize('ds, name', [(ds, name) for ds in ('ucf101',) for name in MODELS], ids=lambda x: x)
def test_optimiser_and_schedule_built_from_the_config(ds, name):
    """No decay on any parameter; cosine over all steps, warm-up overlapping its start."""
    cfg = load_config_file(config_path(ds, name), ['DATA.INPUT_SIZE', '32'])
    with torch.device('meta'):
        model = build_model(cfg)
    optimizer = build_optimizer(cfg, model, 0.1)
    assert {g['weight_decay'] for g in optimizer.param_groups} == {0.0}
    sched = build_scheduler(cfg, optimizer, steps_per_epoch=7, warmup_lr=1e-3, min_lr=1e-3)
    assert type(sched).__name__ == 'CosineLRScheduler'
    assert (sched.t_initial, sched.warmup_t, sched.warmup_prefix) == (120 * 7, 20 * 7, False)


@pytest.mark.parametrize('ds, name', PAPER_CONFIGS, ids=lambda x: x)
def test_the_named_imagenet_file_fits_the_model(ds, name):
    """The FocalNet the config names (timm's architecture of it, on the meta device) maps onto the
    model in the config's depth mode: nothing missing, nothing mis-shaped."""
    cfg = load_config_file(config_path(ds, name))
    focalnet = os.path.basename(cfg.TRAIN.PRETRAINED_PATH)[:-len('.pth')]
    with torch.device('meta'):
        image = timm.create_model(focalnet, pretrained=False)
        model = build_model(cfg)
    conv = convert_to_video(image.state_dict(), model, depth=cfg.TRAIN.PRETRAINED_DEPTH)
    assert len(conv.loaded) > 0
    expected = ['layers.0.blocks.1', 'layers.1.blocks.1', 'layers.2.blocks.2-5', 'layers.3.blocks.1']
    assert conv.dropped == (expected if cfg.TRAIN.PRETRAINED_DEPTH == 'truncate' else [])


def script_opts(ds, name):
    text = open(os.path.join(ROOT, 'scripts', ds, f'{name}.sh')).read()
    line = next(line for line in text.splitlines() if line.startswith('torchrun'))
    words = shlex.split(line)
    entry = next(w for w in words if w.endswith('.py'))
    opts = words[words.index('--opts') + 1:]
    assert opts[-1] == '$@'
    return entry, words[words.index('--cfg') + 1], opts[:-1]


@pytest.mark.parametrize('ds, name', PAPER_CONFIGS, ids=lambda x: x)
def test_scripts_pass_the_published_command_and_agree_with_the_config(ds, name):
    entry, cfg_file, opts = script_opts(ds, name)
    assert cfg_file == f'configs/{ds}/{name}.yaml'
    assert entry == ('main_KD.py' if name.endswith('_kd') else 'main.py')
    assert opts == PUBLISHED_OPTS[entry]
    cfg = load_config_file(config_path(ds, name))
    overridden = load_config_file(config_path(ds, name), opts)
    for key in opts[0::2]:
        in_yaml, passed = value(cfg, key), value(overridden, key)
        # A key the YAML sets must already say what the script passes; KD.BETA / GAMMA are unused.
        assert in_yaml == passed or in_yaml == value(DEFAULTS, key), (key, in_yaml, passed)


# ------------------------------------------------------------------------------------------------
# main.py starts from an ImageNet FocalNet file (random weights, real shapes), as a user runs it
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp('videos')
    train, val, _ = make_dataset(root, num_classes=2, videos_per_class=2, num_frames=8, size=(40, 32),
                                 val_per_class=1)
    return str(root), train, val


@pytest.fixture(scope='module')
def focalnet_tiny_files(tmp_path_factory):
    """A random focalnet_tiny_srf in the official release's layout and in timm's (safetensors)."""
    from safetensors.torch import save_file

    from models.pretrained import timm_to_official
    tmp = tmp_path_factory.mktemp('pretrained')
    torch.manual_seed(0)
    sd = timm.create_model('focalnet_tiny_srf', pretrained=False).state_dict()
    official = str(tmp / 'focalnet_tiny_srf.pth')
    torch.save({'model': timm_to_official(sd)}, official)
    hub = str(tmp / 'model.safetensors')
    save_file(sd, hub)
    return {'official': official, 'timm': hub}


def small_run(videos, cfg, output, *opts):
    """main.py on the config at reduced input (32 x 32, 2 frames), 1 epoch of 2 steps."""
    root, train, val = videos
    args = ['main.py', '--cfg', cfg, '--output', str(output), '--opts', 'DATA.ROOT', root,
            'DATA.TRAIN_FILE', train, 'DATA.VAL_FILE', val, 'DATA.INPUT_SIZE', '32', 'DATA.NUM_FRAMES', '2',
            'DATA.BATCH_SIZE', '2', 'DATA.NUM_WORKERS', '0', 'DATA.DECODER', 'pyav', 'TRAIN.EPOCHS', '1',
            'TRAIN.WARMUP_EPOCHS', '0', 'TEST.NUM_CLIP', '1', 'TEST.NUM_CROP', '1', 'AMP_OPT_LEVEL', 'O0',
            *opts]
    return run(args, check=False)


@pytest.mark.slow
@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_vfl_net_starts_from_focalnet_tiny(videos, focalnet_tiny_files, tmp_path, layout):
    path = focalnet_tiny_files[layout]
    code, log = small_run(videos, 'configs/ucf101/VFL-Net.yaml', tmp_path / 'out', 'TRAIN.PRETRAINED_PATH', path)
    assert code == 0, log[-4000:]
    assert re.search(rf'{re.escape(path)}: {layout} layout, loaded \d+ tensors', log)
    assert ('dropped, the file is deeper than the model (TRAIN.PRETRAINED_DEPTH truncate): '
            'layers.0.blocks.1, layers.1.blocks.1, layers.2.blocks.2-5, layers.3.blocks.1') in log
    assert re.search(r'Train: \[0/1\]', log)
    if layout == 'official':  # resuming needs only the run's own checkpoint, not the ImageNet file
        moved = path + '.away'
        os.rename(path, moved)
        try:
            code, log = small_run(videos, 'configs/ucf101/VFL-Net.yaml', tmp_path / 'out',
                                  'TRAIN.PRETRAINED_PATH', path)
        finally:
            os.rename(moved, path)
        assert code == 0, log[-4000:]
        assert 'TRAIN.PRETRAINED_PATH is not loaded: the resumed checkpoint has the weights' in log
        assert os.path.isfile(os.path.join(run_dir(tmp_path / 'out'), 'ckpt_epoch_0.pth'))


@pytest.mark.slow
def test_video_focalnet_tiny_starts_from_focalnet_tiny_exactly(videos, focalnet_tiny_files, tmp_path):
    path = focalnet_tiny_files['official']
    code, log = small_run(videos, 'configs/hmdb51/video-focalnet_tiny.yaml', tmp_path / 'out',
                          'TRAIN.PRETRAINED_PATH', path)
    assert code == 0, log[-4000:]
    assert re.search(rf'{re.escape(path)}: official layout, loaded \d+ tensors', log)
    assert 'dropped' not in log and re.search(r'Train: \[0/1\]', log)


@pytest.mark.slow
def test_a_missing_imagenet_file_stops_training_at_start_up(videos, tmp_path):
    path = str(tmp_path / 'pretrained' / 'focalnet_tiny_srf.pth')
    code, log = small_run(videos, 'configs/ucf50/VFL-Net.yaml', tmp_path / 'out', 'TRAIN.PRETRAINED_PATH', path)
    assert code != 0
    assert (f'{path}: ImageNet FocalNet weights for videofocalnet_nano (VFL-Net) not found. '
            'docs/pretrained.md') in log
    assert "TRAIN.PRETRAINED_PATH ''" in log and 'Train: [' not in log
