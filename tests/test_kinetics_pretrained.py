"""Published Video-FocalNets checkpoints (`{'model': state_dict}`, the key layout of the published
code, written out below from its module tree): every zoo shape a config builds takes one strictly
(full size, on the meta device), `main.py --eval` evaluates one, and the `_k400` configs start
training from one (head re-initialised for the new classes, VFL-Net truncated as from FocalNet-T)."""
import glob
import os

import pytest
import torch
import yaml

from config import load_config_file
from models import ZOO, build_model
from models.pretrained import convert_to_video
from tests.helpers.runs import ROOT, TINY_MODEL, final_record, run, run_dir, write_config
from tests.helpers.videos import make_dataset
from utils.checkpoint import check_state_fits
from utils.report import read_per_class

CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '*', '*.yaml'))
                 if '/_base_/' not in p and '/demo/' not in p)
K400_CONFIGS = [p for p in CONFIGS if p.endswith('_k400.yaml')]


def published_layout(embed_dim, depths, num_classes, focal_level=2, focal_window=3, mlp_ratio=4.0):
    """{key: shape} of the published VideoFocalNet (classification/videofocalnet.py of
    TalalWasim/Video-FocalNets): 2-D stem, per block norm1/2, modulation f/h/proj, spatial depthwise
    and temporal dense focal convolutions (no bias), f_temporal, h_temporal (Conv1d), mlp; a
    downsampling PatchEmbed at the end of stages 0-2; final norm and head."""
    shapes = {'patch_embed.proj.weight': (embed_dim, 3, 4, 4), 'patch_embed.proj.bias': (embed_dim,),
              'patch_embed.norm.weight': (embed_dim,), 'patch_embed.norm.bias': (embed_dim,)}
    for i, depth in enumerate(depths):
        d, gates = embed_dim * 2 ** i, focal_level + 1
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            m = p + 'modulation.'
            shapes.update({p + 'norm1.weight': (d,), p + 'norm1.bias': (d,),
                           m + 'f.weight': (2 * d + gates, d), m + 'f.bias': (2 * d + gates,),
                           m + 'h.weight': (d, d, 1, 1), m + 'h.bias': (d,),
                           m + 'proj.weight': (d, d), m + 'proj.bias': (d,),
                           m + 'f_temporal.weight': (d + gates, d), m + 'f_temporal.bias': (d + gates,),
                           m + 'h_temporal.weight': (d, d, 1), m + 'h_temporal.bias': (d,)})
            for k in range(focal_level):
                kernel = 2 * k + focal_window
                shapes[m + f'focal_layers.{k}.0.weight'] = (d, 1, kernel, kernel)
                shapes[m + f'focal_layers_temporal.{k}.0.weight'] = (d, d, kernel)
            hidden = int(d * mlp_ratio)
            shapes.update({p + 'norm2.weight': (d,), p + 'norm2.bias': (d,),
                           p + 'mlp.fc1.weight': (hidden, d), p + 'mlp.fc1.bias': (hidden,),
                           p + 'mlp.fc2.weight': (d, hidden), p + 'mlp.fc2.bias': (d,)})
        if i < len(depths) - 1:
            q = f'layers.{i}.downsample.'
            shapes.update({q + 'proj.weight': (2 * d, d, 2, 2), q + 'proj.bias': (2 * d,),
                           q + 'norm.weight': (2 * d,), q + 'norm.bias': (2 * d,)})
    features = embed_dim * 2 ** (len(depths) - 1)
    shapes.update({'norm.weight': (features,), 'norm.bias': (features,),
                   'head.weight': (num_classes, features), 'head.bias': (num_classes,)})
    return shapes


def published_checkpoint(embed_dim, depths, num_classes, device='cpu', seed=0):
    """{'model': state_dict} in the published layout; small random values (finite logits)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in published_layout(embed_dim, depths, num_classes).items():
        if device == 'meta':
            state[key] = torch.empty(shape, device='meta')
        else:
            state[key] = torch.randn(shape, generator=g) * 0.02 + (1.0 if key.endswith('norm.weight') or
                                                                   '.norm1.' in key or '.norm2.' in key else 0.0)
    return {'model': state}


def zoo_shapes():
    """(TYPE, classes) of every zoo model a shipped config builds (MODEL, and the KD teacher)."""
    shapes = set()
    for path in CONFIGS:
        cfg = load_config_file(path)
        for node in [cfg.MODEL] + ([cfg.TEACHER_MODEL] if path.endswith(('_kd.yaml', '_kd_k400.yaml')) else []):
            if ZOO[node.TYPE]['depths']:
                shapes.add((node.TYPE, cfg.MODEL.NUM_CLASSES))
    return sorted(shapes)


def test_the_zoo_shapes_cover_the_published_checkpoints():
    shapes = zoo_shapes()
    for published in [('videofocalnet_tiny', 400), ('videofocalnet_small', 400), ('videofocalnet_base', 400),
                      ('videofocalnet_base', 600), ('videofocalnet_base', 174), ('videofocalnet_base', 48),
                      ('videofocalnet_base', 200)]:
        assert published in shapes


@pytest.mark.parametrize('model_type, classes', zoo_shapes(), ids=lambda x: str(x))
def test_a_published_checkpoint_of_each_zoo_shape_loads_strictly(model_type, classes):
    """Full size on the meta device: the same keys and shapes, strict load_state_dict."""
    cfg = load_config_file(os.path.join(ROOT, 'configs/ucf101/video-focalnet_tiny.yaml'),
                           ['MODEL.TYPE', model_type, 'MODEL.NUM_CLASSES', str(classes)])
    with torch.device('meta'):
        model = build_model(cfg)
    zoo = ZOO[model_type]
    state = published_checkpoint(zoo['embed_dim'], zoo['depths'], classes, device='meta')['model']
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in state.items()}
    check_state_fits(model, state, 'published.pth')
    model.load_state_dict(state, strict=True, assign=True)


@pytest.mark.parametrize('path', K400_CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_k400_configs_start_from_the_published_kinetics_checkpoint(path):
    """The file each `_k400` config names is the published Kinetics-400 model of its shape (T for
    VFL-Net, B for the teacher); it maps onto the model with a new head (and truncation for VFL-Net)."""
    cfg = load_config_file(path)
    name = os.path.basename(cfg.TRAIN.PRETRAINED_PATH)
    source = {'video-focalnet_tiny_k400.pth': 'videofocalnet_tiny',
              'video-focalnet_base_k400.pth': 'videofocalnet_base'}[name]
    assert cfg.TRAIN.PRETRAINED_DEPTH == ('truncate' if cfg.MODEL.TYPE == 'videofocalnet_nano' else 'exact')
    zoo = ZOO[source]
    state = published_checkpoint(zoo['embed_dim'], zoo['depths'], 400, device='meta')['model']
    with torch.device('meta'):
        model = build_model(cfg)
    conv = convert_to_video(state, model, source=name, depth=cfg.TRAIN.PRETRAINED_DEPTH)
    assert conv.layout == 'video' and set(conv.initialised) == {'head.weight', 'head.bias'}
    assert 'the checkpoint head has 400 classes' in conv.initialised['head.weight']
    assert len(conv.loaded) == len(model.state_dict()) - 2  # everything else, temporal branch included
    if cfg.MODEL.TYPE == 'videofocalnet_nano':
        assert conv.dropped == ['layers.0.blocks.1', 'layers.1.blocks.1', 'layers.2.blocks.2-5', 'layers.3.blocks.1']
    base = load_config_file(path.replace('_k400.yaml', '.yaml'))
    assert (cfg.MODEL.TYPE, cfg.MODEL.NUM_CLASSES, cfg.AUG, cfg.TRAIN.EPOCHS) == \
        (base.MODEL.TYPE, base.MODEL.NUM_CLASSES, base.AUG, base.TRAIN.EPOCHS)  # only the start differs
    script = open(os.path.join(ROOT, 'scripts', cfg.DATA.DATASET, os.path.basename(path)[:-5] + '.sh')).read()
    assert f'--cfg configs/{cfg.DATA.DATASET}/{os.path.basename(path)}' in script


# ------------------------------------------------------------------------------------------------
# End to end, main.py in a subprocess on tiny data
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    return make_dataset(root, num_classes=3, videos_per_class=2, num_frames=8, size=(40, 32), val_per_class=1)


@pytest.mark.slow
def test_main_eval_takes_a_published_checkpoint_strictly(tiny_data, tmp_path):
    ckpt = str(tmp_path / 'video-focalnet_k5.pth')
    torch.save(published_checkpoint(8, [1, 1, 2, 1], 5), ckpt)
    labels = tmp_path / 'labels5.csv'  # a 5-class list for the 5-class head
    labels.write_text('id,name\n' + ''.join(f'{i},Class{i:02d}\n' for i in range(5)))
    train, val, _ = tiny_data
    cfg = write_config(tmp_path / 'tiny.yaml', train, val, str(labels), num_classes=5,
                       extra={'MODEL': {'FOCAL': {'DEPTHS': [1, 1, 2, 1]}}})
    _, log = run(['main.py', '--eval', '--cfg', cfg, '--resume', ckpt, '--output', str(tmp_path / 'eval'),
                  'TEST.NUM_CLIP', '1', 'TEST.NUM_CROP', '1'])
    assert f'loaded model weights from {ckpt}' in log
    record = final_record(tmp_path / 'eval' / 'eval_1x1')
    assert record['checkpoint'] == ckpt and record['test_num_videos'] == 3
    # the per-class report of the evaluation (utils/report.py)
    rows = read_per_class(str(tmp_path / 'eval' / 'eval_1x1' / 'per_class.csv'))
    assert [(r[1], r[2]) for r in rows] == [('Class00', 1), ('Class01', 1), ('Class02', 1), ('Class03', 0),
                                            ('Class04', 0)]
    assert sum(r[2] * r[3] for r in rows if r[2]) / 3 == pytest.approx(record['test_acc1'], abs=0.01)
    assert (tmp_path / 'eval' / 'eval_1x1' / 'confusion.png').stat().st_size > 0
    assert 'most confused (true -> predicted)' in log
    # one block too few in the model: refused, naming the block
    cfg = write_config(tmp_path / 'shallow.yaml', train, val, str(labels), num_classes=5)
    code, log = run(['main.py', '--eval', '--cfg', cfg, '--resume', ckpt, '--output', str(tmp_path / 'e2')],
                    check=False)
    assert code == 2 and 'layers.2.blocks.1' in log


@pytest.mark.slow
def test_a_k400_style_config_fine_tunes_from_a_published_checkpoint(tiny_data, tmp_path):
    """As VFL-Net_k400.yaml over VFL-Net.yaml: a deeper 5-class 'Kinetics' checkpoint, truncated,
    head re-initialised for the 3 classes, trains end to end."""
    ckpt = str(tmp_path / 'video-focalnet_tiny_k400.pth')
    torch.save(published_checkpoint(8, [1, 1, 2, 1], 5), ckpt)
    write_config(tmp_path / 'tiny.yaml', *tiny_data, num_classes=3, extra={'TRAIN': {'EPOCHS': 1}})
    k400 = tmp_path / 'tiny_k400.yaml'
    k400.write_text(yaml.safe_dump({'BASE': ['tiny.yaml'], 'MODEL': {'NAME': 'tiny_k400'},
                                    'TRAIN': {'PRETRAINED_PATH': ckpt, 'PRETRAINED_DEPTH': 'truncate'}}))
    _, log = run(['main.py', '--cfg', str(k400), '--output', str(tmp_path / 'out')])
    loaded = len(published_layout(8, TINY_MODEL['FOCAL']['DEPTHS'], 3)) - 2
    assert f'{ckpt}: video layout, loaded {loaded} tensors' in log
    assert 'dropped, the file is deeper than the model (TRAIN.PRETRAINED_DEPTH truncate): layers.2.blocks.1' in log
    assert 'classifier head re-initialised for 3 classes' in log and 'the checkpoint head has 5 classes' in log
    out = run_dir(tmp_path / 'out')
    assert '/tiny_k400/' in out and final_record(out)['test_num_videos'] == 3
    for name in ('per_class.csv', 'confusion.csv', 'confusion.png'):  # the end of training reports too
        assert os.path.getsize(os.path.join(out, name)) > 0, name
