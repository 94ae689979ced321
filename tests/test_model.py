"""The Video-FocalNet zoo against the golden fixture, the published parameter counts (docs/model.md),
its variants, and the straightforward formulation kept in benchmarks/reference_model.py."""
import os
import re
import shutil

import numpy as np
import pytest
import timm
import torch

import models
from models import VideoFocalNet, capture_modulators
from benchmarks.reference_model import ReferenceForward

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'reference_video_focalnet_small_cfg.pt')

# The published zoo (the architecture spec behind MODEL.TYPE), 101 classes, 8 frames.
PARAMS = {
    'videofocalnet_nano': 22_214_723,
    'videofocalnet_tiny': 49_323_341,
    'videofocalnet_small': 88_505_237,
    'videofocalnet_base': 157_082_741,
}


TINY = dict(num_classes=5, embed_dim=8, depths=[1, 1, 1, 1], num_frames=4,
            drop_path_rate=0.0)


def tiny(**kw):
    return VideoFocalNet(**dict(TINY, **kw))


def fixture_model(ref):
    """The fixture's model; the original constructor also took img_size, which it never read."""
    return VideoFocalNet(**{k: v for k, v in ref['config'].items() if k != 'img_size'})


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_golden_fixture_reproduces_official_logits(mode):
    """Eval mode, and train mode with drop path off (the fixture's config): the same logits."""
    ref = torch.load(FIXTURE, weights_only=True)
    assert ref['config']['drop_path_rate'] == 0.0
    model = fixture_model(ref)
    model.load_state_dict(ref['model'], strict=True)
    model.train(mode == 'train')
    with torch.no_grad():
        logits = model(ref['input'])
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=0)


def test_reference_formulation_reproduces_official_logits():
    ref = torch.load(FIXTURE, weights_only=True)
    model = fixture_model(ref)
    model.load_state_dict(ref['model'], strict=True)
    with torch.no_grad():
        logits = ReferenceForward(model.eval())(ref['input'])
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=0)


def perturbed(**kw):
    """A tiny model whose weights break the zero-bias / unit-norm symmetry of the initialisation."""
    torch.manual_seed(0)
    model = tiny(**kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize('name', sorted(PARAMS))
def test_zoo_parameter_counts_match_model_md(name):
    with torch.device('meta'):
        model = timm.create_model(name, num_classes=101, num_frames=8)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    table = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'model.md')).read()
    assert re.search(rf'^\| `{name}` \|.*\| {PARAMS[name]:,} \|$', table, re.M), f'docs/model.md: no {name} row'


def test_registry_defaults_are_overridden_by_kwargs():
    model = timm.create_model('videofocalnet_base', num_classes=7, embed_dim=8, depths=[1, 1, 1, 1],
                              num_frames=2)
    assert model.num_features == 64 and model.head.out_features == 7
    assert model(torch.randn(1, 2, 3, 32, 32)).shape == (1, 7)


def test_pretrained_download_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match='not downloaded'):
        timm.create_model('videofocalnet_nano', pretrained=True)


def test_wrong_frame_count_is_an_error_not_a_reshape():
    model = tiny()
    with pytest.raises(ValueError, match='T=4'):
        model(torch.randn(1, 8, 3, 32, 32))
    with pytest.raises(ValueError, match='clip batch'):
        model(torch.randn(4, 3, 32, 32))


def test_frames_of_a_clip_are_independent_of_other_clips():
    """Batching must not mix clips: each clip's logits equal those of the clip run alone."""
    model = tiny().eval()
    clips = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        together = model(clips)
        alone = torch.cat([model(c[None]) for c in clips])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_temporal_branch_mixes_frames_and_spatial_branch_does_not():
    """In the first block, frame 0's spatial modulator sees only frame 0; its temporal one sees all."""
    model = tiny().eval()
    clip = torch.randn(1, 4, 3, 32, 32)
    other = clip.clone()
    other[:, 3] = torch.randn(3, 32, 32)
    with torch.no_grad(), capture_modulators(model) as first:
        model(clip)
    with torch.no_grad(), capture_modulators(model) as second:
        model(other)
    mod = model.layers[0].blocks[0].modulation
    assert mod is model.layers[0].blocks[-1].modulation  # depth 1: the captured block is the first
    torch.testing.assert_close(first[0]['spatial'][0], second[0]['spatial'][0])
    change = (first[0]['temporal'][0] - second[0]['temporal'][0]).abs().max()
    assert change > 1e-6  # identical inputs would give bit-identical outputs


VARIANTS = [
    dict(tubelet_size=2),
    dict(use_conv_embed=True),
    dict(use_layerscale=True),
    dict(use_postln=True),
    dict(use_postln_in_modulation=True),
    dict(normalize_modulator=True),
    dict(focal_levels=[1, 1, 1, 1], focal_windows=[1, 1, 1, 1]),
    dict(focal_levels=[3, 3, 3, 3], focal_windows=[5, 5, 5, 5]),
    dict(focal_levels=[1, 2, 3, 2], focal_windows=[3, 1, 5, 3]),
]


def variant_id(v):
    return ','.join(f'{k}={v[k]}' for k in v) or 'default'


@pytest.mark.parametrize('variant', [{}] + VARIANTS, ids=variant_id)
def test_model_equals_the_straightforward_formulation_in_logits_and_gradients(variant):
    """Same weights, same clips (batch 3, train mode, drop path off): logits, input gradient and
    every parameter gradient equal those of the straightforward formulation; eval-mode logits too."""
    model = perturbed(depths=[1, 2, 1, 1], **variant)
    clip = torch.randn(3, 4, 3, 32, 32)
    target = torch.tensor([0, 3, 4])
    outputs = []
    for forward in (model, ReferenceForward(model)):
        model.zero_grad(set_to_none=True)
        x = clip.clone().requires_grad_()
        logits = forward.train()(x)
        torch.nn.functional.cross_entropy(logits, target).backward()
        outputs.append((logits, x.grad, [p.grad for p in model.parameters()]))
    (logits, grad_x, grads), (ref_logits, ref_grad_x, ref_grads) = outputs
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_x, ref_grad_x, atol=1e-5, rtol=0)
    for (name, _), a, b in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip), ReferenceForward(model).eval()(clip), atol=1e-5, rtol=0)


@pytest.mark.parametrize('variant', VARIANTS, ids=variant_id)
def test_variants_forward_and_backward(variant):
    model = tiny(**variant)
    logits = model(torch.randn(2, 4, 3, 32, 32))
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_variant_parameter_names():
    names = set(tiny(use_layerscale=True, use_postln_in_modulation=True).state_dict())
    assert 'layers.0.blocks.0.gamma_1' in names and 'layers.0.blocks.0.modulation.ln.weight' in names
    names = set(tiny().state_dict())
    assert not any('gamma' in n or 'modulation.ln.' in n for n in names)
    assert tiny(tubelet_size=2).patch_embed.proj.weight.shape == (8, 3, 2, 4, 4)


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    calls = []
    checkpoint = models.video_focalnet.cp.checkpoint
    monkeypatch.setattr(models.video_focalnet.cp, 'checkpoint',
                        lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    torch.manual_seed(0)
    plain = tiny()
    ckpt = tiny(use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    clip = torch.randn(2, 4, 3, 32, 32)
    plain(clip).sum().backward()
    ckpt(clip).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert len(calls) == 4  # one per block: the checkpointed path really ran


def test_forward_stores_no_tensors_on_modules():
    model = tiny()
    before = {n: set(vars(m)) for n, m in model.named_modules()}
    model(torch.randn(1, 4, 3, 32, 32))
    after = {n: set(vars(m)) for n, m in model.named_modules()}
    assert before == after
    assert not [(n, k) for n, m in model.named_modules() for k, v in vars(m).items() if torch.is_tensor(v)]


def test_capture_modulators_is_opt_in_and_leaves_nothing_behind():
    model = tiny().eval()
    with torch.no_grad(), capture_modulators(model) as stages:
        model(torch.randn(2, 4, 3, 32, 32))
    assert [s['spatial'].shape for s in stages] == [(8, 8, 8, 8), (8, 16, 4, 4), (8, 32, 2, 2), (8, 64, 1, 1)]
    assert all(s['temporal'].shape == s['spatial'].shape for s in stages)
    kept = [s['spatial'] for s in stages]
    with torch.no_grad():
        model(torch.randn(1, 4, 3, 32, 32))  # outside the `with`: nothing is captured any more
    assert all(s['spatial'] is k for s, k in zip(stages, kept))
    assert [m.capture for m in model.modules() if hasattr(m, 'capture')] == [None] * 4
    with pytest.raises(RuntimeError), capture_modulators(model):
        raise RuntimeError('a failed forward')
    assert [m.capture for m in model.modules() if hasattr(m, 'capture')] == [None] * 4  # released on errors too


def test_capture_modulators_equals_the_reference_h_and_h_temporal_outputs():
    """Captured modulators, laid out as (B*T', C, H, W) with row b*T' + t, equal the outputs of `h`
    and `h_temporal` in the straightforward formulation, where h_temporal gives (B*H*W, C, T')."""
    model = perturbed()
    clip = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad(), capture_modulators(model) as stages:
        model.eval()(clip)
    seen = []
    for layer in model.layers:  # the straightforward formulation runs h and h_temporal as modules
        mod = layer.blocks[-1].modulation
        seen.append({})
        mod.h.register_forward_hook(lambda m, i, o, d=seen[-1]: d.setdefault('spatial', o))
        mod.h_temporal.register_forward_hook(lambda m, i, o, d=seen[-1]: d.setdefault('temporal', o))
    with torch.no_grad():
        ReferenceForward(model).eval()(clip)
    for stage, raw in zip(stages, seen):
        torch.testing.assert_close(stage['spatial'], raw['spatial'], atol=1e-5, rtol=0)
        BT, C, H, W = raw['spatial'].shape
        temporal = raw['temporal'].view(2, H, W, C, 4).permute(0, 4, 3, 1, 2).reshape(BT, C, H, W)
        torch.testing.assert_close(stage['temporal'], temporal, atol=1e-5, rtol=0)


def test_onnx_export_matches_pytorch_with_dynamic_batch(tmp_path):
    """torch.onnx.export of the model runs in onnxruntime at batch 1 and 3 within 1e-4."""
    ort = pytest.importorskip('onnxruntime')
    model = tiny().eval()
    path = str(tmp_path / 'model.onnx')
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(2, 4, 3, 32, 32),), path, input_names=['clip'],
                          output_names=['logits'], dynamic_shapes={'x': {0: torch.export.Dim('batch')}})
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for batch in (1, 3):
        clip = torch.randn(batch, 4, 3, 32, 32)
        with torch.no_grad():
            expected = model(clip).numpy()
        got = session.run(None, {'clip': clip.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('gcc') is None and shutil.which('cc') is None,
                    reason='torch.compile on the CPU needs a C compiler (gcc or cc) on PATH')
def test_compiled_model_equals_eager_and_still_captures_modulators():
    """torch.compile (TRAIN.COMPILE): inductor's forward gives eager's logits; the training graph
    (dynamo + AOTAutograd, backend aot_eager: the same graphs inductor would generate code for, in
    seconds instead of minutes on two cores) gives eager's gradients; the state-dict keys are the
    eager ones once unwrapped; capture_modulators, entered after compiling, still fills its stages."""
    from utils.checkpoint import unwrap
    torch.manual_seed(0)
    eager = tiny()
    clip = torch.randn(2, 4, 3, 32, 32)
    inductor = torch.compile(tiny())
    unwrap(inductor).load_state_dict(eager.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(inductor(clip), eager(clip), atol=1e-5, rtol=0)

    compiled = torch.compile(tiny(), backend='aot_eager')
    unwrap(compiled).load_state_dict(eager.state_dict())
    assert unwrap(compiled).state_dict().keys() == eager.state_dict().keys()
    for model in (eager, compiled):
        model(clip).square().sum().backward()
    for (name, a), b in zip(eager.named_parameters(), unwrap(compiled).parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5, msg=name)
    with torch.no_grad(), capture_modulators(compiled) as stages:
        compiled(clip)
    assert [s['spatial'].shape for s in stages] == [(8, 8, 8, 8), (8, 16, 4, 4), (8, 32, 2, 2), (8, 64, 1, 1)]
    assert all(m.capture is None for m in unwrap(compiled).modules() if hasattr(m, 'capture'))
