"""Per-class evaluation report from the video-level scores of an evaluation (engine.evaluate):

- per_class.csv: class id, name, videos, top-1 (%), top-5 (%), ordered by class id;
- confusion.csv: counts of (true class, top-1 prediction), rows true, columns predicted, by class id;
- confusion.png: the same matrix with each row divided by its videos, classes sorted by per-class
  top-1 (best first, ties by id) so the off-diagonal mass gathers in the lower rows, every class
  named on both axes and a colour scale; readable at 101 classes;
- the five most confused (true, predicted) pairs, logged.
"""
import csv
import io
import logging
import os

import torch
from matplotlib.figure import Figure

from .checkpoint import atomic_write

TOP_PAIRS = 5


def class_stats(probs, labels, num_classes):
    """(confusion (C, C) int64 counts [true, predicted], videos (C,), top-1 hits (C,), top-5 hits (C,))
    from mean probabilities (N, C) and true labels (N,)."""
    probs, labels = torch.as_tensor(probs).float().cpu(), torch.as_tensor(labels).long().cpu()
    pred = probs.argmax(1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    top5 = probs.topk(min(5, num_classes), dim=1).indices
    hit5 = (top5 == labels[:, None]).any(1).long()
    videos = torch.bincount(labels, minlength=num_classes)
    return confusion, videos, confusion.diagonal().clone(), torch.bincount(labels, hit5, minlength=num_classes).long()


def percent(hits, videos):
    """hits / videos in %, NaN for a class without videos."""
    return torch.where(videos > 0, 100.0 * hits / videos.clamp_min(1), torch.full_like(hits, float('nan'),
                                                                                        dtype=torch.float64))


def most_confused(confusion, k=TOP_PAIRS):
    """[(true, predicted, count)] of the k largest off-diagonal counts (count > 0), largest first,
    ties by (true, predicted)."""
    off = confusion.clone()
    off.fill_diagonal_(0)
    pairs = [(int(t), int(p), int(off[t, p])) for t, p in off.nonzero().tolist()]
    return sorted(pairs, key=lambda x: (-x[2], x[0], x[1]))[:k]


def _write_csv(path, rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator='\n').writerows(rows)
    atomic_write(path, lambda f: f.write(buffer.getvalue().encode('utf-8')))


def write_per_class(path, names, videos, top1, top5):
    _write_csv(path, [['id', 'class', 'videos', 'top1', 'top5']] +
               [[i, name, int(videos[i]), f'{float(top1[i]):.2f}', f'{float(top5[i]):.2f}']
                for i, name in enumerate(names)])


def write_confusion(path, names, confusion):
    _write_csv(path, [['true \\ predicted', *names]] +
               [[name, *row] for name, row in zip(names, confusion.tolist())])


def plot_confusion(path, names, confusion, top1, title=''):
    """Row-normalised confusion matrix, classes sorted by top-1 (best first), all names shown."""
    n = len(names)
    acc = torch.nan_to_num(top1.double(), nan=-1.0)
    order = sorted(range(n), key=lambda i: (-float(acc[i]), i))
    matrix = confusion[order][:, order].double()
    matrix = matrix / matrix.sum(1, keepdim=True).clamp_min(1)
    side = min(24.0, max(5.0, 0.17 * n + 2.5))
    font = max(3.0, min(9.0, 420.0 / max(n, 1)))
    fig = Figure(figsize=(side + 1.2, side), dpi=150 if n > 40 else 110)
    ax = fig.add_subplot()
    image = ax.imshow(matrix.numpy(), cmap='viridis', vmin=0.0, vmax=1.0, interpolation='nearest')
    labels = [f'{names[i]} ({float(top1[i]):.0f}%)' if not torch.isnan(top1[i]) else f'{names[i]} (-)'
              for i in order]
    ax.set_xticks(range(n), [names[i] for i in order], rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel('predicted class (top-1)')
    ax.set_ylabel('true class (its top-1), best first')
    ax.set_title(title or f'confusion matrix, {n} classes, rows normalised to 1')
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
    bar.set_label('fraction of the true class\'s videos')
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png'))


def write_report(folder, probs, labels, names=None, logger=None, title=''):
    """Write per_class.csv, confusion.csv and confusion.png into `folder` and log the most confused
    pairs. `probs` (N, C) are the per-video mean probabilities, `labels` (N,) the true classes,
    `names` the class names by id (None: their ids). Returns the most_confused pairs."""
    num_classes = probs.shape[1]
    names = list(names) if names is not None else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f'{len(names)} class names for {num_classes} classes')
    confusion, videos, hit1, hit5 = class_stats(probs, labels, num_classes)
    top1, top5 = percent(hit1, videos), percent(hit5, videos)
    os.makedirs(folder, exist_ok=True)
    write_per_class(os.path.join(folder, 'per_class.csv'), names, videos, top1, top5)
    write_confusion(os.path.join(folder, 'confusion.csv'), names, confusion)
    plot_confusion(os.path.join(folder, 'confusion.png'), names, confusion, top1, title)
    pairs = most_confused(confusion)
    logger = logger or logging.getLogger(__name__)
    text = '; '.join(f'{names[t]} -> {names[p]}: {c} of {int(videos[t])}' for t, p, c in pairs) or 'none'
    logger.info(f'most confused (true -> predicted): {text}')
    logger.info(f'per-class report written to {folder} (per_class.csv, confusion.csv, confusion.png)')
    return pairs


def eval_report(folder, names, logger=None):
    """The `report` callable for engine.evaluate: write_report into `folder`."""
    return lambda probs, labels: write_report(folder, probs, labels, names, logger)


def read_per_class(path):
    """Rows (id, class, videos, top-1, top-5) of a per_class.csv."""
    with open(path, newline='') as f:
        return [(int(r['id']), r['class'], int(r['videos']), float(r['top1']), float(r['top5']))
                for r in csv.DictReader(f)]
