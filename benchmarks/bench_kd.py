"""Time a student-only training step, an online distillation step (teacher forward + student step)
and a distillation step from a teacher cache (KD.TEACHER_CACHE), side by side on the same input,
and print their ratios to the student-only step.

    python -m benchmarks.bench_kd --cfg configs/ucf101/VFL-Net_kd.yaml [--steps 5] [--opts ...]

On a CPU, shrink the input: --opts DATA.INPUT_SIZE 112 DATA.BATCH_SIZE 2
"""
import os
import tempfile
import time

import torch
import torch.nn as nn

from config import load_config_file
from engine import amp_settings, autocast, train_one_epoch
from models import build_model
from utils import cli
from utils.errors import cli_main
from utils.losses import CachedDistillationLoss, DistillationLoss, SupervisedLoss
from utils.teacher_cache import CachedTeacher, TeacherCacheWriter, input_probe


def time_steps(model, criterion, batch, steps, device, amp_dtype):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    def run(n):
        if hasattr(criterion, 'set_epoch'):
            criterion.set_epoch(0)  # the cache's first step, as at the start of an epoch
        train_one_epoch(model, criterion, [batch] * n, optimizer, None, scaler, 0, device=device,
                        amp_dtype=amp_dtype, clip_grad=5.0)

    run(1)  # warm-up
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def cached_teacher(config, teacher, batch, steps, device, amp_dtype, folder):
    """A one-epoch teacher cache of `steps` steps of `batch`, written and opened as main_KD.py does."""
    path = os.path.join(folder, 'teacher.pth')
    torch.save({'model': teacher.state_dict()}, path)
    config.defrost()
    config.TEACHER_MODEL.PRETRAINED_PATH, config.TRAIN.EPOCHS, config.DATA.TRAIN_FILE = path, 1, ''
    config.freeze()
    samples = batch[0].to(device)
    with torch.inference_mode(), autocast(device, amp_dtype):
        logits = teacher(samples)
    writer = TeacherCacheWriter(os.path.join(folder, 'cache'), config, 1, 0, steps)
    writer.write_meta()
    writer.write_epoch(0, [logits] * steps, [input_probe(samples)] * steps)
    return CachedTeacher(os.path.join(folder, 'cache'), config, 1, 0, device)


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_kd', __doc__)
    parser.add_argument('--cfg', default='configs/ucf101/VFL-Net_kd.yaml')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=2, help='alternate the measurements this often')
    parser.add_argument('--opts', nargs='+', default=[])
    args = cli.parse(parser, argv)
    config = load_config_file(args.cfg, args.opts)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    amp_dtype, _ = amp_settings(config.AMP_OPT_LEVEL, device, config.AMP_DTYPE)
    torch.manual_seed(0)
    student = build_model(config).to(device)
    teacher = build_model(config, config.TEACHER_MODEL).to(device).eval().requires_grad_(False)
    T, S, B = config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE, config.DATA.BATCH_SIZE
    batch = (torch.randn(B, T, 3, S, S), torch.randint(0, config.MODEL.NUM_CLASSES, (B,)))
    alpha, temperature = config.KD.ALPHA, config.KD.TEMPERATURE
    with tempfile.TemporaryDirectory() as folder:
        criteria = {
            'student step': SupervisedLoss(nn.CrossEntropyLoss()),
            'online distillation step': DistillationLoss(nn.CrossEntropyLoss(), teacher, alpha, temperature),
            'cached distillation step': CachedDistillationLoss(
                nn.CrossEntropyLoss(), cached_teacher(config, teacher, batch, args.steps, device, amp_dtype,
                                                      folder), alpha, temperature),
        }
        print(f'{config.MODEL.TYPE} student, {config.TEACHER_MODEL.TYPE} teacher, batch {B} x {T} x {S}x{S}, '
              f'{device}, AMP {config.AMP_OPT_LEVEL}')
        results = {name: [] for name in criteria}
        for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
            for name, criterion in criteria.items():
                results[name].append(time_steps(student, criterion, batch, args.steps, device, amp_dtype))
    best = {k: min(v) for k, v in results.items()}
    for name, seconds in best.items():
        print(f'{name:>24}: {seconds * 1000:8.1f} ms/step  {B / seconds:7.2f} clips/s')
    student_step = best['student step']
    print(f'online distillation / student: {best["online distillation step"] / student_step:.2f}x')
    print(f'cached distillation / student: {best["cached distillation step"] / student_step:.2f}x '
          '(target <= 1.1x)')


if __name__ == '__main__':
    cli_main(main)
