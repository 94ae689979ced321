"""decord vs PyAV, speed and correctness, on 320x240 MPEG-4 AVIs like the recipe's (UCF101, HMDB51):
with and without B-frames (the published files are both kinds), or on files you name.

    python -m benchmarks.bench_decode                      # generated AVIs, 8 per kind, 150 frames
    python -m benchmarks.bench_decode --files 'data/demo/train/*/*.mp4' --videos 32

Per video, the recipe's training draw (8 frames, one per segment) is read with decord's random
access (`get_batch`, forced even where DATA.DECODER decord would not use it) and with PyAV
(timestamp index + keyframe seeks); every frame read is compared with an in-order decode. CPU
seconds of this one thread. It prints figures only; nothing is asserted.
"""
import glob
import os
import tempfile
import time

import av
import numpy as np
import torch

from datasets import decode
from datasets.encode import marker_frames, write_video
from datasets.probe import decord_trouble, probe
from datasets.sampling import Sampling, train_indices, train_offsets
from utils import cli
from utils.errors import cli_main

KINDS = {'MPEG-4 AVI without B-frames': {'q:v': '3', 'g': '12'},
         'MPEG-4 AVI with B-frames': {'q:v': '3', 'g': '12', 'bf': '2'}}


def in_order(path):
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])


def measure(paths, num_frames, repeats):
    """{decoder: (clips/s, frames compared, frames off by > 2 levels mean, worst mean difference)}."""
    readers = {'decord': lambda p, s: decode._decord_read(p, s, None, probe(p)),
               'pyav': lambda p, s: decode._pyav_read(p, s, None)}
    if decode.decord is None:
        del readers['decord']
    references = {p: in_order(p) for p in paths}
    out = {}
    for name, read in readers.items():
        seconds, compared, wrong, worst = 0.0, 0, 0, 0.0
        for r in range(repeats):
            for k, path in enumerate(paths):
                offsets = train_offsets(num_frames, torch.Generator().manual_seed(r * 1000 + k))
                sample = lambda total: train_indices(total, num_frames, offsets, Sampling())
                start = time.process_time()
                frames, indices = read(path, sample)
                seconds += time.process_time() - start
                levels = np.abs(frames.astype(np.int16) - references[path][indices]).mean(axis=(1, 2, 3))
                compared, wrong, worst = compared + len(levels), wrong + int((levels > 2).sum()), max(worst, levels.max())
        out[name] = (repeats * len(paths) / max(seconds, 1e-9), compared, wrong, worst)
    return out


def report(title, paths, args):
    results = measure(paths, args.num_frames, args.repeats)
    trouble = {decord_trouble(probe(p)) for p in paths} - {None}
    print(f'{title}: {len(paths)} videos; DATA.DECODER decord reads them with '
          f'{"PyAV (" + "; ".join(sorted(trouble)) + ")" if trouble else "decord"}')
    for name, (rate, compared, wrong, worst) in results.items():
        print(f'  {name:6s} {rate:7.1f} clips/s per thread; {wrong}/{compared} frames differ from the in-order '
              f'decode (worst mean difference {worst:.1f} levels)')
    if len(results) == 2:
        print(f'  PyAV / decord speed: {results["pyav"][0] / results["decord"][0]:.2f}x')


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_decode', __doc__)
    parser.add_argument('--videos', type=int, default=8, help='videos per kind (or the first N of --files)')
    parser.add_argument('--frames', type=int, default=150, help='frames per generated video')
    parser.add_argument('--size', type=int, nargs=2, default=(320, 240), metavar=('W', 'H'))
    parser.add_argument('--num-frames', type=int, default=8, help='DATA.NUM_FRAMES')
    parser.add_argument('--repeats', type=int, default=3, help='draws per video')
    parser.add_argument('--files', help='a glob of existing videos to measure instead')
    args = cli.parse(parser, argv)
    torch.set_num_threads(1)
    if args.files:
        paths = sorted(glob.glob(args.files))[:args.videos]
        if not paths:
            parser.error(f'--files {args.files!r} matches no file')
        report(args.files, paths, args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for kind, options in KINDS.items():
            paths = [write_video(os.path.join(tmp, f'{len(options)}_{k}.avi'),
                                 marker_frames(args.frames, *args.size, seed=k), options=options)
                     for k in range(args.videos)]
            report(f'{kind}, {args.size[0]}x{args.size[1]}, {args.frames} frames', paths, args)


if __name__ == '__main__':
    cli_main(main)
