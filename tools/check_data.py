"""Decode every video listed in a config's annotation files once and report the bad ones.

    python -m tools.check_data --cfg configs/ucf101/VFL-Net.yaml [--opts DATA.ROOT /data/UCF-101]

Bad: missing, empty or undecodable; mismatch: DATA.DECODER returns other frames than an in-order
decode; corrupt: the decoder reports damage (error messages, counted) that it conceals or skips
(exit status 1 if any of these). Short: the container reports more frames than decode; training
samples from the frames that decode, so these are listed but only count as bad with --strict. A
wrong annotation file or class list is an error (exit status 2).
"""
import os
import sys

from config import load_config_file
from datasets.annotations import read_annotations, read_label_list
from datasets.check import STATUSES, check
from datasets.decode import resolve_backend
from utils import cli
from utils.errors import cli_main


def main(argv=None):
    parser = cli.command_parser('python -m tools.check_data', __doc__)
    cli.add_config_args(parser)
    parser.add_argument('--split', choices=('train', 'val', 'both'), default='both')
    parser.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument('--strict', action='store_true', help='count short videos as bad')
    parser.add_argument('--report', help='also write the bad and short files to this text file')
    args = cli.parse(parser, argv)

    config = load_config_file(args.cfg, args.opts)
    data, classes = config.DATA, config.MODEL.NUM_CLASSES
    if data.LABEL_LIST:
        read_label_list(data.LABEL_LIST, classes)
    files = [data.TRAIN_FILE] * (args.split != 'val') + [data.VAL_FILE] * (args.split != 'train')
    samples = [s for f in files for s in read_annotations(f, data.ROOT, classes)]
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
    counts = {s: sum(status == s for _, status, _ in results) for s in STATUSES}
    failed = len(results) - counts['ok'] - (0 if args.strict else counts['short'])
    print(f'{len(results)} videos: {counts["bad"]} bad, {counts["short"]} short (fewer frames decode than '
          f'reported), {counts["corrupt"]} corrupt (the decoder reports damage), {counts["mismatch"]} '
          f'mismatched ({backend} frames differ from an in-order decode)')
    return 1 if failed else 0


if __name__ == '__main__':
    cli_main(main)
