"""Time a student-only training step against a distillation step (teacher forward + student step)
on the same input, side by side, and print the ratio.

    python -m benchmarks.bench_kd --cfg configs/ucf101/VFL-Net_kd.yaml [--steps 5] [--opts ...]

On a CPU, shrink the input: --opts DATA.INPUT_SIZE 112 DATA.BATCH_SIZE 2
"""
import argparse
import time

import torch
import torch.nn as nn

from config import load_config_file
from engine import amp_settings, train_one_epoch
from models import build_model
from utils.losses import DistillationLoss, SupervisedLoss


class NoSchedule:
    def step_update(self, num_updates):
        pass


def time_steps(model, criterion, batch, steps, device, amp_dtype):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    run = lambda n: train_one_epoch(model, criterion, [batch] * n, optimizer, NoSchedule(), scaler, 0,  # noqa: E731
                                    device=device, amp_dtype=amp_dtype, clip_grad=5.0)
    run(1)  # warm-up
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(steps)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cfg', default='configs/ucf101/VFL-Net_kd.yaml')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=2, help='alternate the two measurements this often')
    parser.add_argument('--opts', nargs='+', default=[])
    args = parser.parse_args()
    config = load_config_file(args.cfg, args.opts)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    amp_dtype, _ = amp_settings(config.AMP_OPT_LEVEL, device)
    torch.manual_seed(0)
    student = build_model(config).to(device)
    teacher = build_model(config, config.TEACHER_MODEL).to(device).eval().requires_grad_(False)
    T, S, B = config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE, config.DATA.BATCH_SIZE
    batch = (torch.randn(B, T, 3, S, S), torch.randint(0, config.MODEL.NUM_CLASSES, (B,)))
    plain = SupervisedLoss(nn.CrossEntropyLoss())
    kd = DistillationLoss(nn.CrossEntropyLoss(), teacher, config.KD.ALPHA, config.KD.TEMPERATURE)
    print(f'{config.MODEL.TYPE} student, {config.TEACHER_MODEL.TYPE} teacher, batch {B} x {T} x {S}x{S}, '
          f'{device}, AMP {config.AMP_OPT_LEVEL}')
    results = {'student step': [], 'distillation step': []}
    for _ in range(args.rounds):  # interleaved, so machine noise hits both alike
        results['student step'].append(time_steps(student, plain, batch, args.steps, device, amp_dtype))
        results['distillation step'].append(time_steps(student, kd, batch, args.steps, device, amp_dtype))
    best = {k: min(v) for k, v in results.items()}
    for name, seconds in best.items():
        print(f'{name:>18}: {seconds * 1000:8.1f} ms/step  {B / seconds:7.2f} clips/s')
    print(f'distillation / student: {best["distillation step"] / best["student step"]:.2f}x')


if __name__ == '__main__':
    main()
