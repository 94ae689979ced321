"""Training curves from the `log.jsonl` files that main.py and main_KD.py write, one PNG for many runs
(the command line is tools/plot.py).

Four panels per epoch: train loss (distillation runs add their KD and CE terms, dashed and dotted),
learning rate, validation top-1 and top-5; one colour per run. Lines without an `epoch` and the
`"final": true` summary are not curves (a run's final test top-1 goes into its legend entry). When a
resumed run logged an epoch twice, the later line wins.
"""
import json
import math
import numbers
import os

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import UserError

PANELS = (('train_loss', 'train loss'), ('lr', 'learning rate'),
          ('val_acc1', 'val top-1 (%)'), ('val_acc5', 'val top-5 (%)'))
LOSS_TERMS = (('train_loss_kd', '--', 'KD term'), ('train_loss_ce', ':', 'CE term'))
NUMERIC_KEYS = [k for k, _ in PANELS] + [k for k, _, _ in LOSS_TERMS] + ['val_loss']


class LogError(UserError, ValueError):
    """A log.jsonl that is missing or has a line that is not a metrics record."""


def log_path(run):
    """`run` itself when it is a file, else `run/log.jsonl`."""
    path = run if os.path.isfile(run) else os.path.join(run, 'log.jsonl')
    if not os.path.isfile(path):
        raise LogError(f'{path}: no such log file (give a run folder holding log.jsonl, or the file)')
    return path


def read_log(path):
    """(epoch records sorted by epoch, the final record or None) from one log.jsonl."""
    epochs, final = {}, None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f'{path}:{number}'
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise LogError(f'{where}: not a JSON line ({err.msg}): {line.strip()[:80]!r}') from None
            if not isinstance(record, dict):
                raise LogError(f'{where}: expected a JSON object, got {type(record).__name__}')
            if record.get('final'):
                final = record
                continue
            if 'epoch' not in record:
                continue
            if not isinstance(record['epoch'], int) or isinstance(record['epoch'], bool):
                raise LogError(f"{where}: 'epoch' must be an integer, got {record['epoch']!r}")
            for key in NUMERIC_KEYS:
                value = record.get(key)
                if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
                    raise LogError(f"{where}: '{key}' must be a number, got {value!r}")
            epochs[record['epoch']] = record  # a resumed run may repeat epochs; the last one wins
    if not epochs:
        raise LogError(f'{path}: no per-epoch records (lines with an "epoch" key)')
    return [epochs[e] for e in sorted(epochs)], final


def _default_labels(paths):
    """Run folders, relative to the folder they all share (or their own name for one run)."""
    dirs = [os.path.dirname(os.path.abspath(p)) for p in paths]
    if len(set(dirs)) < len(dirs):
        return [os.path.relpath(p) for p in paths]
    if len(dirs) == 1:
        return [os.path.basename(dirs[0])]
    common = os.path.commonpath(dirs)
    return [os.path.relpath(d, common) for d in dirs]


def _series(records, key):
    points = [(r['epoch'], r[key]) for r in records if r.get(key) is not None]
    return [e for e, _ in points], [v for _, v in points]


def plot_runs(log_paths, out_path, labels=None):
    """Write the four-panel PNG for the runs in `log_paths` (run folders or log.jsonl files)."""
    paths = [log_path(p) for p in log_paths]
    if not paths:
        raise UserError('plot_runs needs at least one run')
    labels = list(labels) if labels else _default_labels(paths)
    if len(labels) != len(paths):
        raise UserError(f'{len(labels)} labels for {len(paths)} runs: {labels}')
    runs = [read_log(p) for p in paths]

    fig = Figure(figsize=(11, 8), dpi=100, layout='constrained')
    axes = fig.subplots(2, 2).ravel()
    for index, ((records, final), label) in enumerate(zip(runs, labels)):
        colour = f'C{index % 10}'
        if final is not None and isinstance(final.get('test_acc1'), numbers.Real):
            label = f'{label} (test top-1 {final["test_acc1"]:.1f})'
        for ax, (key, _) in zip(axes, PANELS):
            x, y = _series(records, key)
            if x:
                ax.plot(x, y, color=colour, marker='o' if len(x) < 30 else None, ms=3, label=label)
        for key, style, term in LOSS_TERMS:
            x, y = _series(records, key)
            if x:
                axes[0].plot(x, y, color=colour, ls=style, lw=1, label=f'{label}: {term}')
    for ax, (key, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel('epoch')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize='small')
        else:
            ax.text(0.5, 0.5, f'no {key} in these logs', ha='center', va='center',
                    transform=ax.transAxes, color='gray')
    if _spans_decades(axes[1]):
        axes[1].set_yscale('log')
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out_path)
    return out_path


def _spans_decades(ax, decades=2):
    """A log scale for the learning rate when warm-up and decay span two or more decades."""
    values = [v for line in ax.lines for v in line.get_ydata() if v > 0 and math.isfinite(v)]
    return bool(values) and max(values) / min(values) >= 10 ** decades
