"""GPU training figures per model and precision (clips/s, peak memory, model FLOP utilisation) and
the train input path's clips/s against what the model consumes, side by side in one run.

    python -m benchmarks.bench_gpu --data DIR [--models VFL-Net video-focalnet_base] [--batch 32 64]
        [--dtypes float16 bfloat16] [--steps 10] [--workers 16] [--peak-tflops 989] [--compile]

Training steps go through engine.train_one_epoch (SGD as the recipe, gradient clipping, the loss
read back every step as in real training) on clips already on the GPU, in each --dtypes precision:
float16 autocast with a GradScaler (the recipe's AMP O1) and bfloat16 autocast without one.
MFU = 2 x fvcore count x 3 x clips/s / peak: fvcore counts a multiply-add as one flop, a training
step is about 3 forward passes. --peak-tflops is the GPU's dense float16/bfloat16 peak (H100 and
H200 SXM: ~989). The input path is the training DataLoader main.py builds (decode, augment,
normalise in --workers processes, pinned, copied to the GPU) over DIR/train.csv, e.g. from
`python -m tools.make_demo_data --out DIR --size 320x240 --frames 48`. --device cpu runs the same
code on the CPU at whatever sizes are given (scripts/gpu_check.sh's dry run); its figures say
nothing about a GPU.
"""
import logging
import time

import torch
import torch.nn as nn

from config import load_config_file
from engine import train_one_epoch
from models import build_model
from models.flops import count
from utils import cli
from utils.errors import UserError, cli_main
from utils.losses import SupervisedLoss
from utils.optim import build_optimizer

NUM_CLASSES = 101


def model_config(name, args, batch):
    opts = ['DATA.NUM_FRAMES', args.frames, 'DATA.INPUT_SIZE', args.size, 'DATA.BATCH_SIZE', batch,
            'MODEL.NUM_CLASSES', NUM_CLASSES]
    return load_config_file(f'configs/ucf101/{name}.yaml', [str(o) for o in opts])


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_training(config, steps, compile_model, device, dtype):
    """(clips/s, step ms, peak GiB or None on a CPU) of training steps at DATA.BATCH_SIZE under
    autocast `dtype` ('float16': with a GradScaler, as the recipe; 'bfloat16': without)."""
    torch.manual_seed(0)
    model = build_model(config).to(device)
    if compile_model:
        model = torch.compile(model)
    optimizer = build_optimizer(config, model, 1e-3)
    criterion = SupervisedLoss(nn.CrossEntropyLoss())
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == 'float16')
    B, T, S = config.DATA.BATCH_SIZE, config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE
    batch = (torch.randn(B, T, 3, S, S, device=device), torch.randint(0, NUM_CLASSES, (B,), device=device))

    def run(n):
        train_one_epoch(model, criterion, [batch] * n, optimizer, None, scaler, 0, device=device,
                        amp_dtype=getattr(torch, dtype), clip_grad=config.TRAIN.CLIP_GRAD)

    run(3 if not compile_model else 5)  # warm-up: cudnn autotuning, compilation, the scaler's first scales
    synchronize(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    run(steps)
    synchronize(device)
    step = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == 'cuda' else None
    return B / step, step * 1000, peak


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
        raise UserError(f'{args.data}/train.csv gives {len(loader)} batches of {batch}; the input path '
                        f'needs {warm + timed} (generate more clips per class)')
    loader.sampler.set_epoch(0)
    clips = 0
    for i, batch in enumerate(loader):
        shipped = batch[0].dtype
        samples, _ = prepare_batch(batch, device, batch_augment, epoch=0, step=i)
        if i == warm:
            synchronize(device)
            start = time.perf_counter()
        elif i > warm:
            clips += samples.shape[0]
        if i == warm + timed:
            break
    synchronize(device)
    return clips / (time.perf_counter() - start), shipped


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_gpu', __doc__)
    parser.add_argument('--models', nargs='+', default=['VFL-Net', 'video-focalnet_base'],
                        help='config names under configs/ucf101/')
    parser.add_argument('--batch', nargs='+', type=int, default=[8, 32, 64], help='clips per step to try')
    parser.add_argument('--steps', type=int, default=10, help='timed training steps per setting')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--dtypes', nargs='+', choices=['float16', 'bfloat16'], default=['float16', 'bfloat16'],
                        help='autocast precisions to time: float16 with a GradScaler (the recipe), bfloat16')
    parser.add_argument('--peak-tflops', type=float, default=989.0, help='dense float16/bfloat16 peak of the GPU')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--data', help='dataset folder (train.csv, labels.csv) for the input path; '
                                       'omit to skip it')
    parser.add_argument('--num-classes', type=int, help='classes of --data (default: the rows of its labels.csv)')
    parser.add_argument('--workers', type=int, default=16, help='loader workers for the input path')
    parser.add_argument('--input-batch', type=int, default=8, help='loader batch for the input path')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda',
                        help='cpu: a dry run of the same code (scripts/gpu_check.sh GPU_CHECK_DEVICE=cpu)')
    args = cli.parse(parser, argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise UserError('benchmarks.bench_gpu needs a CUDA GPU (torch.cuda.is_available() is False); '
                        '--device cpu runs it as a dry run')
    device = torch.device(args.device)
    if args.data and args.num_classes is None:
        with open(f'{args.data}/labels.csv') as f:
            args.num_classes = sum(1 for line in f if line.strip()) - 1  # the id,name header
    dtypes = list(args.dtypes)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        if 'bfloat16' in dtypes and not torch.cuda.is_bf16_supported():
            print('bfloat16 is not supported on this GPU: not timed')
            dtypes.remove('bfloat16')
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU (dry run)'
    logging.getLogger('fvcore').setLevel(logging.ERROR)
    print(f'{name}, torch {torch.__version__}, {args.frames} x {args.size}, '
          f'peak {args.peak_tflops:g} TFLOP/s, compile {args.compile}')

    best = {}
    for model_name in args.models:
        params, gmacs, _ = count(build_model(model_config(model_name, args, 1)), args.frames, args.size)
        print(f'{model_name}: {params / 1e6:.1f}M params, {gmacs:.1f} GFLOPs (fvcore, multiply-adds) per clip')
        for dtype in dtypes:
            label = 'float16 + GradScaler' if dtype == 'float16' else 'bfloat16'
            for batch in args.batch:
                try:
                    clips_s, step_ms, peak_gib = time_training(model_config(model_name, args, batch), args.steps,
                                                               args.compile, device, dtype)
                except torch.cuda.OutOfMemoryError:
                    print(f'  {label:>20} batch {batch:4d}: out of memory')
                    torch.cuda.empty_cache()
                    break
                mfu = 2 * gmacs * 1e9 * 3 * clips_s / (args.peak_tflops * 1e12)
                memory = f'{peak_gib:6.2f} GiB' if peak_gib is not None else '     - GiB'
                print(f'  {label:>20} batch {batch:4d}: {clips_s:8.1f} clips/s  step {step_ms:7.1f} ms  '
                      f'peak mem {memory}  MFU {mfu * 100:5.1f}%')
                best[model_name] = max(best.get(model_name, 0.0), clips_s)
                if device.type == 'cuda':
                    torch.cuda.empty_cache()

    if args.data:
        input_clips_s, dtype = time_input_path(args, device)
        print(f'input path: {input_clips_s:.1f} clips/s with {args.workers} workers (batch {args.input_batch}, '
              f'workers ship {dtype} clips)')
        for model_name, clips_s in best.items():
            verdict = 'faster' if input_clips_s >= clips_s else 'SLOWER'
            print(f'  vs {model_name} training {clips_s:.1f} clips/s: input path {verdict} '
                  f'({input_clips_s / clips_s:.2f}x)')


if __name__ == '__main__':
    cli_main(main)
