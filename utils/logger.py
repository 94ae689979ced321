"""Logging: rank 0 to the console in colour, every rank to its own file, metrics as JSON lines."""
import json
import logging
import os
import sys

from termcolor import colored


def create_logger(output_dir, rank=0, name='dvfl'):
    """A fresh logger writing `log_rank<r>.txt` in output_dir (and the console on rank 0)."""
    logger = logging.getLogger(f'{name}.rank{rank}')
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = '[%(asctime)s %(name)s] (%(filename)s %(lineno)d): %(levelname)s %(message)s'
    datefmt = '%Y-%m-%d %H:%M:%S'
    if rank == 0:
        console = logging.StreamHandler(sys.stdout)
        color_fmt = (colored('[%(asctime)s %(name)s]', 'green')
                     + colored('(%(filename)s %(lineno)d)', 'yellow') + ': %(levelname)s %(message)s')
        console.setFormatter(logging.Formatter(color_fmt, datefmt=datefmt))
        logger.addHandler(console)
    os.makedirs(output_dir, exist_ok=True)
    file_handler = logging.FileHandler(os.path.join(output_dir, f'log_rank{rank}.txt'), mode='a')
    file_handler.setFormatter(logging.Formatter(fmt, datefmt=datefmt))
    logger.addHandler(file_handler)
    return logger


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
        if not self.enabled:
            return
        with open(self.path, 'a') as f:
            f.write(json.dumps(record) + '\n')
        if self.tb is not None and 'epoch' in record:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != 'epoch':
                    self.tb.add_scalar(key, value, record['epoch'])
            self.tb.flush()

    def close(self):
        if self.tb is not None:
            self.tb.close()
