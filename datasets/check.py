"""Decode every listed video once and sort them into ok, short, corrupt, mismatch and bad (the
library behind `python -m tools.check_data`).

Bad: missing, empty or undecodable. Mismatch: the configured decoder returns other frames than an
in-order decode. Corrupt: the decoder reports damage before the last frame that decodes (its error
messages, counted; frames it flags as concealed; packets it skips). Short: the container reports more frames than decode; training
samples from the frames that decode, so these are listed but only count as bad with --strict.
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .decode import VideoDecodeError, scan_video


STATUSES = ('ok', 'short', 'mismatch', 'corrupt', 'bad')
SHOWN_ERRORS = 3


def _scan(job):
    path, backend = job
    try:
        scan = scan_video(path, backend)
    except VideoDecodeError as err:
        return path, 'bad', err.reason
    shown = '; '.join(dict.fromkeys(scan.errors[:SHOWN_ERRORS]))
    shown = f' ({shown}{"; ..." if len(scan.errors) > SHOWN_ERRORS else ""})' if shown else ''
    short = scan.decoded < scan.reported
    details, status = [], 'ok'
    if scan.damaged or (scan.errors and not short):  # damage explains a mismatch: corrupt first
        details.append(f'{len(scan.errors)} decoder error message(s), {scan.damaged} damaged frame(s) or '
                       f'skipped packet(s){shown}')
        status = 'corrupt'
    if scan.mismatch:
        details.append(scan.mismatch)
        status = status if status != 'ok' else 'mismatch'
    if short:
        details.append(f'{scan.decoded} of {scan.reported} reported frames decode' + ('' if details else shown))
        status = status if status != 'ok' else 'short'
    return path, status, '; '.join(details) or f'{scan.decoded} frames'


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
    """[(path, status, detail)] for every path, status one of STATUSES."""
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
