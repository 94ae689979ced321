"""The paths a GPU run takes, run on the CPU: float16 autocast with a GradScaler (AMP_DTYPE float16
takes it on a CPU too), steps the scaler skips, resume across precisions, the host reads of a step,
DDP + torch.compile order, the teacher's memory-mapped load, whole accumulation steps only, the GPU
picked under a launcher that shows each process one GPU, and the determinism setting."""
import math
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from timm.scheduler import CosineLRScheduler
from torch.overrides import TorchFunctionMode

from engine import configure_backends, train_one_epoch, wrap_for_training
from tests.helpers.runs import ROOT, records, run, run_dir, run_inline, strict_json, tiny_batch, tiny_model
from utils.checkpoint import unwrap
from utils.logger import MetricsWriter
from utils.losses import DistillationLoss, SupervisedLoss

CPU = torch.device('cpu')


def overflowing_scaler():
    """A GradScaler whose first step overflows float16 gradients (scale 2^24 on a loss near 1) and
    whose back-off (2^-12) lets the next steps through: a skipped step on demand."""
    return torch.amp.GradScaler('cpu', init_scale=2.0 ** 24, backoff_factor=2.0 ** -12)


def test_a_step_the_scaler_skips_leaves_weights_optimiser_schedule_and_grad_norm_right(tmp_path, monkeypatch):
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    schedule = CosineLRScheduler(optimizer, t_initial=10, lr_min=0.001, warmup_t=2, warmup_lr_init=0.002,
                                 t_in_epochs=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, 'clip_grad_norm_', lambda *a, **k: norms.append(clip(*a, **k)) or norms[-1])
    scaler = overflowing_scaler()
    x, y = tiny_batch()

    def epoch(e, n):
        return train_one_epoch(model, SupervisedLoss(nn.CrossEntropyLoss()), [(x, y)] * n, optimizer, schedule,
                               scaler, e, device=CPU, amp_dtype=torch.float16)

    stats = epoch(0, 1)  # its one step overflows
    assert not torch.isfinite(norms[0])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert optimizer.state_dict()['state'] == {}  # AdamW's moments and step count untouched
    assert scaler.get_scale() == 2.0 ** 12
    # The schedule counts steps as the published code: the skipped step 0 sets the LR of step 0,
    # f(0) = the warm-up's start, as a taken one does.
    assert optimizer.param_groups[0]['lr'] == 0.002
    assert stats['grad_norm'] is None and stats['skipped_steps'] == 1

    stats_1 = epoch(1, 2)  # both steps taken at scale 2^12
    assert scaler.get_scale() == 2.0 ** 12 and stats_1['skipped_steps'] == 0
    assert all(torch.isfinite(n) for n in norms[1:]) and len(optimizer.state_dict()['state']) > 0
    assert stats_1['grad_norm'] == pytest.approx(float(sum(norms[1:])) / 2, rel=1e-6)
    # Epoch 1 of 2 steps ends at step 1 * 2 + 1 = 3, past the warm-up: the cosine at t = 3 of 10.
    assert optimizer.param_groups[0]['lr'] == pytest.approx(0.001 + 0.009 * (1 + math.cos(math.pi * 0.3)) / 2,
                                                            rel=1e-12)

    writer = MetricsWriter(str(tmp_path), enabled=True)
    writer.write({'epoch': 0, **stats, 'val_loss': float('inf')})
    writer.close()
    first = records(tmp_path)[0]  # strict: no Infinity / NaN
    assert first['grad_norm'] is None and first['val_loss'] is None and first['skipped_steps'] == 1
    with pytest.raises(ValueError, match='not strict JSON: Infinity'):
        strict_json('{"grad_norm": Infinity}')  # the reader used above does refuse them


def test_only_whole_accumulation_steps_are_computed():
    """5 micro-batches with ACCUMULATION_STEPS 2: 2 optimiser steps, 4 forwards; the 5th micro-batch
    would never step, so it is not computed (same weights as the run over the first 4)."""
    x, y = tiny_batch()
    loader = [(x[i:i + 1], y[i:i + 1]) for i in range(4)] + [(x[:1], y[:1])]
    models = []
    for batches in (loader, loader[:4]):
        model = tiny_model()
        forwards = []
        model.register_forward_hook(lambda *args: forwards.append(1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        stats = train_one_epoch(model, SupervisedLoss(nn.CrossEntropyLoss()), batches, optimizer, None,
                                torch.amp.GradScaler('cpu', enabled=False), 0, device=CPU, accumulation_steps=2)
        assert len(forwards) == 4 and stats['skipped_steps'] == 0
        models.append(model)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), name


HOST_READS = {'item', 'tolist', '__float__', '__int__', '__bool__', 'cpu', 'numpy'}


class Calls(TorchFunctionMode):
    """Records the name of every torch function and tensor method called inside it."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, '__name__', str(func)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('cached', [False, True], ids=['online teacher', 'teacher cache'])
def test_no_host_read_before_the_backward_is_queued(tmp_path, cached):
    """On a GPU a host read (item, tolist, float) waits for every kernel queued before it: one
    before backward makes the host idle until the forward ends. The loss parts and the teacher
    cache's input check are read after backward is queued."""
    from tests.test_teacher_cache import small_config, write_cache
    from utils.losses import CachedDistillationLoss
    from utils.teacher_cache import CachedTeacher

    x, y = tiny_batch(2)
    if cached:
        cfg = small_config(tmp_path, **{'TRAIN.EPOCHS': 1})
        written = write_cache(tmp_path / 'cache', cfg, steps=1, dtype='float32')
        x = written[0][0][0]
        student = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3))
        criterion = CachedDistillationLoss(nn.CrossEntropyLoss(), CachedTeacher(str(tmp_path / 'cache'), cfg, 1, 0, CPU),
                                           0.5, 4.0)
        criterion.set_epoch(0)
    else:
        student = tiny_model()
        criterion = DistillationLoss(nn.CrossEntropyLoss(), tiny_model(seed=1).eval(), 0.5, 4.0)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    with Calls() as calls:
        stats = train_one_epoch(student, criterion, [(x, y)], optimizer, None,
                                torch.amp.GradScaler('cpu', init_scale=2.0 ** 8), 0, device=CPU,
                                amp_dtype=torch.float16)
    first_backward = calls.names.index('backward')
    early = [name for name in calls.names[:first_backward] if name in HOST_READS]
    assert not early, f'host reads before backward: {early}'
    assert math.isfinite(stats['train_loss_kd'])


def test_the_compiled_model_wraps_ddp_and_trains(tmp_path):
    """TRAIN.COMPILE under DDP: torch.compile(DDP(model)), as PyTorch's DDP notes (DDPOptimizer
    splits the graphs at the gradient buckets); unwrap() still finds the bare model."""
    from config import get_config

    config = get_config()
    config.defrost()
    config.TRAIN.COMPILE, config.TRAIN.COMPILE_BACKEND = True, 'eager'
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        model = tiny_model()
        wrapped = wrap_for_training(model, config, 2, CPU)  # world size 2 as far as wrapping goes
        assert isinstance(wrapped, torch._dynamo.eval_frame.OptimizedModule)
        assert isinstance(wrapped._orig_mod, nn.parallel.DistributedDataParallel)
        assert unwrap(wrapped) is model
        before = model.head.weight.clone()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        train_one_epoch(wrapped, SupervisedLoss(nn.CrossEntropyLoss()), [tiny_batch()], optimizer, None,
                        torch.amp.GradScaler('cpu', enabled=False), 0, device=CPU)
        assert not torch.equal(before, model.head.weight)
    finally:
        dist.destroy_process_group()


# The process's peak resident memory (VmHWM: its own, unlike ru_maxrss, which a child inherits from
# the parent that forked it), in MB, before and after loading the weights.
RSS_PROBE = '''
import sys, torch
from utils.checkpoint import load_model_weights
from tests.helpers.runs import tiny_model

def peak_mb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024

model = tiny_model()
before = peak_mb()
load_model_weights(model, sys.argv[1])
print(peak_mb() - before)
'''


def test_loading_a_teacher_does_not_read_its_optimiser_state(tmp_path):
    """A teacher is loaded from a training checkpoint (model + optimiser state, ~1.9 GB for the base
    teacher); every rank loads it. The load maps the file: the optimiser state (here 256 MB) is
    never read, and ranks share the pages of the model's tensors."""
    path = tmp_path / 'teacher.pth'
    torch.save({'model': tiny_model().state_dict(),
                'optimizer': {'state': {0: {'exp_avg': torch.ones(64 * 2 ** 20)}}}}, path)
    out = subprocess.run([sys.executable, '-c', RSS_PROBE, str(path)], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'), check=True)
    grown_mb = float(out.stdout.split()[-1])
    assert grown_mb < 64, f'peak RSS grew {grown_mb:.0f} MB loading the weights of a checkpoint with 256 MB of optimiser state'


def test_a_launcher_showing_each_process_one_gpu_gets_cuda_0(monkeypatch):
    """SLURM/Kubernetes-style launchers set CUDA_VISIBLE_DEVICES per process: LOCAL_RANK 3 then sees
    one GPU, index 0. With several visible GPUs and a LOCAL_RANK beyond them: a clear error."""
    from utils import distributed
    from utils.errors import UserError

    chosen = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'set_device', chosen.append)
    monkeypatch.setenv('LOCAL_RANK', '3')
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    rank, world_size, device = distributed.init_distributed()
    assert device == torch.device('cuda', 0) and [torch.device(d) for d in chosen] == [torch.device('cuda', 0)]
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    with pytest.raises(UserError, match='LOCAL_RANK 3: this process sees 2 GPUs'):
        distributed.init_distributed()


@pytest.fixture
def backends_restored():
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             os.environ.get('CUBLAS_WORKSPACE_CONFIG'))
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
    if saved[4] is None:
        os.environ.pop('CUBLAS_WORKSPACE_CONFIG', None)
    else:
        os.environ['CUBLAS_WORKSPACE_CONFIG'] = saved[4]


def test_deterministic_turns_off_autotuning_and_turns_on_deterministic_kernels(backends_restored):
    from config import get_config

    config = get_config()
    cuda = torch.device('cuda')  # the flags are set without a GPU
    torch.backends.cudnn.benchmark = False
    configure_backends(config, cuda)
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    config.defrost()
    config.DETERMINISTIC = True
    configure_backends(config, cuda)
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'


def test_the_caching_pass_takes_the_backend_settings_of_training(tmp_path, tiny_config, monkeypatch,
                                                                 backends_restored):
    """main_KD.py --cache-teacher sets cuDNN and determinism as training does (DETERMINISTIC True here),
    so the teacher runs the same kernels in the caching pass as in online distillation."""
    from config import load_config_file
    from models import build_model
    from tests.helpers.runs import teacher_section

    cfg = tiny_config({'TRAIN': {'EPOCHS': 1}, 'KD': {'EVAL_TEACHER': False}})
    teacher = build_model(load_config_file(cfg, ['MODEL.FOCAL.EMBED_DIM', '16']))
    torch.save({'model': teacher.state_dict()}, tmp_path / 'teacher.pth')
    cfg = tiny_config({'TRAIN': {'EPOCHS': 1}, 'TEACHER_MODEL': teacher_section(str(tmp_path / 'teacher.pth'))},
                      name='kd.yaml')
    torch.use_deterministic_algorithms(False)
    code = run_inline('main_KD.py', ['--cfg', cfg, '--cache-teacher', str(tmp_path / 'cache'),
                                     'DETERMINISTIC', 'True'], monkeypatch)
    assert code in (0, None)
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert os.path.isfile(tmp_path / 'cache' / 'epoch_0000_rank_0.pt')


def test_resume_across_precisions(tiny_config, tmp_path, monkeypatch, capsys):
    """An O0 checkpoint (its GradScaler saved disabled: no state) resumed under float16 + GradScaler
    starts loss scaling afresh; that float16 checkpoint resumed under bfloat16 (no scaler) ignores
    its scale. (A run folder's name holds TRAIN.EPOCHS: each run names the checkpoint it resumes.)"""
    cfg = tiny_config({'TEST': {'EVAL_FREQ': 0}})
    amp = {'O0': ['AMP_OPT_LEVEL', 'O0'], 'float16': ['AMP_OPT_LEVEL', 'O1', 'AMP_DTYPE', 'float16'],
           'bfloat16': ['AMP_OPT_LEVEL', 'O1', 'AMP_DTYPE', 'bfloat16']}
    resume = []
    for epochs, precision in ((1, 'O0'), (2, 'float16'), (3, 'bfloat16')):
        out = str(tmp_path / precision)
        code = run_inline('main.py', ['--cfg', cfg, '--output', out, *resume, 'TRAIN.EPOCHS', str(epochs),
                                      *amp[precision]], monkeypatch)
        log = capsys.readouterr().out
        assert code in (0, None), log[-3000:]
        if precision == 'float16':
            assert 'autocast dtype torch.float16, GradScaler True' in log
            assert 'has no GradScaler state (saved without float16 loss scaling): loss scaling starts' in log
        if precision == 'bfloat16':
            assert f'its GradScaler state (scale {saved_scale}) is not used, this run has no loss scaling' in log
        assert f'Train: [{epochs - 1}/{epochs}]' in log and f'Train: [{epochs - 2}/' not in log
        resume = ['--resume', os.path.join(run_dir(out), f'ckpt_epoch_{epochs - 1}.pth')]
        assert [r['epoch'] for r in records(run_dir(out)) if 'epoch' in r] == [epochs - 1]
        scaler = torch.load(resume[1], weights_only=True)['scaler']
        if precision == 'float16':  # a fresh scaler's state after 6 steps (any skipped halve the scale)
            saved_scale = scaler['scale']
            assert saved_scale in (2.0 ** 16 / 2 ** k for k in range(7)) and 0 <= scaler['_growth_tracker'] <= 6
        else:
            assert scaler == {}



def logged_lrs(log):
    """{(epoch, step, steps per epoch): LR} of the console's `Train: [e/E][i/n] ... lr X` lines
    (the LR set after step i)."""
    found = re.findall(r'Train: \[(\d+)/\d+\]\[(\d+)/(\d+)\]\s+eta \S+ lr (\S+)', log)
    return {(int(e), int(i), int(n)): float(lr) for e, i, n, lr in found}


@pytest.mark.slow
def test_resume_on_another_world_size_follows_the_lr_curve_rescaled(tiny_config, tmp_path, monkeypatch, capsys):
    """torchrun x2 (epoch 0), resumed on one process (epochs 1-2: twice the steps per epoch, half the
    total batch), resumed on two again (epoch 2): after step i of epoch e of n steps the LR is
    factor(world) * g(e + i / n), the recipe's curve in epochs (linear warm-up over WARMUP_EPOCHS,
    then cosine over EPOCHS) scaled by the linear rule, factor = batch x world x accumulation / 512."""
    from config import load_config_file

    cfg = tiny_config({'TRAIN': {'EPOCHS': 3, 'WARMUP_EPOCHS': 2, 'AUTO_RESUME': True}, 'PRINT_FREQ': 1,
                       'TEST': {'EVAL_FREQ': 0}})
    config = load_config_file(cfg)
    train = config.TRAIN

    def curve(u, world):
        factor = config.DATA.BATCH_SIZE * world / 512
        if u < train.WARMUP_EPOCHS:
            return factor * (train.WARMUP_LR + u * (train.BASE_LR - train.WARMUP_LR) / train.WARMUP_EPOCHS)
        return factor * (train.MIN_LR + (train.BASE_LR - train.MIN_LR) * (1 + math.cos(math.pi * u / train.EPOCHS)) / 2)

    command = ['main.py', '--cfg', cfg, '--output', str(tmp_path / 'out')]
    _, log = run(command, torchrun=2)
    folder = run_dir(tmp_path / 'out')
    for epoch in (1, 2):
        os.remove(os.path.join(folder, f'ckpt_epoch_{epoch}.pth'))
    checked = 0
    for world, resumed_at in ((1, 1), (2, 2)):
        if world == 1:
            assert run_inline('main.py', command[1:], monkeypatch) in (0, None)
            log = capsys.readouterr().out
            os.remove(os.path.join(folder, 'ckpt_epoch_2.pth'))
        else:
            _, log = run(command, torchrun=2)
        saved_world, steps, saved_steps = 3 - world, 6 // world, 6 // (3 - world)
        assert (f'resumed on world size {world} (saved on {saved_world}), {steps} steps per epoch (saved: '
                f'{saved_steps}): the LR curve continues at epoch {resumed_at}, re-scaled x{world / saved_world:g}'
                ) in log
        lrs = logged_lrs(log)
        assert {e for e, _, _ in lrs} == set(range(resumed_at, 3)) and {n for _, _, n in lrs} == {steps}
        for (e, i, n), lr in lrs.items():
            assert lr == pytest.approx(curve(e + i / n, world), rel=1e-5), (world, e, i)
            checked += 1
    assert checked == 6 + 6 + 3


def test_predict_runs_in_the_configs_amp_dtype(deployed, capsys):
    """tools.predict scores under AMP_OPT_LEVEL and AMP_DTYPE, as evaluation does: float16 and
    bfloat16 give their own probabilities (the two differ), each equal to that autocast's."""
    import json

    from engine import predict_video
    from tools import predict

    video = deployed.videos[0]
    got = {}
    for dtype in ('float16', 'bfloat16'):
        capsys.readouterr()
        predict.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, video, '--views', '1x1',
                      '--json', '--device', 'cpu', '--opts', 'AMP_OPT_LEVEL', 'O1', 'AMP_DTYPE', dtype])
        out = capsys.readouterr().out
        top = json.loads(out[out.index('['):out.rindex(']') + 1])[0]['top']
        expected = predict_video(deployed.model, deployed.config, video, 1, 1, device=CPU,
                                 amp_dtype=getattr(torch, dtype))
        got[dtype] = {e['id']: e['prob'] for e in top}
        assert got[dtype] == {i: expected[i].item() for i in got[dtype]}
    assert got['float16'] != got['bfloat16']


MARKER_SAMPLE = '''
import pytest, torch

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_unmarked():
    pass

@pytest.mark.cuda
def test_marked():
    assert torch.cuda.is_available()

def test_plain():
    pass
'''


@pytest.mark.skipif(torch.cuda.is_available(), reason='what a CPU run sees')
def test_a_test_that_needs_cuda_without_the_cuda_marker_fails(tmp_path):
    """tests/helpers/markers.py (loaded by conftest.py): on a CPU run, a test skipped for lack of CUDA
    without the `cuda` marker fails naming itself; a marked one skips; others pass."""
    (tmp_path / 'test_sample.py').write_text(MARKER_SAMPLE)
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rA', '-p', 'tests.helpers.markers', '-p',
                           'no:cacheprovider', '--rootdir', str(tmp_path), str(tmp_path / 'test_sample.py')],
                          cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    out = proc.stdout
    assert proc.returncode == 1, out
    assert 'test_sample.py::test_unmarked skips for lack of CUDA (Skipped: needs CUDA) but has no `cuda` marker' in out
    assert re.search(r'SKIPPED \[1\] .*needs a CUDA device \(cuda marker\)', out) and 'PASSED test_sample.py::test_plain' in out
