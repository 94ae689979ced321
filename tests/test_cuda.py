"""GPU paths on a tiny model: AMP (float16 + GradScaler, bfloat16) training steps through the shared
loop, NCCL DDP, channels-last input, torch.compile, and CUDA evaluation equal to CPU evaluation.

Run on a CUDA machine with `python -m pytest -m cuda` (scripts/gpu_check.sh does); skipped elsewhere.
"""
import copy
import json

import pytest
import timm
import torch
import torch.distributed as dist
import torch.nn as nn
from timm.scheduler import CosineLRScheduler

import models  # noqa: F401  (registers the timm entries)
from engine import amp_settings, evaluate, train_one_epoch, view_probs
from tests.helpers.runs import TINY_MODEL, run
from utils.checkpoint import load_model_weights, save_checkpoint, unwrap
from utils.losses import SupervisedLoss

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')]

CUDA = torch.device('cuda')
CPU = torch.device('cpu')


@pytest.fixture(autouse=True)
def exact_float32():
    """Comparisons against float32 references: no TF32 in matmuls and convolutions."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return timm.create_model('videofocalnet_nano', embed_dim=8, depths=[1, 1, 1, 1], num_frames=4,
                             num_classes=5, drop_path_rate=0.0)


def batches(n=3, batch=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 4, 3, 32, 32, generator=g), torch.randint(0, 5, (batch,), generator=g))
            for _ in range(n)]


def train_steps(model, loader, amp_dtype=None, scaler_enabled=False, device=CUDA):
    """SGD steps through engine.train_one_epoch; returns (stats, scaler)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    # 2**10, not the default 2**16: a skipped (overflowing) first step would make the update differ.
    scaler = torch.amp.GradScaler(device.type, init_scale=2.0 ** 10, enabled=scaler_enabled)
    stats = train_one_epoch(model, SupervisedLoss(nn.CrossEntropyLoss()), loader, optimizer, None,
                            scaler, 0, device=device, amp_dtype=amp_dtype)
    return stats, scaler


def update(before, model):
    """The parameter change of a training run, flattened."""
    return torch.cat([(p.detach().float().cpu() - before[n]).flatten()
                      for n, p in unwrap(model).named_parameters()])


def trained_delta(amp_dtype=None, scaler_enabled=False):
    model = tiny_model().to(CUDA)
    before = {n: p.detach().cpu().clone() for n, p in model.named_parameters()}
    stats, scaler = train_steps(model, batches(), amp_dtype, scaler_enabled)
    return update(before, model), stats, scaler


@pytest.mark.parametrize('amp_dtype, scaler_enabled, min_cosine', [
    (torch.float16, True, 0.99), (torch.bfloat16, False, 0.95)])
def test_amp_training_steps_follow_float32(amp_dtype, scaler_enabled, min_cosine):
    reference, ref_stats, _ = trained_delta()
    delta, stats, scaler = trained_delta(amp_dtype, scaler_enabled)
    assert torch.isfinite(delta).all() and delta.abs().max() > 0
    cosine = torch.nn.functional.cosine_similarity(delta, reference, dim=0).item()
    assert cosine > min_cosine, f'{amp_dtype} update direction differs from float32: cosine {cosine:.4f}'
    assert stats['train_loss'] == pytest.approx(ref_stats['train_loss'], rel=2e-2)
    if scaler_enabled:  # the scaler really scaled, and no step was skipped for inf/NaN gradients
        assert scaler.is_enabled() and scaler.get_scale() == 2.0 ** 10


def test_amp_settings_float16_with_a_scaler_as_apex_o1_and_bfloat16_on_request():
    assert amp_settings('O1', CUDA, '') == (torch.float16, True)
    assert amp_settings('O1', CUDA, 'float16') == (torch.float16, True)
    if torch.cuda.is_bf16_supported():
        assert amp_settings('O1', CUDA, 'bfloat16') == (torch.bfloat16, False)
    assert amp_settings('O0', CUDA, '') == (None, False)


def test_nccl_ddp_with_one_process_equals_a_plain_step(tmp_path):
    loader = batches(2)
    plain = tiny_model().to(CUDA)
    train_steps(plain, loader)
    dist.init_process_group('nccl', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(tiny_model().to(CUDA), device_ids=[CUDA.index or 0])
        train_steps(ddp, loader)
        total = torch.ones(1, device=CUDA)
        dist.all_reduce(total)
        assert total.item() == 1.0
    finally:
        dist.destroy_process_group()
    for (name, a), b in zip(plain.named_parameters(), ddp.module.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_channels_last_input_gives_the_same_logits_and_gradients():
    model = tiny_model().to(CUDA)
    clips = batches(1)[0][0].to(CUDA)
    # (B, T, C, H, W) with C innermost in memory, as decoders deliver frames (H, W, C).
    channels_last = clips.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    assert channels_last.stride(2) == 1 and torch.equal(channels_last, clips)
    outputs = []
    for x in (clips, channels_last):
        model.zero_grad()
        logits = model(x)
        logits.square().sum().backward()
        outputs.append((logits.detach(), model.head.weight.grad.clone()))
    torch.testing.assert_close(outputs[1][0], outputs[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs[1][1], outputs[0][1], atol=1e-5, rtol=1e-5)


def test_torch_compile_matches_eager_trains_and_saves_a_plain_checkpoint(tmp_path):
    eager = tiny_model().to(CUDA).eval()
    compiled = torch.compile(copy.deepcopy(eager))
    clips = batches(1)[0][0].to(CUDA)
    with torch.no_grad():
        torch.testing.assert_close(compiled(clips), eager(clips), atol=1e-4, rtol=1e-4)
    stats, _ = train_steps(compiled, batches(2))
    assert stats['train_loss'] == stats['train_loss']  # not NaN

    class Cfg:  # save_checkpoint stores config.dump()
        @staticmethod
        def dump():
            return ''
    optimizer = torch.optim.SGD(compiled.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler('cuda', enabled=False)
    schedule = CosineLRScheduler(optimizer, t_initial=10)  # save_checkpoint stores its state
    path = save_checkpoint(str(tmp_path), 0, compiled, optimizer, schedule, scaler, 0.0, Cfg)
    fresh = tiny_model(seed=3)
    load_model_weights(fresh, path)  # strict: no `_orig_mod.` prefixes
    for (name, a), b in zip(fresh.named_parameters(), unwrap(compiled).parameters()):
        torch.testing.assert_close(a, b.detach().cpu(), msg=name)


def test_evaluation_on_cuda_equals_evaluation_on_cpu(tmp_path):
    from datasets import build_val_loader
    from models import build_model
    from tests.helpers.videos import data_config, make_dataset

    csvs = make_dataset(tmp_path / 'data', num_classes=3, videos_per_class=2, num_frames=16)
    overrides = {'MODEL__TYPE': TINY_MODEL['TYPE'], 'MODEL__DROP_PATH_RATE': 0.0,
                 'MODEL__FOCAL__EMBED_DIM': TINY_MODEL['FOCAL']['EMBED_DIM'],
                 'MODEL__FOCAL__DEPTHS': TINY_MODEL['FOCAL']['DEPTHS'], 'DATA__DECODER': 'pyav'}
    config = data_config(*csvs, 3, **overrides)
    torch.manual_seed(0)
    model = build_model(config)
    dataset, loader = build_val_loader(config, 2, 3)
    results = []
    for device in (CPU, CUDA):
        model.to(device)
        stats = evaluate(model, loader, len(dataset), 3, device=device, chunk_size=4)
        views = next(iter(loader))[0]
        results.append(dict(stats, probs=view_probs(model, views, device=device).cpu()))
    cpu, gpu = results
    assert gpu['num_videos'] == cpu['num_videos'] == 6 and gpu['num_views'] == 6
    torch.testing.assert_close(gpu['probs'], cpu['probs'], atol=1e-5, rtol=1e-5)
    assert gpu['loss'] == pytest.approx(cpu['loss'], abs=1e-5)
    assert (gpu['acc1'], gpu['acc5']) == (cpu['acc1'], cpu['acc5'])
    # bfloat16 autocast: close, not equal.
    model.to(CUDA)
    bf16 = evaluate(model, loader, len(dataset), 3, device=CUDA, amp_dtype=torch.bfloat16, chunk_size=4)
    assert bf16['loss'] == pytest.approx(cpu['loss'], abs=2e-2)


def test_predict_on_cuda_equals_predict_on_cpu(tmp_path):
    from tests.helpers.deploy import tiny_deployment

    d = tiny_deployment(tmp_path)
    probs = {}
    for device in ('cpu', 'cuda'):
        _, output = run(['-m', 'tools.predict', '--cfg', d.cfg, '--checkpoint', d.checkpoint, *d.videos,
                         '--json', '--device', device])
        results = json.loads(output[output.index('['):output.rindex(']') + 1])
        probs[device] = [{e['id']: e['prob'] for e in r['top']} for r in results]
    for cpu, gpu in zip(probs['cpu'], probs['cuda']):
        assert cpu.keys() == gpu.keys()
        for k in cpu:  # TF32 is on by default in the subprocess's convolutions
            assert gpu[k] == pytest.approx(cpu[k], abs=1e-3)
