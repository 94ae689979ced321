"""GPU training figures per model (clips/s, peak memory, model FLOP utilisation) and the train input
path's clips/s against what the model consumes, side by side in one run.

    python -m benchmarks.bench_gpu --data DIR [--models VFL-Net video-focalnet_base] [--batch 32 64]
        [--steps 10] [--workers 16] [--peak-tflops 989] [--compile]

Training steps go through engine.train_one_epoch (SGD as the recipe, bf16 autocast, gradient
clipping, the loss read back every step as in real training) on clips already on the GPU.
MFU = 2 x fvcore count x 3 x clips/s / peak: fvcore counts a multiply-add as one flop, a training
step is about 3 forward passes. --peak-tflops is the GPU's dense bf16 peak (H200 SXM: ~989).
The input path is the training DataLoader main.py builds (decode, augment, normalise in
--workers processes, pinned, copied to the GPU) over DIR/train.csv, e.g. from
`python -m tools.make_demo_data --out DIR --size 320x240 --frames 48`.
"""
import logging
import sys
import time

import torch
import torch.nn as nn

from config import load_config_file
from engine import train_one_epoch
from models import build_model
from models.flops import count
from utils import cli
from utils.errors import cli_main
from utils.losses import SupervisedLoss
from utils.optim import build_optimizer

NUM_CLASSES = 101


def model_config(name, args, batch):
    opts = ['DATA.NUM_FRAMES', args.frames, 'DATA.INPUT_SIZE', args.size, 'DATA.BATCH_SIZE', batch,
            'MODEL.NUM_CLASSES', NUM_CLASSES, 'AMP_OPT_LEVEL', 'O1']
    return load_config_file(f'configs/ucf101/{name}.yaml', [str(o) for o in opts])


def time_training(config, steps, compile_model, device):
    """(clips/s, step ms, peak GiB) of bf16 training steps at DATA.BATCH_SIZE."""
    torch.manual_seed(0)
    model = build_model(config).to(device)
    if compile_model:
        model = torch.compile(model)
    optimizer = build_optimizer(config, model, 1e-3)
    criterion = SupervisedLoss(nn.CrossEntropyLoss())
    scaler = torch.amp.GradScaler('cuda', enabled=False)
    B, T, S = config.DATA.BATCH_SIZE, config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE
    batch = (torch.randn(B, T, 3, S, S, device=device), torch.randint(0, NUM_CLASSES, (B,), device=device))

    def run(n):
        train_one_epoch(model, criterion, [batch] * n, optimizer, None, scaler, 0, device=device,
                        amp_dtype=torch.bfloat16, clip_grad=config.TRAIN.CLIP_GRAD)

    run(3 if not compile_model else 5)  # warm-up: cudnn autotuning, compilation
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    run(steps)
    torch.cuda.synchronize()
    step = (time.perf_counter() - start) / steps
    return B / step, step * 1000, torch.cuda.max_memory_allocated(device) / 2 ** 30


def time_input_path(args, device):
    """Clips/s of main.py's training input path with --workers workers: the loader's uint8 clips
    through the batch augmentation on the GPU (colour, normalisation, Mixup/CutMix), in steady
    state: the first 2 x workers batches (start-up, prefetched backlog) are not timed."""
    from datasets import build_batch_augment, build_dataloader
    from engine import prepare_batch

    batch = args.input_batch
    opts = ['DATA.ROOT', args.data, 'DATA.TRAIN_FILE', f'{args.data}/train.csv', 'DATA.VAL_FILE',
            f'{args.data}/val.csv', 'DATA.LABEL_LIST', f'{args.data}/labels.csv', 'MODEL.NUM_CLASSES',
            args.num_classes, 'DATA.NUM_WORKERS', args.workers, 'DATA.BATCH_SIZE', batch,
            'DATA.NUM_FRAMES', args.frames, 'DATA.INPUT_SIZE', args.size]
    config = load_config_file('configs/ucf101/VFL-Net.yaml', [str(o) for o in opts])
    _, _, loader, _ = build_dataloader(config)
    batch_augment = build_batch_augment(config, device, rank=0)
    warm, timed = 2 * args.workers, 4 * args.workers
    if len(loader) < warm + timed:
        sys.exit(f'bench_gpu: {args.data}/train.csv gives {len(loader)} batches of {batch}; the input '
                 f'path needs {warm + timed} (generate more clips per class)')
    loader.sampler.set_epoch(0)
    clips = 0
    for i, batch in enumerate(loader):
        shipped = batch[0].dtype
        samples, _ = prepare_batch(batch, device, batch_augment, epoch=0, step=i)
        if i == warm:
            torch.cuda.synchronize()
            start = time.perf_counter()
        elif i > warm:
            clips += samples.shape[0]
        if i == warm + timed:
            break
    torch.cuda.synchronize()
    return clips / (time.perf_counter() - start), shipped


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_gpu', __doc__)
    parser.add_argument('--models', nargs='+', default=['VFL-Net', 'video-focalnet_base'],
                        help='config names under configs/ucf101/')
    parser.add_argument('--batch', nargs='+', type=int, default=[8, 32, 64], help='clips per step to try')
    parser.add_argument('--steps', type=int, default=10, help='timed training steps per setting')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--peak-tflops', type=float, default=989.0, help='dense bf16 peak of the GPU')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--data', help='dataset folder (train.csv, labels.csv) for the input path; '
                                       'omit to skip it')
    parser.add_argument('--num-classes', type=int, default=5, help='classes of --data')
    parser.add_argument('--workers', type=int, default=16, help='loader workers for the input path')
    parser.add_argument('--input-batch', type=int, default=8, help='loader batch for the input path')
    args = cli.parse(parser, argv)
    if not torch.cuda.is_available():
        sys.exit('benchmarks.bench_gpu needs a CUDA GPU (torch.cuda.is_available() is False)')
    device = torch.device('cuda')
    torch.backends.cudnn.benchmark = True
    logging.getLogger('fvcore').setLevel(logging.ERROR)
    print(f'{torch.cuda.get_device_name(device)}, torch {torch.__version__}, bf16 autocast, '
          f'{args.frames} x {args.size}, peak {args.peak_tflops:g} TFLOP/s, compile {args.compile}')

    best = {}
    for name in args.models:
        params, gmacs, _ = count(build_model(model_config(name, args, 1)), args.frames, args.size)
        print(f'{name}: {params / 1e6:.1f}M params, {gmacs:.1f} GFLOPs (fvcore, multiply-adds) per clip')
        for batch in args.batch:
            try:
                clips_s, step_ms, peak_gib = time_training(model_config(name, args, batch), args.steps,
                                                           args.compile, device)
            except torch.cuda.OutOfMemoryError:
                print(f'  batch {batch:4d}: out of memory')
                torch.cuda.empty_cache()
                break
            mfu = 2 * gmacs * 1e9 * 3 * clips_s / (args.peak_tflops * 1e12)
            print(f'  batch {batch:4d}: {clips_s:8.1f} clips/s  step {step_ms:7.1f} ms  '
                  f'peak mem {peak_gib:6.2f} GiB  MFU {mfu * 100:5.1f}%')
            best[name] = max(best.get(name, 0.0), clips_s)
            torch.cuda.empty_cache()

    if args.data:
        input_clips_s, dtype = time_input_path(args, device)
        print(f'input path: {input_clips_s:.1f} clips/s with {args.workers} workers (batch {args.input_batch}, '
              f'workers ship {dtype} clips)')
        for name, clips_s in best.items():
            verdict = 'faster' if input_clips_s >= clips_s else 'SLOWER'
            print(f'  vs {name} training {clips_s:.1f} clips/s: input path {verdict} '
                  f'({input_clips_s / clips_s:.2f}x)')


if __name__ == '__main__':
    cli_main(main)
