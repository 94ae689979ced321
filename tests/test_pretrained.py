"""Loading FocalNet weights (official, timm, video layouts) into Video-FocalNet; tools.convert."""
import logging
import os
import subprocess
import sys

import pytest
import timm
import torch
import yacs.config
from timm.models.focalnet import FocalNet, checkpoint_filter_fn

import models  # noqa: F401  (registers the zoo with timm)
from config import load_config_file
from models import VideoFocalNet, build_model
from tools.convert import main as convert_main
from models.pretrained import convert_to_video, detect_layout, is_temporal, load_pretrained, timm_to_official
from utils.checkpoint import CheckpointError, read_state_dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = dict(embed_dim=16, depths=[1, 1, 2, 1])
FRAMES, SIZE = 4, 32


def assert_new_head(state):
    """The head the published main.py gave a model started from ImageNet weights: weight and bias
    both trunc_normal_(std=.02) (not the zero bias of the model's own init)."""
    weight, bias = state['head.weight'], state['head.bias']
    assert 0.018 < weight.std().item() < 0.022 and weight.abs().max() < 2
    assert 0.012 < bias.std().item() < 0.028 and bias.abs().max() < 2
    assert (bias != 0).all()


def perturbed(module, seed):
    """Every tensor distinct (LayerNorms are not all ones), so a wrong mapping cannot hide."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return module


def small_timm(seed=0, **kwargs):
    args = dict(SMALL, num_classes=10, drop_path_rate=0.)
    args.update(kwargs)
    return perturbed(FocalNet(**args), seed).eval()


def small_video(**kwargs):
    args = dict(SMALL, num_classes=5, num_frames=FRAMES, drop_path_rate=0.)
    args.update(kwargs)
    return VideoFocalNet(**args).eval()


def neutral_temporal(model):
    """Temporal modulator exactly 1: the video model then works frame by frame like FocalNet."""
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, 'h_temporal'):
                m.h_temporal.weight.zero_()
                m.h_temporal.bias.fill_(1.)


def save(obj, path):
    torch.save(obj, path)
    return str(path)


def spatial_keys(state_dict):
    return [k for k in state_dict if not is_temporal(k) and not k.startswith('head.')]


# ------------------------------------------------------------------------------------------------
# The zoo member: timm focalnet_tiny_srf and the official layout into videofocalnet_tiny
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny_timm():
    torch.manual_seed(0)
    return perturbed(timm.create_model('focalnet_tiny_srf', pretrained=False), 1)


@pytest.fixture(scope='module')
def tiny_video():
    return timm.create_model('videofocalnet_tiny', num_classes=101)


def test_timm_to_official_is_undone_by_timms_own_filter(tiny_timm):
    """timm's checkpoint_filter_fn maps official -> timm; ours must be its exact inverse."""
    sd = tiny_timm.state_dict()
    official = timm_to_official(sd)
    assert detect_layout(sd) == 'timm' and detect_layout(official) == 'official'
    back = checkpoint_filter_fn(official, tiny_timm)
    assert back.keys() == sd.keys()
    for key in sd:
        assert torch.equal(back[key], sd[key]), key


@pytest.mark.parametrize('layout', ['timm', 'official'])
def test_focalnet_tiny_loads_into_videofocalnet_tiny(tiny_timm, tiny_video, tmp_path, layout):
    sd = tiny_timm.state_dict()
    official = timm_to_official(sd)
    path = save(sd if layout == 'timm' else {'model': official}, tmp_path / 'w.pth')
    before = {k: v.clone() for k, v in tiny_video.state_dict().items()}

    conv = load_pretrained(tiny_video, path)

    after = tiny_video.state_dict()
    assert conv.layout == layout
    assert sorted(spatial_keys(after)) == sorted(k for k in official if not k.startswith('head.'))
    for key in spatial_keys(after):
        assert torch.equal(after[key], official[key]), key
    temporal = [k for k in after if is_temporal(k)]
    assert len(temporal) == 12 * 6  # f_temporal (w, b), h_temporal (w, b), 2 temporal levels
    for key in temporal:
        assert torch.equal(after[key], before[key]), key
    assert set(conv.initialised) == set(temporal) | {'head.weight', 'head.bias'}
    assert after['head.weight'].shape == (101, 768)
    assert_new_head(after)


# ------------------------------------------------------------------------------------------------
# VFL-Net (nano) from focalnet_tiny_srf: TRAIN.PRETRAINED_DEPTH truncate, as the published code
# ------------------------------------------------------------------------------------------------

TINY_EXTRA_BLOCKS = 'layers.0.blocks.1, layers.1.blocks.1, layers.2.blocks.2-5, layers.3.blocks.1'


@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_nano_starts_from_focalnet_tiny_by_truncation(tiny_timm, tmp_path, caplog, layout):
    sd = tiny_timm.state_dict()
    official = timm_to_official(sd)
    path = save({'model': official} if layout == 'official' else sd, tmp_path / 'focalnet_tiny_srf.pth')
    nano = timm.create_model('videofocalnet_nano', num_classes=101)
    before = {k: v.clone() for k, v in nano.state_dict().items()}
    with caplog.at_level(logging.INFO, logger='models.pretrained'):
        conv = load_pretrained(nano, path, depth='truncate')

    after = nano.state_dict()
    assert conv.layout == layout and conv.dropped == TINY_EXTRA_BLOCKS.split(', ')
    assert len(spatial_keys(after)) == len(conv.loaded) > 0
    for key in spatial_keys(after):  # every spatial tensor of nano is the file's same-named one
        assert torch.equal(after[key], official[key]), key
    for key in after:
        if is_temporal(key):
            assert torch.equal(after[key], before[key]), key
    assert after['head.weight'].shape == (101, 768)
    assert_new_head(after)
    text = caplog.text
    assert f'{path}: {layout} layout, loaded {len(conv.loaded)} tensors' in text
    assert f'dropped, the file is deeper than the model (TRAIN.PRETRAINED_DEPTH truncate): {TINY_EXTRA_BLOCKS}' in text


def test_a_deeper_file_is_refused_in_exact_mode_with_the_hint(tmp_path):
    path = save({'model': timm_to_official(small_timm(depths=[2, 2, 3, 1]).state_dict())}, tmp_path / 'deep.pth')
    model = small_video()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_pretrained(model, path)
    msg = str(err.value)
    assert 'not in the model' in msg and 'layers.2.blocks.2.*' in msg and 'layers.0.blocks.1.*' in msg
    assert "TRAIN.PRETRAINED_DEPTH 'truncate'" in msg
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    conv = load_pretrained(model, path, depth='truncate')
    assert conv.dropped == ['layers.0.blocks.1', 'layers.1.blocks.1', 'layers.2.blocks.2']


@pytest.mark.parametrize('depths, section, key', [
    ([1, 1, 1, 1], 'missing in the checkpoint', 'layers.2.blocks.1.*'),  # shallower than the model
    ([2, 2, 2], 'missing in the checkpoint', 'layers.3.blocks.0.*'),  # a stage short
])
def test_truncation_never_fills_in_missing_blocks(tmp_path, depths, section, key):
    path = save({'model': timm_to_official(small_timm(depths=depths).state_dict())}, tmp_path / 'shallow.pth')
    with pytest.raises(CheckpointError) as err:
        load_pretrained(small_video(), path, depth='truncate')
    line = next(line for line in str(err.value).splitlines() if section in line)
    assert key in line


def test_truncation_keeps_shapes_strict(tmp_path):
    path = save(small_timm(embed_dim=24, depths=[2, 2, 6, 2]).state_dict(), tmp_path / 'wide.pth')
    with pytest.raises(CheckpointError, match=r'patch_embed.proj.weight: checkpoint \(24, 3, 4, 4\) vs model'):
        load_pretrained(small_video(), path, depth='truncate')


def test_a_missing_pretrained_file_says_what_to_do(tmp_path):
    path = str(tmp_path / 'pretrained' / 'focalnet_tiny_srf.pth')
    with pytest.raises(CheckpointError) as err:
        load_pretrained(small_video(), path, depth='truncate', model_name='videofocalnet_nano (VFL-Net)')
    msg = str(err.value)
    assert msg.startswith(f'{path}: ImageNet FocalNet weights for videofocalnet_nano (VFL-Net) not found')
    assert 'docs/pretrained.md' in msg and "TRAIN.PRETRAINED_PATH ''" in msg


# ------------------------------------------------------------------------------------------------
# Same arithmetic as timm's 2-D FocalNet on identical frames
# ------------------------------------------------------------------------------------------------

VARIANTS = {
    'srf': ({}, {}),
    'postnorm-layerscale-overlap': (
        dict(use_post_norm=True, use_post_norm_in_modulation=True, normalize_modulator=True,
             layerscale_value=1e-4, use_overlap_down=True),
        dict(use_postln=True, use_postln_in_modulation=True, normalize_modulator=True,
             use_layerscale=True, use_conv_embed=True)),
}


@pytest.mark.parametrize('variant, layout', [('srf', 'timm'), ('srf', 'official'),
                                             ('postnorm-layerscale-overlap', 'timm')])
def test_pooled_features_equal_timm_focalnet_on_identical_frames(tmp_path, variant, layout):
    timm_kwargs, our_kwargs = VARIANTS[variant]
    ref_model = small_timm(**timm_kwargs)
    sd = ref_model.state_dict()
    path = save(sd if layout == 'timm' else {'model': timm_to_official(sd)}, tmp_path / 'w.pth')
    model = small_video(**our_kwargs)
    load_pretrained(model, path)
    frame = torch.randn(2, 3, SIZE, SIZE)
    clip = frame.unsqueeze(1).expand(-1, FRAMES, -1, -1, -1)
    with torch.no_grad():
        expected = ref_model.forward_features(frame).mean((2, 3))
        with_temporal = model.forward_features(clip)
        neutral_temporal(model)
        ours = model.forward_features(clip)
    assert (with_temporal - expected).abs().max() > 1e-3  # the temporal branch is really in play
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)


def test_tubelet_stem_is_inflated_and_matches_the_2d_stem(tmp_path):
    ref_model = small_timm()
    sd = ref_model.state_dict()
    model = small_video(tubelet_size=2)
    conv = load_pretrained(model, save(sd, tmp_path / 'w.pth'))
    assert conv.inflated == ['patch_embed.proj.weight (x2)']
    w3d = model.patch_embed.proj.weight
    assert w3d.shape == (16, 3, 2, 4, 4)
    for t in range(2):
        torch.testing.assert_close(w3d[:, :, t], sd['stem.proj.weight'] / 2, rtol=0, atol=0)

    frame = torch.randn(2, 3, SIZE, SIZE)
    clip = frame.unsqueeze(1).expand(-1, FRAMES, -1, -1, -1)
    with torch.no_grad():
        tokens = model.patch_embed(clip.transpose(1, 2))  # (B*T', H', W', C), row b*T' + t, T' = 2
        stem2d = ref_model.stem(frame).permute(0, 2, 3, 1)
        torch.testing.assert_close(tokens, stem2d.repeat_interleave(FRAMES // 2, 0), atol=1e-5, rtol=0)
        neutral_temporal(model)
        torch.testing.assert_close(model.forward_features(clip),
                                   ref_model.forward_features(frame).mean((2, 3)), atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------------------------
# What does not fit is an error naming the keys; nothing is loaded partially
# ------------------------------------------------------------------------------------------------

def test_checkpoint_of_another_width_fails_naming_keys(tmp_path):
    path = save(small_timm(embed_dim=24).state_dict(), tmp_path / 'wide.pth')
    model = small_video()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_pretrained(model, path)
    msg = str(err.value)
    assert path in msg
    assert 'patch_embed.proj.weight: checkpoint (24, 3, 4, 4) vs model (16, 3, 4, 4)' in msg
    assert 'checkpoint embed_dim 24' in msg and 'model embed_dim 16' in msg
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize('depths, section, key', [
    ([1, 1, 3, 1], 'not in the model', 'layers.2.blocks.2.*'),
    ([1, 1, 1, 1], 'missing in the checkpoint', 'layers.2.blocks.1.*'),
])
def test_checkpoint_of_another_depth_fails_naming_keys(tmp_path, depths, section, key):
    path = save({'model': timm_to_official(small_timm(depths=depths).state_dict())}, tmp_path / 'd.pth')
    with pytest.raises(CheckpointError) as err:
        load_pretrained(small_video(), path)
    msg = str(err.value)
    assert f'depths {depths}' in msg and 'depths [1, 1, 2, 1]' in msg
    line = next(line for line in msg.splitlines() if section in line)
    assert key in line


def test_unexpected_and_missing_spatial_keys_are_errors(tmp_path):
    official = timm_to_official(small_timm().state_dict())
    extra = dict(official, **{'layers.0.blocks.0.modulation.extra': torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r'not in the model \(1\): layers\.0\.blocks\.0\.\* '):
        load_pretrained(small_video(), save(extra, tmp_path / 'extra.pth'))
    lacking = {k: v for k, v in official.items() if k != 'norm.weight'}
    with pytest.raises(CheckpointError, match=r'missing in the checkpoint \(1\): norm\.weight'):
        load_pretrained(small_video(), save(lacking, tmp_path / 'lacking.pth'))


def test_layerscale_and_norm_placement_must_match(tmp_path):
    ls = small_timm(layerscale_value=1e-4).state_dict()
    with pytest.raises(CheckpointError, match='USE_LAYERSCALE') as err:
        load_pretrained(small_video(), save(ls, tmp_path / 'ls.pth'))
    assert 'not in the model (10): layers.0.blocks.0.* (2 keys)' in str(err.value)  # gamma_1, gamma_2
    post = small_timm(use_post_norm=True).state_dict()
    with pytest.raises(CheckpointError, match='post.pth: .*USE_POSTLN to True'):
        load_pretrained(small_video(), save(post, tmp_path / 'post.pth'))


# ------------------------------------------------------------------------------------------------
# Video checkpoints (ours, published Video-FocalNet / DVFL-Net)
# ------------------------------------------------------------------------------------------------

def training_checkpoint(model):
    """The shape of main.py's checkpoints: the config is a YAML string, not an object."""
    return {'model': model.state_dict(), 'optimizer': {'state': {}, 'param_groups': []},
            'epoch': 3, 'max_accuracy': 12.5, 'config': 'MODEL:\n  TYPE: videofocalnet_nano\n'}


def test_video_checkpoint_loads_everything(tmp_path):
    source = perturbed(small_video(), 3)
    path = save(training_checkpoint(source), tmp_path / 'ckpt_epoch_3.pth')
    model = small_video()
    conv = load_pretrained(model, path, require_head=True)
    assert conv.layout == 'video' and conv.initialised == {} and conv.inflated == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_video_checkpoint_with_other_classes_gets_a_new_head(tmp_path, caplog):
    source = perturbed(small_video(num_classes=7), 3)
    path = save({'model': source.state_dict()}, tmp_path / 'k7.pth')
    model = small_video(num_classes=5)
    with caplog.at_level(logging.INFO, logger='models.pretrained'):
        conv = load_pretrained(model, path)
    assert set(conv.initialised) == {'head.weight', 'head.bias'}
    assert 'the checkpoint head has 7 classes' in caplog.text
    assert 're-initialised for 5 classes' in caplog.text
    assert 'weight and bias trunc normal std 0.02' in caplog.text
    assert (model.head.bias != 0).all() and model.head.bias.abs().max() < 2
    assert torch.equal(model.layers[1].blocks[0].modulation.h_temporal.weight,
                       source.layers[1].blocks[0].modulation.h_temporal.weight)
    with pytest.raises(CheckpointError, match='head must come from the checkpoint'):
        load_pretrained(small_video(num_classes=5), path, require_head=True)


def test_image_checkpoint_logs_what_stayed_at_init(tmp_path):
    messages = []

    class Capture(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger('test_pretrained.capture')
    logger.addHandler(Capture())
    logger.setLevel(logging.INFO)
    path = save(small_timm().state_dict(), tmp_path / 'w.pth')
    load_pretrained(small_video(), path, logger=logger)
    text = '\n'.join(messages)
    assert f'{path}: timm layout, loaded' in text
    assert 'temporal branch, absent from an image checkpoint): 30 tensors' in text  # 5 blocks x 6
    assert 'the checkpoint head has 10 classes, and it is an image checkpoint' in text


def test_headless_model_ignores_the_checkpoint_head(tmp_path):
    path = save(small_timm().state_dict(), tmp_path / 'w.pth')
    conv = load_pretrained(small_video(num_classes=0), path)
    assert set(conv.ignored) == {'head.weight', 'head.bias'}


# ------------------------------------------------------------------------------------------------
# Reading files
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('container', ['bare', 'model', 'state_dict', 'ddp', 'training'])
def test_read_state_dict_containers(tmp_path, container):
    model = small_video()
    sd = model.state_dict()
    obj = {'bare': sd, 'model': {'model': sd}, 'state_dict': {'state_dict': sd},
           'ddp': {'model': {f'module.{k}': v for k, v in sd.items()}},
           'training': training_checkpoint(model)}[container]
    read = read_state_dict(save(obj, tmp_path / 'c.pth'))
    assert read.keys() == sd.keys()
    assert all(torch.equal(read[k], sd[k]) for k in sd)


def test_read_state_dict_errors_name_the_file(tmp_path):
    good = save({'model': small_video().state_dict()}, tmp_path / 'good.pth')
    truncated = tmp_path / 'truncated.pth'
    with open(good, 'rb') as f:
        truncated.write_bytes(f.read()[:2000])
    with pytest.raises(CheckpointError, match='truncated.pth: cannot read'):
        read_state_dict(str(truncated))
    with pytest.raises(CheckpointError, match='not found: .*absent.pth'):
        read_state_dict(str(tmp_path / 'absent.pth'))
    no_weights = save({'epoch': 3, 'config': 'x'}, tmp_path / 'no_weights.pth')
    with pytest.raises(CheckpointError, match=r"no_weights.pth: no model weights found.*'config', 'epoch'"):
        read_state_dict(no_weights)
    with pytest.raises(CheckpointError, match='fc.pth: not a FocalNet checkpoint'):
        load_pretrained(small_video(), save({'fc.weight': torch.zeros(2, 2)}, tmp_path / 'fc.pth'))


def test_safetensors_from_the_hub_load(tmp_path):
    """timm's hub weights come as model.safetensors: read without pickle, same mapping."""
    from safetensors.torch import save_file
    sd = small_timm().state_dict()
    path = str(tmp_path / 'model.safetensors')
    save_file(sd, path)
    model = small_video()
    assert load_pretrained(model, path).layout == 'timm'
    official = timm_to_official(sd)
    for key in spatial_keys(model.state_dict()):
        assert torch.equal(model.state_dict()[key], official[key]), key
    with open(path, 'rb') as f:
        (tmp_path / 'cut.safetensors').write_bytes(f.read()[:1000])
    with pytest.raises(CheckpointError, match='cut.safetensors: cannot read'):
        read_state_dict(str(tmp_path / 'cut.safetensors'))


def test_pickled_objects_are_refused_unless_trusted(tmp_path):
    """Swin-style checkpoints store the yacs config as an object: it needs code to unpickle."""
    sd = small_video().state_dict()
    path = save({'model': sd, 'config': yacs.config.CfgNode({'A': 1})}, tmp_path / 'swin_style.pth')
    with pytest.raises(CheckpointError, match=r'swin_style.pth: refused.*yacs\.config\.CfgNode.*--trust-source'):
        read_state_dict(path)
    assert read_state_dict(path, trusted=True).keys() == sd.keys()


def test_convert_to_video_leaves_the_model_alone():
    model = small_video()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    conv = convert_to_video(small_timm().state_dict(), model)
    assert conv.state_dict.keys() == before.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


# ------------------------------------------------------------------------------------------------
# python -m tools.convert
# ------------------------------------------------------------------------------------------------

def write_config(tmp_path, embed_dim=16):
    cfg = tmp_path / 'small.yaml'
    cfg.write_text(f'DATA:\n  NUM_FRAMES: {FRAMES}\n  INPUT_SIZE: {SIZE}\n'
                   f'MODEL:\n  TYPE: videofocalnet_custom\n  NUM_CLASSES: 5\n'
                   f'  FOCAL:\n    EMBED_DIM: {embed_dim}\n    DEPTHS: [1, 1, 2, 1]\n')
    return str(cfg)


def run_convert(*args):
    return subprocess.run([sys.executable, '-m', 'tools.convert', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_convert_round_trip(tmp_path):
    cfg = write_config(tmp_path)
    sd = small_timm().state_dict()
    src, dst = save(sd, tmp_path / 'focalnet_timm.pth'), str(tmp_path / 'video.pth')
    proc = run_convert(src, dst, '--cfg', cfg)
    assert proc.returncode == 0, proc.stderr
    assert 'timm layout' in proc.stdout and f'wrote {dst}' in proc.stdout

    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert list(out) == ['model']
    model = build_model(load_config_file(cfg))
    model.load_state_dict(out['model'], strict=True)
    official = timm_to_official(sd)
    for key in spatial_keys(out['model']):
        assert torch.equal(out['model'][key], official[key]), key

    again = build_model(load_config_file(cfg))
    conv = load_pretrained(again, dst, require_head=True)
    assert conv.layout == 'video' and conv.initialised == {}
    for key, value in again.state_dict().items():
        assert torch.equal(value, out['model'][key]), key


def test_convert_fails_on_a_mismatch_and_writes_nothing(tmp_path):
    """In-process (a second interpreter start costs seconds): the error names the keys."""
    src = save(small_timm().state_dict(), tmp_path / 'focalnet_timm.pth')
    dst = tmp_path / 'video.pth'
    with pytest.raises(CheckpointError) as error:
        convert_main([src, str(dst), '--cfg', write_config(tmp_path, embed_dim=32)])
    assert 'patch_embed.proj.weight: checkpoint (16, 3, 4, 4) vs model (32, 3, 4, 4)' in str(error.value)
    assert not dst.exists() and not any(p.name.endswith('.tmp') for p in tmp_path.iterdir())


def test_convert_teacher_from_a_swin_style_video_checkpoint(tmp_path):
    """Video-FocalNet's own checkpoints pickle the yacs config: --trust-source, head required."""
    cfg = tmp_path / 'teacher.yaml'
    cfg.write_text(f'DATA:\n  NUM_FRAMES: {FRAMES}\n  INPUT_SIZE: {SIZE}\nMODEL:\n  NUM_CLASSES: 5\n'
                   'TEACHER_MODEL:\n  TYPE: videofocalnet_custom\n'
                   '  FOCAL:\n    EMBED_DIM: 16\n    DEPTHS: [1, 1, 2, 1]\n')
    teacher = perturbed(small_video(), 4)
    src = save({'model': teacher.state_dict(), 'config': yacs.config.CfgNode({'TAG': 'x'})},
               tmp_path / 'video-focalnet_base_ucf101.pth')
    dst = str(tmp_path / 'teacher.pth')
    with pytest.raises(CheckpointError, match='refused.*--trust-source'):
        convert_main([src, dst, '--cfg', str(cfg), '--teacher'])
    convert_main([src, dst, '--cfg', str(cfg), '--teacher', '--trust-source'])
    out = torch.load(dst, map_location='cpu', weights_only=True)['model']
    for key, value in teacher.state_dict().items():
        assert torch.equal(out[key], value), key

    image = save(small_timm().state_dict(), tmp_path / 'focalnet_timm.pth')
    with pytest.raises(CheckpointError, match='head must come from the checkpoint'):
        convert_main([image, dst, '--cfg', str(cfg), '--teacher'])
