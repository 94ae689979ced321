"""The grid of a sweep (tools/sweep.py) and its results: parsing `KEY V1,V2 KEY V1,V2`, the cells'
folder names, and the table (Markdown, CSV) and heat map of top-1 written at the end.

A result is a dict: 'cell' (tuple of (key, value) pairs, () for the baseline), 'status' ('done' or
'failed'), 'acc1', 'acc5', 'views', 'seconds' (None when unknown), 'run' (the run folder), 'error'.
"""
import csv
import itertools
import math
import os
import re

from matplotlib import colormaps
from matplotlib.figure import Figure

from .errors import UserError


class GridError(UserError, ValueError):
    """A grid that is empty, malformed or names a key twice."""


def parse_grid(words):
    """[(key, [value, ...]), ...] from ['KD.ALPHA', '0.2,0.5', 'KD.TEMPERATURE', '4', ...]."""
    if not words:
        raise GridError('empty grid: give KEY V1,V2,... pairs, e.g. KD.ALPHA 0.2,0.5,0.9 KD.TEMPERATURE 1,4,10')
    if len(words) % 2:
        raise GridError(f'the grid must be KEY V1,V2,... pairs, got an odd list: {" ".join(words)}')
    grid = []
    for key, text in zip(words[0::2], words[1::2]):
        values = [v.strip() for v in text.split(',')]
        if not all(values):
            raise GridError(f'grid key {key}: empty value in {text!r} (values are separated by single commas)')
        if key in dict(grid):
            raise GridError(f'grid key {key} is given twice')
        if len(set(values)) < len(values):
            raise GridError(f'grid key {key}: a value is repeated in {text!r}')
        grid.append((key, values))
    return grid


def cells(grid):
    """Every combination, the first key varying slowest: tuples of (key, value) pairs."""
    keys = [key for key, _ in grid]
    return [tuple(zip(keys, combo)) for combo in itertools.product(*(values for _, values in grid))]


def cell_name(cell):
    """A folder name: KD.ALPHA_0.2__KD.TEMPERATURE_4 (characters other than letters, digits, . - +
    become _)."""
    return '__'.join(re.sub(r'[^A-Za-z0-9.+-]', '_', f'{key}_{value}') for key, value in cell)


def cell_label(cell):
    return ' '.join(f'{key} {value}' for key, value in cell) if cell else 'student alone'


def _number(value, digits=2):
    return '' if value is None else f'{value:.{digits}f}'


def format_table(keys, results, baseline=None, title='sweep'):
    """Markdown: one row per cell (and the baseline first), top-1 / top-5 in %, the views per video."""
    head = [*keys, 'top-1', 'top-5', 'views', 'minutes', 'run']
    lines = [f'# {title}', '', '| ' + ' | '.join(head) + ' |', '|' + '|'.join('---' for _ in head) + '|']
    rows = ([baseline] if baseline else []) + list(results)
    for r in rows:
        values = dict(r['cell'])
        key_cols = [values.get(k, '') for k in keys] if r['cell'] else ['student alone'] + [''] * (len(keys) - 1)
        if r['status'] == 'done':
            scores = [_number(r['acc1']), _number(r['acc5']), str(r['views'])]
            where = f'`{r["run"]}`'
        else:
            scores, where = ['failed', '', ''], r['error'].replace('|', '\\|')
        minutes = _number(r['seconds'] / 60, 1) if r.get('seconds') else ''
        lines.append('| ' + ' | '.join([*key_cols, *scores, minutes, where]) + ' |')
    return '\n'.join(lines) + '\n'


def write_csv(path, keys, results, baseline=None):
    with open(path, 'w', newline='') as f:
        out = csv.writer(f)
        out.writerow([*keys, 'status', 'top1', 'top5', 'views', 'seconds', 'run', 'error'])
        for r in ([baseline] if baseline else []) + list(results):
            values = dict(r['cell'])
            key_cols = [values.get(k, '') for k in keys] if r['cell'] else ['baseline'] + [''] * (len(keys) - 1)
            out.writerow([*key_cols, r['status'], r['acc1'], r['acc5'], r['views'],
                          '' if r.get('seconds') is None else round(r['seconds'], 1), r['run'], r['error']])


def heat_map(path, grid, results, baseline=None, title='top-1 (%)'):
    """A PNG of top-1 over the first two keys (rows, columns), one panel per combination of any
    further keys, and the baseline as a one-cell panel on the right, all on one colour scale.
    Failed cells are grey and say so."""
    (row_key, rows), (col_key, cols) = grid[0], (grid[1] if len(grid) > 1 else ('', ['']))
    rest = grid[2:]
    by_cell = {r['cell']: r for r in results}
    panels = []
    for combo in itertools.product(*(values for _, values in rest)):
        extra = tuple(zip([k for k, _ in rest], combo))
        panel = []
        for rv in rows:
            line = []
            for cv in cols:
                cell = ((row_key, rv),) + (((col_key, cv),) if col_key else ()) + extra
                r = by_cell.get(cell)
                line.append(r['acc1'] if r and r['status'] == 'done' else math.nan)
            panel.append(line)
        panels.append((cell_label(extra), panel))
    finite = [v for _, p in panels for line in p for v in line if not math.isnan(v)]
    if baseline and baseline['status'] == 'done':
        finite.append(baseline['acc1'])
    low, high = (min(finite), max(finite)) if finite else (0.0, 100.0)
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5

    ratios = [len(cols)] * len(panels) + ([1] if baseline else [])
    fig = Figure(figsize=(1.2 * sum(ratios) + 2.5, 1.0 * len(rows) + 1.8), dpi=100, layout='constrained')
    axes = fig.subplots(1, len(ratios), gridspec_kw={'width_ratios': ratios}, squeeze=False)[0]
    cmap = colormaps['viridis'].with_extremes(bad='lightgrey')

    def draw(ax, values, xlabels, ylabels):
        image = ax.imshow(values, cmap=cmap, vmin=low, vmax=high, aspect='auto')
        for i, line in enumerate(values):
            for j, v in enumerate(line):
                text = 'failed' if math.isnan(v) else f'{v:.1f}'
                dark = not math.isnan(v) and v < low + 0.6 * (high - low)
                ax.text(j, i, text, ha='center', va='center', color='white' if dark else 'black')
        ax.set_xticks(range(len(xlabels)), xlabels)  # none for the baseline
        ax.set_yticks(range(len(ylabels)), ylabels)
        return image

    for ax, (label, panel) in zip(axes, panels):
        image = draw(ax, panel, cols, rows)
        ax.set_xlabel(col_key)
        ax.set_ylabel(row_key)
        if label != 'student alone':
            ax.set_title(label, fontsize='small')
    if baseline:
        ax = axes[-1]
        value = baseline['acc1'] if baseline['status'] == 'done' else math.nan
        image = draw(ax, [[value]], [], [])
        ax.set_title('student\nalone', fontsize='small')
    fig.colorbar(image, ax=list(axes), label=title, shrink=0.9)
    fig.suptitle(title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path
