"""Datasets over an annotation list: one cropped uint8 clip per video for training, all test views
of a video (with its index) for evaluation. Bad files raise; under DATA.SKIP_BAD_VIDEOS a training
clip is replaced by another video and a validation video is marked (index -1) for evaluation to
leave out."""
import logging

import torch
from torch.utils.data import Dataset, default_collate

from .decode import VideoDecodeError, _log_once, read_clip
from .rng import CLIP, torch_generator
from .sampling import Sampling, test_indices, train_indices, train_offsets
from .transforms import SpatialViews, normalize

logger = logging.getLogger(__name__)
MAX_RETRIES = 10


def test_views(path, num_frames, num_clip, num_crop, input_size, backend='decord', short_side=None,
               sampling=Sampling()):
    """uint8 (num_clip * num_crop, T, C, S, S) views of one video, clip-major (view = clip *
    num_crop + crop): the frames of all temporal views are decoded in one pass."""
    def sample(total):
        return [i for k in range(num_clip) for i in test_indices(total, num_frames, k, num_clip, sampling)]

    frames, _ = read_clip(path, sample, backend, short_side)            # (K*T, C, H, W)
    crops = SpatialViews(input_size, num_crop)(frames)                      # (N, K*T, C, S, S)
    crops = crops.reshape(num_crop, num_clip, num_frames, *crops.shape[2:]).transpose(0, 1)
    return crops.reshape(num_clip * num_crop, num_frames, *crops.shape[3:])


class _VideoDataset(Dataset):
    def __init__(self, samples, num_frames, backend, short_side=None, skip_bad=False, sampling=Sampling()):
        self.samples = list(samples)
        self.num_frames, self.backend, self.short_side = num_frames, backend, short_side
        self.skip_bad, self.sampling = skip_bad, sampling

    def __len__(self):
        return len(self.samples)


class TrainClips(_VideoDataset):
    """`dataset[index, epoch]` -> (clip uint8 (T, C, S, S), label, clip key): a random frame per
    segment, cropped and flipped by `transform(frames, generator)`.

    Every draw (frame offsets, crop, flip, the replacement of a bad video) comes from a generator
    seeded by (seed, epoch, clip key) (datasets/rng.py), so a clip does not depend on the worker
    that made it or on what that worker made before: resuming replays an epoch exactly at any
    DATA.NUM_WORKERS. The epoch travels with the index (EpochSampler); a bare int index means
    epoch 0. The clip key is the index asked for, also when a bad video was replaced, so the
    device-side draws keyed on it (batch_augment.py) stay the same.

    With num_sample K > 1 (AUG.NUM_SAMPLE, repeated augmentation as PySlowFast's), the frames are
    drawn and decoded once and give K clips, each with its own crop and flip (and, keyed on
    index * K + k, its own colour on the device): (clips (K, T, C, S, S), label, keys (K,)); clip 0
    is the clip a one-sample dataset makes for key index * K. `flatten_clips` collates them into a
    batch of clips."""

    def __init__(self, samples, num_frames, transform, backend='decord', short_side=None, skip_bad=False,
                 seed=0, sampling=Sampling(), num_sample=1):
        super().__init__(samples, num_frames, backend, short_side, skip_bad, sampling)
        self.transform, self.seed, self.num_sample = transform, seed, num_sample

    def load(self, index, generators):
        """(one clip per generator, label): the first generator draws the frames, decoded once; each
        generator then draws its own crop and flip of them."""
        path, label = self.samples[index]
        offsets = train_offsets(self.num_frames, generators[0])
        frames, _ = read_clip(path, lambda total: train_indices(total, self.num_frames, offsets, self.sampling),
                              self.backend, self.short_side)
        return [self.transform(frames, g) for g in generators], label

    def __getitem__(self, key):
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        keys = [index * self.num_sample + k for k in range(self.num_sample)]
        generators = [torch_generator(self.seed, CLIP, epoch, k) for k in keys]
        tried, current = [], index
        for _ in range(MAX_RETRIES + 1):
            try:
                clips, label = self.load(current, generators)
                if self.num_sample == 1:
                    return clips[0], label, index
                return torch.stack(clips), label, torch.tensor(keys)
            except VideoDecodeError as err:
                if not self.skip_bad:
                    raise
                tried.append(err.path)
                _log_once(('skip', err.path), 'skipping a bad video (DATA.SKIP_BAD_VIDEOS): %s', err,
                          log=logger)
                current = int(torch.randint(len(self.samples), (), generator=generators[0]))
        raise RuntimeError(f'{len(tried)} videos in a row failed to decode under DATA.SKIP_BAD_VIDEOS '
                           f'(is DATA.ROOT right?): {tried}')


def flatten_clips(batch):
    """collate_fn for AUG.NUM_SAMPLE > 1: (clips (B * K, T, C, S, S), labels (B * K,), keys (B * K,)),
    the K clips of a video next to each other."""
    clips, labels, keys = default_collate(batch)
    return clips.flatten(0, 1), labels.repeat_interleave(clips.shape[1]), keys.flatten()


class TestClips(_VideoDataset):
    """(views float (V, T, C, S, S), label, index) with V = num_clip * num_crop, clip-major."""

    def __init__(self, samples, num_frames, input_size, num_clip=1, num_crop=1, backend='decord',
                 short_side=None, skip_bad=False, sampling=Sampling()):
        super().__init__(samples, num_frames, backend, short_side, skip_bad, sampling)
        self.input_size, self.num_clip, self.num_crop = input_size, num_clip, num_crop

    def __getitem__(self, index):
        """A bad video under DATA.SKIP_BAD_VIDEOS comes back with index -1, so evaluation leaves it
        out (and says how many) instead of scoring another video in its place."""
        try:
            return self.load(index)
        except VideoDecodeError as err:
            if not self.skip_bad:
                raise
            _log_once(('skip', err.path), 'leaving a bad video out of evaluation (DATA.SKIP_BAD_VIDEOS): %s',
                      err, log=logger)
            size = self.input_size
            views = torch.zeros(self.num_clip * self.num_crop, self.num_frames, 3, size, size)
            return views, self.samples[index][1], -1

    def load(self, index):
        path, label = self.samples[index]
        views = test_views(path, self.num_frames, self.num_clip, self.num_crop, self.input_size,
                           self.backend, self.short_side, self.sampling)
        return normalize(views), label, index
