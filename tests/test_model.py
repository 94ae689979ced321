"""The Video-FocalNet zoo against the golden fixture, MODEL.md's parameter counts, its variants, and
the straightforward formulation (models/video_focalnet_reference.py) that the fast one replaces."""
import os
import shutil

import numpy as np
import pytest
import timm
import torch

import models
from models import VideoFocalNet, capture_modulators
from models.video_focalnet_reference import ReferenceVideoFocalNet

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'reference_video_focalnet_small_cfg.pt')

# The published zoo (the architecture spec behind MODEL.TYPE), 101 classes, 8 frames.
PARAMS = {
    'videofocalnet_nano': 22_214_723,
    'videofocalnet_tiny': 49_323_341,
    'videofocalnet_small': 88_505_237,
    'videofocalnet_base': 157_082_741,
}


TINY = dict(img_size=32, num_classes=5, embed_dim=8, depths=[1, 1, 1, 1], num_frames=4,
            drop_path_rate=0.0)


def tiny(**kw):
    return VideoFocalNet(**dict(TINY, **kw))


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_golden_fixture_reproduces_official_logits(mode):
    """Eval mode, and train mode with drop path off (the fixture's config): the same logits."""
    ref = torch.load(FIXTURE, weights_only=True)
    assert ref['config']['drop_path_rate'] == 0.0
    model = VideoFocalNet(**ref['config'])
    model.load_state_dict(ref['model'], strict=True)
    model.train(mode == 'train')
    with torch.no_grad():
        logits = model(ref['input'])
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=0)


def test_reference_formulation_reproduces_official_logits():
    ref = torch.load(FIXTURE, weights_only=True)
    model = ReferenceVideoFocalNet(**ref['config'])
    model.load_state_dict(ref['model'], strict=True)
    with torch.no_grad():
        logits = model.eval()(ref['input'])
    torch.testing.assert_close(logits, ref['logits'], atol=1e-5, rtol=0)


def fast_and_reference(**kw):
    torch.manual_seed(0)
    fast = tiny(**kw)
    with torch.no_grad():  # break the zero-bias / unit-norm symmetry of the initialisation
        for p in fast.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ref = ReferenceVideoFocalNet(**dict(TINY, **kw))
    ref.load_state_dict(fast.state_dict(), strict=True)
    return fast, ref


@pytest.mark.parametrize('name', sorted(PARAMS))
def test_zoo_parameter_counts_match_model_md(name):
    with torch.device('meta'):
        model = timm.create_model(name, num_classes=101, num_frames=8)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def test_registry_defaults_are_overridden_by_kwargs():
    model = timm.create_model('videofocalnet_base', num_classes=7, embed_dim=8, depths=[1, 1, 1, 1],
                              num_frames=2, img_size=32)
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


# How models/ops.py may run: as it chooses (for the tiny model: fused oneDNN inference, plain
# training ops), with its CPU training kernels on every layer however small, with token chunks
# small enough to split the tiny model's MLPs, or with the plain PyTorch ops only (CUDA, compile).
KERNELS = {
    'default': {},
    'training_kernels': {'MIN_TRAINING_MACS': 0, 'SPLIT_ROWS': 2},
    'chunked': {'CHUNK_BYTES': 1024},
    'plain': {'ONEDNN': False},
}


@pytest.fixture(params=sorted(KERNELS))
def kernels(request, monkeypatch):
    for name, value in KERNELS[request.param].items():
        monkeypatch.setattr(models.ops, name, value)
    return request.param


def test_the_kernel_settings_take_different_paths(monkeypatch):
    """The CPU training kernels are in the autograd graph for layers of MIN_TRAINING_MACS or more
    (none in the tiny model) and never when oneDNN is off; eval-mode inference runs oneDNN's fused
    kernels unless it is off; chunking splits token-wise work into pieces of at most CHUNK_BYTES of
    hidden activation, in order."""
    model = tiny()
    clip = torch.randn(1, 4, 3, 32, 32)
    graphs, inference_ops = {}, {}
    for setting in ('default', 'training_kernels', 'plain'):
        with monkeypatch.context() as patch:
            for name, value in KERNELS[setting].items():
                patch.setattr(models.ops, name, value)
            graphs[setting] = graph_node_names(model.train()(clip).grad_fn)
            with torch.no_grad(), torch.profiler.profile() as prof:
                model.eval()(clip)
            inference_ops[setting] = {event.name for event in prof.events()}
    if models.ops.ONEDNN:
        assert {'_OneDnnLinearBackward', '_TemporalConvBackward'} <= graphs['training_kernels']
        assert 'mkldnn::_linear_pointwise' in inference_ops['default']
    assert not any(name.startswith('_') for name in graphs['default'] | graphs['plain'])
    assert 'mkldnn::_linear_pointwise' not in inference_ops['plain']

    rows = []
    x = torch.randn(2, 5, 3, 8)
    monkeypatch.setattr(models.ops, 'CHUNK_BYTES', 4 * 32 * 4)  # 4 rows of a 32-wide hidden layer
    out = models.ops.token_chunked(lambda part: rows.append(len(part)) or 2 * part[:, :2], x, hidden=32)
    assert rows == [4, 4, 4, 4, 4, 4, 4, 2]
    torch.testing.assert_close(out, 2 * x[..., :2], atol=0, rtol=0)


def graph_node_names(fn):
    """The type names of the autograd nodes behind grad_fn `fn`."""
    seen, todo = {}, [fn]
    while todo:
        node = todo.pop()
        if node is not None and id(node) not in seen:
            seen[id(node)] = type(node).__name__
            todo.extend(next_fn for next_fn, _ in node.next_functions)
    return set(seen.values())


@pytest.mark.parametrize('variant', [{}] + VARIANTS, ids=variant_id)
def test_fast_formulation_equals_reference_in_logits_and_gradients(variant, kernels):
    """Same weights, same clips (batch 3, train mode, drop path off): logits, input gradient and
    every parameter gradient of the fast formulation equal the straightforward one's, whichever
    kernels it runs."""
    fast, ref = fast_and_reference(depths=[1, 2, 1, 1], **variant)
    clip = torch.randn(3, 4, 3, 32, 32)
    target = torch.tensor([0, 3, 4])
    outputs = []
    for model in (fast, ref):
        x = clip.clone().requires_grad_()
        logits = model.train()(x)
        torch.nn.functional.cross_entropy(logits, target).backward()
        outputs.append((logits, x.grad))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(outputs[0][1], outputs[1][1], atol=1e-5, rtol=0)
    for (name, a), b in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=0, msg=name)


# 'plain' is left out: with oneDNN off, the fused and the plain forward are the same code.
@pytest.mark.parametrize('kernels', ['default', 'training_kernels', 'chunked'], indirect=True)
@pytest.mark.parametrize('variant', [{}] + VARIANTS, ids=variant_id)
def test_fused_cpu_inference_equals_the_plain_ops(variant, kernels):
    """Eval mode under no_grad takes oneDNN's fused GEMM/conv + bias + GELU (+ residual, gate)
    kernels; with autograd on, the plain ops. Both give the reference's logits."""
    fast, ref = fast_and_reference(depths=[1, 2, 1, 1], **variant)
    fast.eval()
    clip = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        fused = fast(clip)
        expected = ref.eval()(clip)
    plain = fast(clip).detach()
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)


def test_drop_path_residual_is_timms_drop_path():  # no models.ops kernel is involved
    """The block's one-pass residual with drop path draws timm's DropPath mask (same seed, same
    frames dropped) and gives the numbers and gradients of x + DropPath(y)."""
    block = tiny(drop_path_rate=0.5).layers[3].blocks[0].train()
    assert isinstance(block.drop_path, timm.layers.DropPath) and block.drop_path.drop_prob == 0.5
    x = torch.randn(64, 1, 1, 64, requires_grad=True)
    y = torch.randn(64, 1, 1, 64, requires_grad=True)
    results = []
    for fn in (block._residual, lambda x, y: x + block.drop_path(y)):
        torch.manual_seed(3)
        out = fn(x, y)
        grads = torch.autograd.grad(out, (x, y), torch.randn_like(out))
        results.append((out, *grads))
    dropped = (results[1][2] == 0).all(-1).flatten()
    assert 0 < int(dropped.sum()) < 64  # some rows dropped, some kept
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    block.eval()
    torch.testing.assert_close(block._residual(x, y), x + y, atol=0, rtol=0)


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


def test_gradient_checkpointing_gives_the_same_gradients(kernels, monkeypatch):
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
    assert all(not m._forward_hooks for m in model.modules())


def test_capture_modulators_equals_the_reference_h_and_h_temporal_outputs():
    """Captured modulators, laid out as (B*T', C, H, W) with row b*T' + t, equal the outputs of `h`
    and `h_temporal` in the straightforward formulation, where h_temporal gives (B*H*W, C, T')."""
    fast, ref = fast_and_reference()
    clip = torch.randn(2, 4, 3, 32, 32)
    seen = []
    for layer in ref.layers:
        mod = layer.blocks[-1].modulation
        seen.append({})
        mod.h.register_forward_hook(lambda m, i, o, d=seen[-1]: d.setdefault('spatial', o))
        mod.h_temporal.register_forward_hook(lambda m, i, o, d=seen[-1]: d.setdefault('temporal', o))
    with torch.no_grad(), capture_modulators(fast) as stages:
        fast.eval()(clip)
        ref.eval()(clip)
    for stage, raw in zip(stages, seen):
        torch.testing.assert_close(stage['spatial'], raw['spatial'], atol=1e-5, rtol=0)
        BT, C, H, W = raw['spatial'].shape
        temporal = raw['temporal'].view(2, H, W, C, 4).permute(0, 4, 3, 1, 2).reshape(BT, C, H, W)
        torch.testing.assert_close(stage['temporal'], temporal, atol=1e-5, rtol=0)


def test_onnx_export_matches_pytorch_with_dynamic_batch(tmp_path):
    """torch.onnx.export of the fast model runs in onnxruntime at batch 1 and 3 within 1e-4."""
    ort = pytest.importorskip('onnxruntime')
    model = tiny().eval()
    path = str(tmp_path / 'model.onnx')
    with torch.no_grad():  # as for inference: export must not pick the fused oneDNN kernels
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
    """torch.compile (TRAIN.COMPILE): same logits and gradients as eager, same state-dict keys once
    unwrapped, and capture_modulators, entered after compiling, still fills its stages."""
    from utils.checkpoint import unwrap
    torch.manual_seed(0)
    eager = tiny()
    compiled = torch.compile(tiny())
    unwrap(compiled).load_state_dict(eager.state_dict())
    assert unwrap(compiled).state_dict().keys() == eager.state_dict().keys()
    clip = torch.randn(2, 4, 3, 32, 32)
    for model in (eager, compiled):
        model(clip).square().sum().backward()
    torch.testing.assert_close(compiled(clip), eager(clip), atol=1e-5, rtol=0)
    for (name, a), b in zip(eager.named_parameters(), unwrap(compiled).parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5, msg=name)
    with torch.no_grad(), capture_modulators(compiled) as stages:
        compiled(clip)
    assert [s['spatial'].shape for s in stages] == [(8, 8, 8, 8), (8, 16, 4, 4), (8, 32, 2, 2), (8, 64, 1, 1)]
    assert all(m.capture is None for m in unwrap(compiled).modules() if hasattr(m, 'capture'))
