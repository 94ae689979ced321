"""Train one distilled student per cell of a grid of config values, all from one cached teacher, and
tabulate them: the paper's forward-KL ablation in one command.

    python -m tools.sweep --cfg configs/demo/student_kd.yaml --out output/demo_ablation \\
        --baseline configs/demo/student.yaml KD.ALPHA 0.2,0.5,0.9 KD.TEMPERATURE 1,4,10

The teacher's logits are recorded once (`main_KD.py --cache-teacher` into --cache, by default
OUT/teacher_cache, unless it is complete already) and every cell replays them, so a cell costs what a
student trained alone costs. Each cell is a `main_KD.py` run of its own (under torchrun with --gpus
N) into OUT/cells/<cell>/; its console goes to OUT/logs/<cell>.log. The same command run again skips
finished cells and resumes an interrupted one from its last checkpoint (TRAIN.AUTO_RESUME; one is
saved every SAVE_FREQ epochs). A cell that fails is marked failed with its last error line and the
sweep goes on; the exit status is then 1. At the end: OUT/sweep.md, OUT/sweep.csv and OUT/sweep.png
(top-1 over the first two keys, the baseline beside it).

--baseline is a finished run folder, or a config file that the sweep trains with main.py (the
student alone, with the same --opts) into OUT/baseline/.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

from config import load_config_file, parse_option
from utils import cli
from utils.errors import UserError, cli_main
from utils.logger import final_record, setup_logging
from utils.sweep import cell_label, cell_name, cells, format_table, heat_map, parse_grid, write_csv
from utils.teacher_cache import compare_fingerprints, epoch_file, fingerprint, read_meta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP_KEYS = ('KD.TEACHER_CACHE', 'TRAIN.AUTO_RESUME', 'OUTPUT')  # the sweep sets these itself


class SweepError(UserError, ValueError):
    """A sweep that cannot start: bad --baseline, a cell folder of other settings, a failed cache."""


class Job:
    """One training (a cell, the baseline or the caching pass): its command line and config."""

    def __init__(self, name, cell, script, cfg, output, overrides, cache_dir=None):
        self.name, self.cell, self.script = name, cell, script
        self.args = ['--cfg', cfg, '--output', output, *overrides]
        # The config exactly as the script builds it (main.py and main_KD.py share parse_option).
        self.config = parse_option(script, argv=self.args)[1]
        self.run_dir = self.config.OUTPUT
        if cache_dir:  # the caching pass: main_KD.py --cache-teacher writes into the cache folder
            self.args, self.run_dir = ['--cfg', cfg, '--cache-teacher', cache_dir, *overrides], cache_dir

    def command(self, gpus):
        script = os.path.join(ROOT, self.script)
        if gpus:
            return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
                    str(gpus), script, *self.args]
        return [sys.executable, script, *self.args]


def flat(node, prefix=''):
    out = {}
    for key, value in node.items():
        out.update(flat(value, f'{prefix}{key}.') if hasattr(value, 'items') else {f'{prefix}{key}': value})
    return out


def same_path(a, b):
    """Two spellings of one file or folder (relative and absolute, say) are one setting."""
    return isinstance(a, str) and isinstance(b, str) and os.path.exists(a) and os.path.exists(b) \
        and os.path.samefile(a, b)


def check_same_settings(job):
    """A cell folder that holds a run of other settings (the grid or --opts changed since) is not
    resumed or reused: name the keys that differ."""
    path = os.path.join(job.run_dir, 'config.yaml')
    if not os.path.isfile(path):
        return
    old, new = flat(load_config_file(path)), flat(job.config)
    diffs = [f'{k} {old.get(k)!r} there, {v!r} now' for k, v in new.items()
             if old.get(k) != v and not same_path(old.get(k), v)]
    if diffs:
        raise SweepError(f'{job.run_dir} holds a run of other settings ({"; ".join(diffs)}): give the '
                         'sweep another --out, or delete that folder')


def result_of(cell, run_dir, record=None, seconds=None, error=''):
    """A result row (utils/sweep.py) from a run's final record; failed when there is none."""
    if record is None:
        return dict(cell=cell, status='failed', acc1=None, acc5=None, views=None, seconds=seconds,
                    run=run_dir, error=error)
    return dict(cell=cell, status='done', acc1=record['test_acc1'], acc5=record['test_acc5'],
                views=record.get('test_num_views'), seconds=seconds, run=run_dir, error='')


RANK_PREFIX = re.compile(r'^\[rank\d+\]:\s*')
ERROR_LINE = re.compile(r'^(error: |[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b)')


def last_error_line(log, start):
    """The error a run ended with, from what it wrote into its log after byte `start`: the last
    `error: ...` or exception line (not torchrun's own ChildFailedError report that follows a
    worker's), else the last non-empty line."""
    with open(log, errors='replace') as f:
        f.seek(start)
        lines = [RANK_PREFIX.sub('', line).strip() for line in f.read().splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if ERROR_LINE.match(line) and 'ChildFailedError' not in line]
    return (errors or lines or ['no output'])[-1]


def launch(job, gpus, log):
    """Run the job's command with its console appended to `log`; (exit status, seconds, error line)."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, 'a') as f:
        f.write(f'\n== {time.strftime("%Y-%m-%d %H:%M:%S")} {shlex.join(job.command(gpus))}\n')
        start_byte = f.tell()
        f.flush()
        start = time.time()
        proc = subprocess.Popen(job.command(gpus), stdout=f, stderr=subprocess.STDOUT)
        try:
            status = proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM: the run stops with the sweep (and resumes with it)
            proc.terminate()
            proc.wait()
            raise
    seconds = time.time() - start
    return status, seconds, (last_error_line(log, start_byte) if status else '')


def cache_complete(cache_dir, epochs, world_size):
    meta = read_meta(cache_dir)
    return meta['epochs'] >= epochs and all(os.path.isfile(epoch_file(cache_dir, e, r))
                                            for e in range(epochs) for r in range(world_size))


def prepare_cache(args, base, jobs, world_size):
    """Check the cache against this sweep (its fingerprint, and that no grid key changes the
    teacher's inputs); the caching job when the cache is missing or incomplete, else None."""
    reference = fingerprint(base.config, world_size, teacher_hash=False)
    for job in jobs:
        this = fingerprint(job.config, world_size, teacher_hash=False)
        changed = [k for k in sorted(set(this) | set(reference)) if this.get(k) != reference.get(k)]
        if changed:
            raise SweepError(f'grid cell {cell_label(job.cell)} changes {", ".join(changed)}, which the '
                             "teacher's logits depend on: one teacher cache cannot serve every cell "
                             '(sweep those keys in separate sweeps, each with its own --cache)')
    if args.dry_run:
        return None if os.path.isfile(os.path.join(args.cache, 'meta.json')) else base
    made = fingerprint(base.config, world_size)  # names TEACHER_MODEL.PRETRAINED_PATH when missing
    if os.path.isfile(os.path.join(args.cache, 'meta.json')):
        compare_fingerprints(args.cache, read_meta(args.cache)['fingerprint'], made)
        if cache_complete(args.cache, base.config.TRAIN.EPOCHS, world_size):
            return None
    return base


def plan(args):
    """(grid, caching job, cell jobs, baseline job or None, baseline folder or None)."""
    grid = parse_grid(args.grid)
    fixed = list(args.opts or [])
    for key in SWEEP_KEYS:
        if key in fixed[0::2] or key in dict(grid):
            raise SweepError(f'{key} is set by the sweep itself; leave it out of --opts and the grid')
    common = fixed + ['TRAIN.AUTO_RESUME', 'True']
    jobs = []
    for cell in cells(grid):
        pairs = [word for kv in cell for word in kv]
        jobs.append(Job(cell_label(cell), cell, 'main_KD.py', args.cfg,
                        os.path.join(args.out, 'cells', cell_name(cell)),
                        common + pairs + ['KD.TEACHER_CACHE', args.cache]))
    epochs = max(job.config.TRAIN.EPOCHS for job in jobs)
    caching = Job('teacher cache', (), 'main_KD.py', args.cfg, os.path.join(args.out, 'cells'),
                  fixed + ['TRAIN.EPOCHS', str(epochs)], cache_dir=args.cache)
    baseline_job = baseline_dir = None
    if args.baseline:
        if os.path.isdir(args.baseline):
            if final_record(args.baseline) is None:
                raise SweepError(f'--baseline {args.baseline}: no final evaluation in its log.jsonl '
                                 '(not a finished run folder)')
            baseline_dir = args.baseline
        elif os.path.isfile(args.baseline):
            baseline_job = Job('student alone', (), 'main.py', args.baseline,
                               os.path.join(args.out, 'baseline'), common)
        else:
            raise SweepError(f'--baseline {args.baseline}: neither a run folder nor a config file')
    return grid, caching, jobs, baseline_job, baseline_dir


def format_seconds(seconds):
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes // 60}h{minutes % 60:02d}m' if minutes >= 60 else f'{minutes}m{secs:02d}s'


def make_cache(caching, args):
    log = os.path.join(args.out, 'logs', 'teacher_cache.log')
    print(f'caching the teacher into {args.cache} (log: {log})', flush=True)
    status, seconds, error = launch(caching, args.gpus, log)
    if status:
        raise SweepError(f'the caching pass failed ({error}); see {log}')
    print(f'teacher cache made in {format_seconds(seconds)}', flush=True)


def train(todo, args):
    """Run the jobs that have not finished, one after another: {job name: result}. A line per job."""
    times_path = os.path.join(args.out, 'seconds.json')  # training time per run, over resumed attempts
    times = json.load(open(times_path)) if os.path.isfile(times_path) else {}
    results, run_seconds, remaining = {}, [], sum(final_record(j.run_dir) is None for j in todo)
    for index, job in enumerate(todo, 1):
        where = f'[{index}/{len(todo)}] {job.name}'
        record = final_record(job.run_dir)
        if record is not None:
            results[job.name] = result_of(job.cell, job.run_dir, record, times.get(job.name))
            print(f'{where}: finished before (top-1 {record["test_acc1"]:.2f}), skipped', flush=True)
            continue
        log = os.path.join(args.out, 'logs', f'{cell_name(job.cell) or "baseline"}.log')
        status, seconds, error = launch(job, args.gpus, log)
        times[job.name] = times.get(job.name, 0) + seconds
        with open(times_path, 'w') as f:
            json.dump(times, f, indent=1)
        record = None if status else final_record(job.run_dir)
        if not status and record is None:
            error = f'exit status 0 but no final evaluation in {job.run_dir}/log.jsonl'
        results[job.name] = result_of(job.cell, job.run_dir, record, times[job.name], error)
        run_seconds.append((seconds, record is not None))
        remaining -= 1
        trained = [t for t, ok in run_seconds if ok] or [t for t, _ in run_seconds]  # a failure is quick
        eta = f'; {remaining} left, ETA {format_seconds(remaining * sum(trained) / len(trained))}'
        done = (f'top-1 {record["test_acc1"]:.2f} top-5 {record["test_acc5"]:.2f}' if record
                else f'FAILED ({error}; log {log})')
        print(f'{where}: {done} in {format_seconds(seconds)}{eta if remaining else ""}', flush=True)
    return results


def report(args, grid, cell_results, baseline):
    """Write sweep.md, sweep.csv and sweep.png, print the table; the number of failed runs."""
    keys = [key for key, _ in grid]
    views = '/'.join(sorted({str(r['views']) for r in cell_results if r['views']})) or '?'
    title = f'{os.path.basename(os.path.normpath(args.out))}: top-1 / top-5 (%), {views} views per video'
    table = format_table(keys, cell_results, baseline, title)
    with open(os.path.join(args.out, 'sweep.md'), 'w') as f:
        f.write(table)
    write_csv(os.path.join(args.out, 'sweep.csv'), keys, cell_results, baseline)
    heat_map(os.path.join(args.out, 'sweep.png'), grid, cell_results, baseline,
             f'top-1 (%), {views} views per video')
    print(table)
    return sum(r['status'] == 'failed' for r in cell_results + ([baseline] if baseline else []))


def main(argv=None):
    parser = cli.command_parser('python -m tools.sweep', __doc__)
    parser.add_argument('--cfg', required=True, metavar='FILE', help='the distillation config (main_KD.py)')
    parser.add_argument('--out', required=True, metavar='DIR', help='folder of the sweep (cells, logs, table)')
    parser.add_argument('--cache', metavar='DIR', help='the teacher cache (default OUT/teacher_cache); '
                                                       'made first when missing or incomplete')
    parser.add_argument('--baseline', metavar='RUN_DIR|FILE',
                        help='the student alone: a finished run folder, or a config to train with main.py')
    parser.add_argument('--gpus', type=int, default=0, metavar='N',
                        help='run the caching pass and each cell under torchrun on N GPUs (default: one process)')
    parser.add_argument('--opts', nargs='+', default=[], metavar='KEY VALUE',
                        help='overrides for every run (the caching pass, the cells and the baseline)')
    parser.add_argument('--dry-run', action='store_true',
                        help='check the grid and configs and print the commands, run nothing')
    parser.add_argument('grid', nargs='*', metavar='KEY V1,V2,...', help='the grid: a config key and its values')
    args = parser.parse_intermixed_args(argv)  # trailing pairs are the grid here, not overrides
    setup_logging()
    args.cache = args.cache or os.path.join(args.out, 'teacher_cache')
    world_size = args.gpus or 1

    grid, caching, jobs, baseline_job, baseline_dir = plan(args)
    caching = prepare_cache(args, caching, jobs, world_size)
    todo = jobs + ([baseline_job] if baseline_job else [])
    for job in todo:
        check_same_settings(job)
    if args.dry_run:
        for job in ([caching] if caching else []) + todo:
            print(shlex.join(job.command(args.gpus)))
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # the running cell stops too
    start = time.time()
    if caching:
        make_cache(caching, args)
    results = train(todo, args)
    baseline = results.get('student alone')
    if baseline_dir:
        baseline = result_of((), baseline_dir, final_record(baseline_dir))
    failed = report(args, grid, [results[job.name] for job in jobs], baseline)
    print(f'sweep of {len(jobs)} cells done in {format_seconds(time.time() - start)} (this command); '
          f'{failed} failed; {os.path.join(args.out, "sweep.md")}, sweep.csv, sweep.png', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    cli_main(main)
