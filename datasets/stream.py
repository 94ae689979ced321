"""Clips from a long video or a live stream, for tools.predict --stream: frames are read in order
through PyAV (a file, or any source av.open takes: rtsp:// or http:// URLs, a camera such as
/dev/video0 with format v4l2), converted as read_clip converts them (display rotation applied),
cropped as the evaluation's one-view test crop on arrival, and a
sliding window of the last `window` frames gives a clip every `stride` frames, sampled from the
window as evaluation samples a `window`-frame video (datasets/sampling.py test_indices, one view).
"""
import collections

import av
import numpy as np
import torch

from .decode import VideoDecodeError, frame_to_rgb
from .sampling import Sampling, test_indices
from .transforms import SpatialViews, resize_side


def _open(source, container_format=None):
    try:
        container = av.open(source, format=container_format)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(source, f'cannot open ({err})') from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(source, 'no video stream')
    return container, container.streams.video[0]


class SlidingClips:
    """Iterate over (start seconds, end seconds, uint8 clip (T, C, S, S)) of `source`: one clip
    when the first `window` frames are in, then one every `stride` frames. `frames` and `seconds`
    say how much of the stream has been read (seconds: frames / the stream's frame rate)."""

    def __init__(self, source, num_frames, input_size, window, stride, sampling=Sampling(),
                 container_format=None):
        if window < 1 or stride < 1:
            raise ValueError(f'window and stride must be >= 1 frames, got {window} and {stride}')
        self.source, self.container_format = source, container_format
        self.window, self.stride, self.size = window, stride, input_size
        self.indices = test_indices(window, num_frames, 0, 1, sampling)
        self.crop = SpatialViews(input_size, 1)
        self.frames, self.rate = 0, None

    @property
    def seconds(self):
        return self.frames / self.rate

    def __iter__(self):
        container, stream = _open(self.source, self.container_format)
        stream.thread_type = 'AUTO'
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            container.close()
            raise VideoDecodeError(self.source, 'the stream gives no frame rate; timestamps and the '
                                                'real-time factor need one')
        self.rate = float(rate)
        recent = collections.deque(maxlen=self.window)
        try:
            for frame in container.decode(stream):
                array = frame_to_rgb(frame, resize_side(self.size))
                pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]  # (1, C, H, W)
                recent.append(self.crop(pixels)[0, 0])
                self.frames += 1
                if len(recent) == self.window and (self.frames - self.window) % self.stride == 0:
                    end = self.frames / self.rate
                    yield end - self.window / self.rate, end, torch.stack([recent[i] for i in self.indices])
        except av.error.FFmpegError as err:
            if self.frames == 0:
                raise VideoDecodeError(self.source, f'no frame decodes ({err})') from None
            # a broken tail of a file, or a stream that ends: what was read stands
        finally:
            container.close()
