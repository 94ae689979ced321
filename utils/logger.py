"""Logging: one logger tree per process, rank 0 to the console in colour, every rank to its own file
(`log_rank<r>.txt`), metrics as JSON lines.

`setup_logging` puts the handlers on the root logger, so whatever the project's modules log
(`logging.getLogger(__name__)` in datasets/, models/, utils/, engine) reaches the run's log; other
libraries are heard from at WARNING and above. DataLoader workers are separate processes (with the
spawn and forkserver start methods they inherit no handlers): the loaders pass `worker_logging()` as
`worker_init_fn`, which configures the same handlers in each worker, appending to the rank's file.
"""
import functools
import json
import logging
import math
import os
import sys

from termcolor import colored

# Top-level names of the project's loggers (module __name__s) that log at INFO; the rest at WARNING.
PROJECT_LOGGERS = ('dvfl', '__main__', 'engine', 'datasets', 'models', 'utils', 'tools')
FORMAT = '[%(asctime)s %(name)s] (%(filename)s %(lineno)d): %(levelname)s %(message)s'
DATEFMT = '%Y-%m-%d %H:%M:%S'
_settings = None  # (output_dir, rank) of this process's setup, for the loader workers


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time (as logging's last-resort handler does for stderr),
    so a tool's main() called in-process under a test's output capture does not keep a dead stream."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(output_dir=None, rank=0):
    """Configure this process's logging (again: handlers of an earlier call are replaced) and return
    the `dvfl` logger. Rank 0 logs to stdout; with an output_dir every rank appends to
    `<output_dir>/log_rank<rank>.txt`."""
    global _settings
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, 'dvfl', False)]:
        root.removeHandler(handler)
        handler.close()
    handlers = []
    if rank == 0:
        console = _StdoutHandler()
        console.setFormatter(logging.Formatter(
            colored('[%(asctime)s %(name)s]', 'green') + colored('(%(filename)s %(lineno)d)', 'yellow')
            + ': %(levelname)s %(message)s', datefmt=DATEFMT))
        console.addFilter(lambda record: not getattr(record, 'file_only', False))
        handlers.append(console)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        handler = logging.FileHandler(os.path.join(output_dir, f'log_rank{rank}.txt'), mode='a')
        handler.setFormatter(logging.Formatter(FORMAT, datefmt=DATEFMT))
        handlers.append(handler)
    for handler in handlers:
        handler.dvfl = True
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    _settings = (output_dir, rank)
    return logging.getLogger('dvfl')


def _init_worker(output_dir, rank, worker_id):
    setup_logging(output_dir, rank)


def worker_logging():
    """A `worker_init_fn` for DataLoaders that gives each worker this process's logging (None when
    `setup_logging` was not called: a library user's own logging is left alone)."""
    return None if _settings is None else functools.partial(_init_worker, *_settings)


def strict_json_value(value):
    """None for a non-finite float (JSON has no inf or NaN), the value otherwise."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def final_record(run_dir):
    """The last `"final": true` record of a run folder's log.jsonl (its multi-view test), or None
    when the run has no log.jsonl or did not finish."""
    path = os.path.join(run_dir, 'log.jsonl')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        finals = [json.loads(line) for line in f if '"final": true' in line]
    return finals[-1] if finals else None


class MetricsWriter:
    """One JSON object per line in `log.jsonl` (rank 0 only); TensorBoard scalars when installed."""

    def __init__(self, output_dir, enabled=True):
        self.enabled = enabled
        self.path = os.path.join(output_dir, 'log.jsonl')
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(output_dir, 'tensorboard'))
            except ImportError:
                self.tb = None

    def write(self, record):
        """Append `record` as strict JSON: a non-finite number (an epoch whose every step the
        GradScaler skipped, a diverged validation loss) is written as null, not as `Infinity`/`NaN`,
        which strict parsers reject."""
        if not self.enabled:
            return
        record = {key: strict_json_value(value) for key, value in record.items()}
        with open(self.path, 'a') as f:
            f.write(json.dumps(record, allow_nan=False) + '\n')
        if self.tb is not None and 'epoch' in record:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != 'epoch':
                    self.tb.add_scalar(key, value, record['epoch'])
            self.tb.flush()

    def close(self):
        if self.tb is not None:
            self.tb.close()
