"""Data pipeline throughput: clips per second for decode + sample + transform, per worker and for the
full DataLoader, on generated 320x240 videos (like UCF101/HMDB51: 25 fps, AVI, a few seconds).

    python -m benchmarks.bench_data                           # both decoders, 0/2/4 workers
    python -m benchmarks.bench_data --backends pyav --workers 8 --videos 64 --frames 175

It prints figures only; nothing is asserted.
"""
import argparse
import os
import tempfile
import time

import torch

from datasets import build_dataloader, build_val_loader
from datasets.decode import decord
from tests.videos import marker_frames, write_video


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


def config_for(files, root, backend, workers, args):
    from config import get_config

    config = get_config()
    config.defrost()
    config.DATA.ROOT, config.DATA.DECODER = root, backend
    config.DATA.TRAIN_FILE, config.DATA.VAL_FILE, config.DATA.LABEL_LIST = files
    config.MODEL.NUM_CLASSES = 2
    config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE = args.num_frames, args.input_size
    config.DATA.BATCH_SIZE, config.DATA.NUM_WORKERS = args.batch_size, workers
    config.freeze()
    return config


def per_worker(dataset, repeats):
    """Items per second in this process, one thread (as in a DataLoader worker)."""
    dataset[0]  # warm-up
    count, start = 0, time.perf_counter()
    for _ in range(repeats):
        for i in range(len(dataset)):
            dataset[i]
            count += 1
    return count / (time.perf_counter() - start)


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--videos', type=int, default=16)
    parser.add_argument('--frames', type=int, default=150, help='frames per generated video')
    parser.add_argument('--num-frames', type=int, default=8, help='DATA.NUM_FRAMES')
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--backends', nargs='+', default=['decord', 'pyav'] if decord else ['pyav'])
    parser.add_argument('--workers', nargs='+', type=int, default=[0, 2, 4])
    parser.add_argument('--batches', type=int, default=10, help='batches timed per DataLoader')
    parser.add_argument('--repeats', type=int, default=1, help='passes over the videos per worker figure')
    parser.add_argument('--root', help='keep the generated videos here (default: a temporary folder)')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        start = time.perf_counter()
        files = make_videos(root, args.videos, args.frames)
        print(f'{args.videos} videos of {args.frames} frames, 320x240 AVI (mpeg4), '
              f'written in {time.perf_counter() - start:.1f}s; clips of {args.num_frames} frames at '
              f'{args.input_size}px, batch {args.batch_size}; {os.cpu_count()} CPUs')
        torch.set_num_threads(1)
        for backend in args.backends:
            config = config_for(files, root, backend, 0, args)
            train, _, _, _ = build_dataloader(config)
            print(f'[{backend}] per worker: train {per_worker(train, args.repeats):7.1f} clips/s', end='')
            for clips, crops in ((1, 1), (4, 3)):
                dataset, _ = build_val_loader(config, clips, crops)
                rate = per_worker(dataset, args.repeats)
                print(f' | test {clips}x{crops} {rate:6.1f} videos/s ({rate * clips * crops:6.1f} views/s)', end='')
            print()
            for workers in args.workers:
                config = config_for(files, root, backend, workers, args)
                _, _, loader_train, _ = build_dataloader(config)
                _, loader_val = build_val_loader(config, 1, 1)
                print(f'[{backend}] DataLoader {workers} workers: train {full_loader(loader_train, args.batches):7.1f} '
                      f'clips/s | test 1x1 {full_loader(loader_val, args.batches):7.1f} clips/s')
                del loader_train, loader_val


if __name__ == '__main__':
    main()
