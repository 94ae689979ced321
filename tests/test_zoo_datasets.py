"""The Video-FocalNets datasets beyond the paper (Kinetics-400/600, SSv2, Diving48, ActivityNet):
their configs state the published recipe (TalalWasim/Video-FocalNets, configs/), their class lists
are read by our label reader with the count of the head, and each launcher runs its config."""
import os
import re

import pytest

from config import load_config_file
from datasets.annotations import read_label_list
from tests.helpers.runs import ROOT

# config -> (MODEL.TYPE, drop path, classes, ImageNet FocalNet file, flip probability, published GPUs),
# as the published configs and scripts state them.
PUBLISHED = {
    'kinetics400/video-focalnet_tiny': ('videofocalnet_tiny', 0.2, 400, 'focalnet_tiny_srf', 0.5, 4),
    'kinetics400/video-focalnet_small': ('videofocalnet_small', 0.3, 400, 'focalnet_small_srf', 0.5, 8),
    'kinetics400/video-focalnet_base': ('videofocalnet_base', 0.5, 400, 'focalnet_base_srf', 0.5, 4),
    'kinetics600/video-focalnet_base': ('videofocalnet_base', 0.5, 600, 'focalnet_base_srf', 0.5, 4),
    'ssv2/video-focalnet_base': ('videofocalnet_base', 0.5, 174, 'focalnet_base_srf', 0.0, 16),
    'diving48/video-focalnet_base': ('videofocalnet_base', 0.5, 48, 'focalnet_base_srf', 0.5, 4),
    'activitynet/video-focalnet_base': ('videofocalnet_base', 0.5, 200, 'focalnet_base_srf', 0.5, 4),
}
# The recipe every published Video-FocalNets config states (dotted key -> value).
RECIPE = {
    'DATA.NUM_FRAMES': 8, 'DATA.BATCH_SIZE': 8, 'DATA.INPUT_SIZE': 224, 'AUG.FRAME_INTERVAL': 4,
    'AUG.COLOR_JITTER_PROB': 0.8, 'AUG.GRAY_SCALE': 0.2, 'AUG.MIXUP': 0.8, 'AUG.CUTMIX': 1.0,
    'AUG.MIXUP_PROB': 0.5, 'AUG.LABEL_SMOOTH': 0.1, 'TRAIN.BASE_LR': 0.1, 'TRAIN.WARMUP_LR': 0.001,
    'TRAIN.MIN_LR': 0.001, 'TRAIN.EPOCHS': 120, 'TRAIN.WARMUP_EPOCHS': 20, 'TRAIN.OPTIMIZER.NAME': 'sgd',
    'TRAIN.CLIP_GRAD': 5.0, 'TRAIN.LR_SCHEDULER.NAME': 'cosine', 'SAVE_FREQ': 10,
    'TEST.NUM_CLIP': 4, 'TEST.NUM_CROP': 3,
}
# A few (id, name) pairs of each published class list, to catch a reordered or shifted copy.
KNOWN = {
    'kinetics_400_labels.csv': [(0, 'abseiling'), (399, 'zumba')],
    'kinetics_600_labels.csv': [(0, 'abseiling'), (1, 'acting in play'), (599, 'zumba')],
    'ssv2_174_labels.csv': [(0, 'Approaching something with your camera'),
                            (173, 'Wiping something off of something')],
    'diving_48_labels.csv': [(0, 'Back_15som_05Twis_FREE'), (47, 'Reverse_Dive_NoTwis_TUCK')],
    'activitynet_200_labels.csv': [(0, 'Applying sunscreen'), (199, 'Playing badminton')],
}


def value(cfg, dotted):
    for part in dotted.split('.'):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize('name', PUBLISHED)
def test_config_states_the_published_recipe(name):
    cfg = load_config_file(os.path.join(ROOT, 'configs', f'{name}.yaml'))
    model_type, drop_path, classes, focalnet, flip, _ = PUBLISHED[name]
    dataset, model_name = name.split('/')
    for key, expected in RECIPE.items():
        assert value(cfg, key) == pytest.approx(expected), key
    assert (cfg.MODEL.TYPE, cfg.MODEL.NAME, cfg.MODEL.DROP_PATH_RATE) == (model_type, model_name, drop_path)
    assert cfg.MODEL.NUM_CLASSES == classes and cfg.DATA.DATASET == dataset
    assert cfg.AUG.FLIP_PROB == flip
    assert cfg.TRAIN.PRETRAINED_PATH == f'pretrained/{focalnet}.pth'
    assert cfg.DATA.ROOT == f'data/{dataset}' and cfg.DATA.TRAIN_FILE == f'data/{dataset}/train.csv'
    # The class list is the head's order: our reader takes it with exactly NUM_CLASSES ids.
    names = read_label_list(os.path.join(ROOT, cfg.DATA.LABEL_LIST), cfg.MODEL.NUM_CLASSES)
    assert len(set(names)) == classes
    for cid, expected in KNOWN[os.path.basename(cfg.DATA.LABEL_LIST)]:
        assert names[cid] == expected


def test_only_ssv2_turns_flips_off():
    flips = {name: load_config_file(os.path.join(ROOT, 'configs', f'{name}.yaml')).AUG.FLIP_PROB
             for name in PUBLISHED}
    assert {name for name, p in flips.items() if p == 0} == {'ssv2/video-focalnet_base'}


def test_label_files_are_plain_lf_with_a_header():
    for name in KNOWN:
        raw = open(os.path.join(ROOT, 'labels', name), 'rb').read()
        assert raw.startswith(b'id,name\n') and raw.endswith(b'\n') and b'\r' not in raw, name


@pytest.mark.parametrize('name', PUBLISHED)
def test_launcher_runs_its_config_on_the_published_gpu_count(name):
    script = os.path.join(ROOT, 'scripts', f'{name}.sh')
    assert os.access(script, os.X_OK), script
    text = open(script).read()
    assert f'--cfg configs/{name}.yaml' in text and 'torchrun' in text and 'main.py' in text
    assert re.search(r'GPUS=\$\{GPUS:-(\d+)\}', text).group(1) == str(PUBLISHED[name][5])
