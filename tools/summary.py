"""A results table from training runs: model, params, GFLOPs, top-1, top-5 of the final evaluation.

    python -m tools.summary teacher=output/demo/demo/teacher/RUN student=... distilled=...
    python -m tools.summary --per-class output/ucf101/VFL-Net/RUN/eval_4x3    # worst classes first
"""
import os

from config import load_config_file
from models import build_model
from models.flops import count
from utils import cli
from utils.errors import UserError, cli_main
from utils.logger import final_record
from utils.report import read_per_class


def finished(run_dir):
    """The run's final record; a folder that is no finished run is the user's mistake."""
    record = final_record(run_dir)
    if record is None:
        path = os.path.join(run_dir, 'log.jsonl')
        if not os.path.isfile(path):
            raise UserError(f'{path}: no log.jsonl; is {run_dir} a finished run folder?')
        raise UserError(f'{path}: no final evaluation recorded (did the run finish?)')
    return record


def summarize(runs):
    """Rows (name, params M, GFLOPs, top-1, top-5, views) for {name: run_dir}."""
    rows = []
    for name, run_dir in runs.items():
        config = load_config_file(os.path.join(run_dir, 'config.yaml'))
        params, gflops, _ = count(build_model(config), config.DATA.NUM_FRAMES, config.DATA.INPUT_SIZE)
        rec = finished(run_dir)
        rows.append((name, params / 1e6, gflops, rec['test_acc1'], rec['test_acc5'], rec['test_num_views']))
    return rows


def format_table(rows):
    lines = [f'| {"model":<12} | {"params":>8} | {"GFLOPs":>7} | {"top-1":>6} | {"top-5":>6} | views |',
             f'|{"-" * 14}|{"-" * 10}|{"-" * 9}|{"-" * 8}|{"-" * 8}|-------|']
    for name, params, gflops, acc1, acc5, views in rows:
        lines.append(f'| {name:<12} | {params:7.3f}M | {gflops:7.3f} | {acc1:6.1f} | {acc5:6.1f} | {views:>5} |')
    return '\n'.join(lines)


def per_class_table(folder, limit=None):
    """The per_class.csv an evaluation wrote into `folder` as a table, lowest top-1 first."""
    path = os.path.join(folder, 'per_class.csv')
    if not os.path.isfile(path):
        raise UserError(f'{path}: no per-class report (written by main.py --eval and at the end of training)')
    rows = sorted(read_per_class(path), key=lambda r: (r[3] != r[3], r[3], r[0]))[:limit]  # NaN (no videos) last
    width = max([5] + [len(r[1]) for r in rows])
    lines = [f'| {"id":>4} | {"class":<{width}} | videos | top-1 | top-5 |',
             f'|{"-" * 6}|{"-" * (width + 2)}|--------|-------|-------|']
    lines += [f'| {i:>4} | {name:<{width}} | {videos:>6} | {top1:5.1f} | {top5:5.1f} |'
              for i, name, videos, top1, top5 in rows]
    return '\n'.join(lines)


def main(argv=None):
    parser = cli.command_parser('python -m tools.summary', __doc__)
    parser.add_argument('runs', nargs='+', metavar='NAME=RUN_DIR')
    parser.add_argument('--per-class', action='store_true',
                        help="each folder's per_class.csv (a run or an eval_* folder), lowest top-1 first")
    parser.add_argument('--limit', type=int, help='with --per-class: only the first N classes')
    args = cli.parse(parser, argv)
    runs = dict(item.split('=', 1) if '=' in item else (item, item) for item in args.runs)
    if args.per_class:
        print('\n\n'.join(f'{name}\n{per_class_table(folder, args.limit)}' for name, folder in runs.items()))
        return
    print(format_table(summarize(runs)))


if __name__ == '__main__':
    cli_main(main)
