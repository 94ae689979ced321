"""Decode every video listed in a config's annotation files once and report the bad ones.

    python -m datasets.check --cfg configs/ucf101/VFL-Net.yaml [--opts DATA.ROOT /data/UCF-101]

Bad: missing, empty, corrupt or undecodable (exit status 1 if any). Short: the container reports
more frames than decode; training samples from the frames that decode, so these are listed but only
count as bad with --strict.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from config import load_config_file

from .annotations import AnnotationError, read_annotations, read_label_list
from .decode import VideoDecodeError, resolve_backend, scan_video


def _scan(job):
    path, backend = job
    try:
        reported, decoded = scan_video(path, backend)
    except VideoDecodeError as err:
        return path, 'bad', err.reason
    if decoded < reported:
        return path, 'short', f'{decoded} of {reported} reported frames decode'
    return path, 'ok', f'{decoded} frames'


class Progress:
    """A one-line text progress bar (tqdm is not a dependency); plain lines when not a terminal."""

    def __init__(self, total, stream=None, width=30):
        self.total, self.stream, self.width = total, stream or sys.stderr, width
        self.done, self.start, self.last = 0, time.time(), 0.0
        self.tty = self.stream.isatty()

    def update(self, bad):
        self.done += 1
        now = time.time()
        if self.done < self.total and now - self.last < (0.2 if self.tty else 10):
            return
        self.last = now
        filled = int(self.width * self.done / max(1, self.total))
        rate = self.done / max(now - self.start, 1e-6)
        line = (f'[{"#" * filled}{"." * (self.width - filled)}] {self.done}/{self.total} '
                f'{rate:.1f} videos/s, {bad} bad')
        self.stream.write(('\r' + line) if self.tty else line + '\n')
        if self.tty and self.done == self.total:
            self.stream.write('\n')
        self.stream.flush()


def check(samples, backend, workers=1, stream=None):
    """[(path, status, detail)] for every path, status in ok / short / bad."""
    jobs = [(path, backend) for path in dict.fromkeys(path for path, _ in samples)]
    progress, results, bad = Progress(len(jobs), stream), [], 0
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            iterator = pool.map(_scan, jobs, chunksize=8)
            for result in iterator:
                results.append(result)
                bad += result[1] == 'bad'
                progress.update(bad)
    else:
        for job in jobs:
            results.append(_scan(job))
            bad += results[-1][1] == 'bad'
            progress.update(bad)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m datasets.check', description=__doc__.split('\n\n')[0])
    parser.add_argument('--cfg', required=True, help='config file (DATA.ROOT, TRAIN_FILE, VAL_FILE, ...)')
    parser.add_argument('--opts', nargs='+', default=[], help='KEY VALUE overrides')
    parser.add_argument('--split', choices=('train', 'val', 'both'), default='both')
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument('--strict', action='store_true', help='count short videos as bad')
    parser.add_argument('--report', help='also write the bad and short files to this text file')
    args = parser.parse_args(argv)

    config = load_config_file(args.cfg, args.opts)
    data, classes = config.DATA, config.MODEL.NUM_CLASSES
    try:
        if data.LABEL_LIST:
            read_label_list(data.LABEL_LIST, classes)
        files = [data.TRAIN_FILE] * (args.split != 'val') + [data.VAL_FILE] * (args.split != 'train')
        samples = [s for f in files for s in read_annotations(f, data.ROOT, classes)]
    except AnnotationError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    backend = resolve_backend(data.DECODER)
    print(f'decoding {len(samples)} listed videos with {backend}, {args.workers} worker(s)', file=sys.stderr)
    results = check(samples, backend, args.workers)
    problems = [r for r in results if r[1] != 'ok']
    lines = [f'{status.upper()} {path}: {detail}' for path, status, detail in problems]
    for line in lines:
        print(line)
    if args.report:
        with open(args.report, 'w') as f:
            f.writelines(line + '\n' for line in lines)
    bad = sum(status == 'bad' or (args.strict and status == 'short') for _, status, _ in results)
    short = sum(status == 'short' for _, status, _ in results)
    print(f'{len(results)} videos: {bad} bad, {short} short (fewer frames decode than reported)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
