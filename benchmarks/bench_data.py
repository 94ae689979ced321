"""Train input path throughput on generated 320x240 AVI videos (mpeg4, 25 fps, like UCF101/HMDB51).

    python -m benchmarks.bench_data --summary       # our path vs the straightforward reference
    python -m benchmarks.bench_data                 # also test views and DataLoaders, 0/2/4 workers
    python -m benchmarks.bench_data --backends pyav --workers 8 --videos 64 --frames 175

Per worker, one thread, at the recipe's settings (RECIPE: 8 frames, 224 input, its AUG.* and decoder):
- reference: decord + per-clip torchvision v2 transforms on the CPU (Resize, RandomResizedCrop,
  flip, RandomApply(ColorJitter), RandomGrayscale, normalise), as a straightforward pipeline does;
- ours: the worker part (decode, crop, flip, uint8) plus the device part (colour jitter, grayscale,
  normalisation, Mixup/CutMix: BatchAugment, on the CPU here) per clip.
Times are CPU seconds of this process (wall time for DataLoaders). It prints figures only; nothing
is asserted. The last line of --summary is
`train clips/s per worker: X` (ours, device part included).
"""
import os
import tempfile
import time

import torch
from torchvision.transforms import v2

from config import load_config_file
from datasets import build_batch_augment, build_dataloader, build_val_loader
from datasets.decode import decord, read_clip, resolve_backend
from datasets.encode import marker_frames, write_video
from datasets.sampling import train_indices, train_offsets
from datasets.transforms import normalize, resize_side
from datasets.video_dataset import flatten_clips
from utils import cli
from utils.errors import cli_main


def clock():
    """CPU seconds of this process (one thread): other load on a shared machine does not count."""
    return time.process_time()


def make_videos(root, count, frames, fps=25, size=(320, 240), ext='.avi'):
    """`count` videos in two classes, with CSVs and a label list; returns (train, val, labels)."""
    rows = []
    for k in range(count):
        rel = f'c{k % 2}/v_c{k % 2}_g{k:02d}_c01{ext}'
        os.makedirs(os.path.join(root, f'c{k % 2}'), exist_ok=True)
        write_video(os.path.join(root, rel), marker_frames(frames, *size, seed=k), fps=fps)
        rows.append(f'{rel},{k % 2}\n')
    for name in ('train.csv', 'val.csv'):
        with open(os.path.join(root, name), 'w') as f:
            f.writelines(rows)
    with open(os.path.join(root, 'labels.csv'), 'w') as f:
        f.write('id,name\n0,c0\n1,c1\n')
    return [os.path.join(root, n) for n in ('train.csv', 'val.csv', 'labels.csv')]


RECIPE = 'configs/ucf101/VFL-Net.yaml'


def config_for(files, root, backend, workers, args, num_sample=1):
    """The recipe's config (RECIPE) over the generated files."""
    config = load_config_file(RECIPE)
    config.defrost()
    config.DATA.ROOT, config.DATA.DECODER = root, backend
    config.DATA.TRAIN_FILE, config.DATA.VAL_FILE, config.DATA.LABEL_LIST = files
    config.MODEL.NUM_CLASSES = 2
    config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE = args.num_frames, args.input_size
    config.DATA.BATCH_SIZE, config.DATA.NUM_WORKERS = args.batch_size, workers
    config.AUG.NUM_SAMPLE = num_sample
    config.freeze()
    return config


def reference_transform(config):
    """The straightforward formulation: torchvision v2 on each uint8 (T, C, H, W) clip on the CPU."""
    aug, size = config.AUG, config.DATA.INPUT_SIZE
    return v2.Compose([
        v2.Resize(resize_side(size), antialias=True),
        v2.RandomResizedCrop(size, scale=tuple(aug.CROP_SCALE), ratio=tuple(aug.CROP_RATIO), antialias=True),
        v2.RandomHorizontalFlip(aug.FLIP_PROB),
        v2.RandomApply([v2.ColorJitter(*aug.COLOR_JITTER)], p=aug.COLOR_JITTER_PROB),
        v2.RandomGrayscale(aug.GRAY_SCALE),
        v2.Lambda(normalize),
    ])


def reference_rate(dataset, config, repeats):
    """Clips per second of decode + the reference transform, one thread."""
    transform, num_frames = reference_transform(config), config.DATA.NUM_FRAMES
    generator = torch.Generator().manual_seed(0)

    def clip(path):
        offsets = train_offsets(num_frames, generator)
        frames, _ = read_clip(path, lambda total: train_indices(total, num_frames, offsets, dataset.sampling),
                              dataset.backend, dataset.short_side)
        return transform(frames)

    clip(dataset.samples[0][0])  # warm-up
    count, start = 0, clock()
    for _ in range(repeats):
        for path, _ in dataset.samples:
            clip(path)
            count += 1
    return count / (clock() - start)


def our_rate(dataset, config, repeats):
    """(clips/s over worker + device part, worker part alone, device part alone), one thread: the
    worker part is dataset[index, epoch] (AUG.NUM_SAMPLE clips per video, collated as the train
    loader does); the device part is BatchAugment on the collated batches."""
    batch_augment = build_batch_augment(config, 'cpu', rank=0)
    num_sample = config.AUG.NUM_SAMPLE
    size = config.DATA.BATCH_SIZE // num_sample  # videos per batch
    collate = flatten_clips if num_sample > 1 else torch.utils.data.default_collate
    dataset[0]  # warm-up
    worker = device = 0.0
    count = 0
    for epoch in range(repeats):
        for first in range(0, len(dataset) - size + 1, size):
            start = clock()
            clips, labels, keys = collate([dataset[index, epoch] for index in range(first, first + size)])
            middle = clock()
            samples, _ = batch_augment(clips, labels, epoch=epoch, step=first // size, sample_indices=keys)
            worker, device = worker + middle - start, device + clock() - middle
            count += clips.shape[0]
    assert clips.dtype == torch.uint8 and samples.dtype == torch.float32
    return count / (worker + device), count / worker, count / device


def num_sample_rates(files, root, backend, args):
    """Our train path at AUG.NUM_SAMPLE 1 and 2, side by side: {K: (together, worker, device)}."""
    rates = {}
    for num_sample in (1, 2):
        config = config_for(files, root, backend, 0, args, num_sample)
        rates[num_sample] = our_rate(build_dataloader(config)[0], config, args.repeats)
    return rates


def per_worker(dataset, repeats):
    """Items per second in this process, one thread (as in a DataLoader worker)."""
    dataset[0]  # warm-up
    count, start = 0, clock()
    for _ in range(repeats):
        for i in range(len(dataset)):
            dataset[i]
            count += 1
    return count / (clock() - start)


def full_loader(loader, batches):
    """Clips per second through the DataLoader, after the first batch (worker start-up)."""
    iterator = iter(loader)
    next(iterator)
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            clips = next(iterator)[0]
        except StopIteration:
            iterator = iter(loader)
            clips = next(iterator)[0]
        count += clips.shape[0] * (clips.shape[1] if clips.ndim == 6 else 1)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_data', __doc__)
    parser.add_argument('--summary', action='store_true',
                        help='only the train path per worker, ours vs the reference (first backend)')
    parser.add_argument('--videos', type=int, default=16)
    parser.add_argument('--frames', type=int, default=150, help='frames per generated video')
    parser.add_argument('--num-frames', type=int, default=8, help='DATA.NUM_FRAMES')
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--backends', nargs='+', default=['decord', 'pyav'] if decord else ['pyav'])
    parser.add_argument('--workers', nargs='+', type=int, default=[0, 2, 4])
    parser.add_argument('--batches', type=int, default=10, help='batches timed per DataLoader')
    parser.add_argument('--repeats', type=int, default=2, help='passes over the videos per worker figure')
    parser.add_argument('--root', help='keep the generated videos here (default: a temporary folder)')
    args = cli.parse(parser, argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        start = time.perf_counter()
        files = make_videos(root, args.videos, args.frames)
        print(f'{args.videos} videos of {args.frames} frames, 320x240 AVI (mpeg4), '
              f'written in {time.perf_counter() - start:.1f}s; clips of {args.num_frames} frames at '
              f'{args.input_size}px, batch {args.batch_size}; {os.cpu_count()} CPUs, 1 thread per figure')
        torch.set_num_threads(1)
        reference_backend = 'decord' if decord else 'pyav'
        config = config_for(files, root, reference_backend, 0, args)
        reference = reference_rate(build_dataloader(config)[0], config, args.repeats)
        print(f'reference ({reference_backend} + per-clip torchvision v2 on the CPU): {reference:6.1f} clips/s')
        default_backend = resolve_backend(load_config_file(RECIPE).DATA.DECODER)
        rates = {}
        for backend in dict.fromkeys(args.backends + [default_backend]):
            config = config_for(files, root, backend, 0, args)
            train, _, _, _ = build_dataloader(config)
            rates[backend], worker, device = our_rate(train, config, args.repeats)
            print(f'ours [{backend}]: worker part {worker:6.1f} clips/s, device part (CPU) {device:6.1f} clips/s, '
                  f'together {rates[backend]:6.1f} clips/s = {rates[backend] / reference:.2f}x the reference')
        repeated = num_sample_rates(files, root, default_backend, args)
        (one, one_worker, _), (two, two_worker, _) = repeated[1], repeated[2]
        print(f'AUG.NUM_SAMPLE 2 vs 1 [{default_backend}]: worker part {two_worker:6.1f} vs {one_worker:6.1f} '
              f'clips/s = {two_worker / one_worker:.2f}x, together {two:6.1f} vs {one:6.1f} clips/s = {two / one:.2f}x')
        if args.summary:
            print(f'{RECIPE} (DATA.DECODER {default_backend}): {rates[default_backend] / reference:.2f}x the reference')
            print(f'train clips/s per worker: {rates[default_backend]:.1f}')
            return
        for backend in args.backends:
            config = config_for(files, root, backend, 0, args)
            for clips, crops in ((1, 1), (4, 3)):
                dataset, _ = build_val_loader(config, clips, crops)
                rate = per_worker(dataset, args.repeats)
                print(f'[{backend}] per worker: test {clips}x{crops} {rate:6.1f} videos/s '
                      f'({rate * clips * crops:6.1f} views/s)')
            for workers in args.workers:
                config = config_for(files, root, backend, workers, args)
                _, _, loader_train, _ = build_dataloader(config)
                _, loader_val = build_val_loader(config, 1, 1)
                print(f'[{backend}] DataLoader {workers} workers: train (worker part) '
                      f'{full_loader(loader_train, args.batches):7.1f} clips/s | test 1x1 '
                      f'{full_loader(loader_val, args.batches):7.1f} clips/s')
                del loader_train, loader_val


if __name__ == '__main__':
    cli_main(main)
