"""Decode every listed video once and sort them into ok, short and bad (the library behind
`python -m tools.check_data`).

Bad: missing, empty, corrupt or undecodable. Short: the container reports more frames than decode;
training samples from the frames that decode, so these are listed but only count as bad with
--strict.
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from .decode import VideoDecodeError, scan_video


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
