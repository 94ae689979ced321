"""Train and validation loaders built from the config.

Training shuffles with an EpochSampler (a DistributedSampler, one replica in a single process), so
the order of an epoch depends only on SEED and the epoch (engine.begin_epoch calls set_epoch), and
it hands the epoch to the dataset with every index: each clip's draws are a function of (SEED, epoch,
index) in whichever persistent worker makes it, and a resumed run replays the epoch exactly. A
train batch is (uint8 clips (B, T, C, S, S), labels, sample indices); the device half of the
augmentation (batch_augment.py) takes it from there. The last incomplete batch is dropped.
Validation shards `rank::world` so every video is evaluated on exactly one rank and none is dropped.
"""
import logging
import math
import os

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from utils.distributed import get_rank, get_world_size
from utils.errors import ConfigValueError
from utils.logger import worker_logging

from .annotations import read_annotations, read_label_list
from .decode import VideoDecodeError, resolve_backend
from .sampling import Sampling
from .transforms import clip_crop, decode_side, normalize
from .video_dataset import TestClips, TrainClips, flatten_clips, test_views

logger = logging.getLogger(__name__)


class EpochSampler(DistributedSampler):
    """DistributedSampler yielding (index, epoch) pairs: the epoch reaches the dataset in the worker
    with each index (robust with persistent workers, which never see set_epoch)."""

    def __iter__(self):
        return ((index, self.epoch) for index in super().__iter__())


class ShardedSampler(Sampler):
    """Indices rank, rank + world, ...: each index on exactly one rank, none dropped or repeated."""

    def __init__(self, length, rank=0, world_size=1):
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} is not in [0, {world_size})')
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self):
        return max(0, math.ceil((self.length - self.rank) / self.world_size))


def _samples(config, csv_path, what):
    """Validated (path, label) list; missing files fail at start-up (or are dropped with a warning
    under DATA.SKIP_BAD_VIDEOS) instead of hours into training."""
    if not csv_path:
        raise ConfigValueError(f'DATA.{what} is not set')
    samples = read_annotations(csv_path, config.DATA.ROOT, config.MODEL.NUM_CLASSES)
    missing = [path for path, _ in samples if not os.path.isfile(path)]
    if missing and not config.DATA.SKIP_BAD_VIDEOS:
        raise VideoDecodeError(missing[0], f'file not found ({len(missing)} of the {len(samples)} videos '
                                           f'listed in {csv_path} are missing; is DATA.ROOT right?)')
    if missing:
        logger.warning('%d of the %d videos listed in %s are missing and left out (DATA.SKIP_BAD_VIDEOS), '
                       'e.g. %s', len(missing), len(samples), csv_path, missing[:3])
        missing = set(missing)
        samples = [s for s in samples if s[0] not in missing]
    return samples


def _check_labels(config):
    if config.DATA.LABEL_LIST:
        read_label_list(config.DATA.LABEL_LIST, config.MODEL.NUM_CLASSES)


def class_names(config):
    """Class names by id from DATA.LABEL_LIST (None without one): the evaluation report's labels."""
    return read_label_list(config.DATA.LABEL_LIST, config.MODEL.NUM_CLASSES) if config.DATA.LABEL_LIST else None


def _loader_kwargs(config):
    """A generator of its own, so that starting an iterator (it draws the workers' base seed) leaves
    the global RNG, which the model's dropout and drop path use, untouched."""
    workers = config.DATA.NUM_WORKERS
    return dict(num_workers=workers, pin_memory=bool(config.DATA.PIN_MEMORY) and torch.cuda.is_available(),
                persistent_workers=workers > 0, worker_init_fn=worker_logging(),
                generator=torch.Generator().manual_seed(config.SEED))


def frame_sampling(config):
    """Where the frames are drawn (datasets/sampling.py): AUG.FRAME_INTERVAL, AUG.SAMPLE_ALL_FRAMES."""
    return Sampling(config.AUG.FRAME_INTERVAL, config.AUG.SAMPLE_ALL_FRAMES)


def build_train_dataset(config):
    _check_labels(config)
    return TrainClips(_samples(config, config.DATA.TRAIN_FILE, 'TRAIN_FILE'), config.DATA.NUM_FRAMES,
                      clip_crop(config), resolve_backend(config.DATA.DECODER),
                      decode_side(config, train=True), config.DATA.SKIP_BAD_VIDEOS, config.SEED,
                      frame_sampling(config), config.AUG.NUM_SAMPLE)


def build_val_dataset(config, num_clip, num_crop):
    _check_labels(config)
    return TestClips(_samples(config, config.DATA.VAL_FILE, 'VAL_FILE'), config.DATA.NUM_FRAMES,
                     config.DATA.INPUT_SIZE, num_clip, num_crop, resolve_backend(config.DATA.DECODER),
                     decode_side(config, train=False, num_crop=num_crop), config.DATA.SKIP_BAD_VIDEOS,
                     frame_sampling(config))


def val_batch_size(config, num_views):
    """Videos per validation batch: about twice the training batch in clips (no gradients kept)."""
    return max(1, 2 * config.DATA.BATCH_SIZE // num_views)


def build_val_loader(config, num_clip, num_crop, rank=None, world_size=None):
    """(dataset, loader) yielding (views (B, V, T, C, H, W), labels, indices), V = num_clip * num_crop;
    this rank's share (`rank::world`) of the validation videos."""
    if rank is None or world_size is None:
        rank, world_size = get_rank(), get_world_size()
    dataset = build_val_dataset(config, num_clip, num_crop)
    loader = DataLoader(dataset, batch_size=val_batch_size(config, num_clip * num_crop),
                        sampler=ShardedSampler(len(dataset), rank, world_size), drop_last=False,
                        **_loader_kwargs(config))
    return dataset, loader


def build_dataloader(config):
    """(dataset_train, dataset_val, loader_train, loader_val); the train loader yields (uint8 clips
    (B, T, C, S, S), labels (B,), clip keys (B,)) for `build_batch_augment`, B = DATA.BATCH_SIZE
    clips (of B / AUG.NUM_SAMPLE videos); validation uses TEST.NUM_CLIP x TEST.NUM_CROP views."""
    dataset_train = build_train_dataset(config)
    rank, world_size = get_rank(), get_world_size()
    sampler = EpochSampler(dataset_train, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=config.SEED, drop_last=True)
    num_sample = config.AUG.NUM_SAMPLE
    videos_per_batch = config.DATA.BATCH_SIZE // num_sample  # config.py checks that it divides
    if len(dataset_train) < videos_per_batch * world_size:
        raise ConfigValueError(f'{config.DATA.TRAIN_FILE}: {len(dataset_train)} videos cannot fill one batch of '
                               f'DATA.BATCH_SIZE {config.DATA.BATCH_SIZE} (AUG.NUM_SAMPLE {num_sample} clips '
                               f'per video) on {world_size} process(es)')
    loader_train = DataLoader(dataset_train, batch_size=videos_per_batch, sampler=sampler, drop_last=True,
                              collate_fn=flatten_clips if num_sample > 1 else None, **_loader_kwargs(config))
    dataset_val, loader_val = build_val_loader(config, config.TEST.NUM_CLIP, config.TEST.NUM_CROP, rank,
                                               world_size)
    return dataset_train, dataset_val, loader_train, loader_val


def load_test_clip(config, path, num_clip=1, num_crop=1):
    """Test views of one video file, as the evaluation sees them: (float (V, T, C, S, S) normalised,
    uint8 (V, T, C, S, S) for display). V = num_clip * num_crop, clip-major."""
    views = test_views(path, config.DATA.NUM_FRAMES, num_clip, num_crop, config.DATA.INPUT_SIZE,
                       resolve_backend(config.DATA.DECODER), decode_side(config, False, num_crop),
                       frame_sampling(config))
    return normalize(views), views


def list_clips(config, list_file, count):
    """Evaluation views (TEST.NUM_CLIP x TEST.NUM_CROP, normalised) of `count` videos spread evenly
    over the annotation list `list_file` (so every class of a list sorted by class takes part):
    (clips (count * V, T, C, S, S), videos used). INT8 calibration and its check read these."""
    videos = [path for path, _ in read_annotations(list_file, config.DATA.ROOT, config.MODEL.NUM_CLASSES)]
    picked = [videos[i * len(videos) // count] for i in range(min(count, len(videos)))]
    return torch.cat([load_test_clip(config, path, config.TEST.NUM_CLIP, config.TEST.NUM_CROP)[0]
                      for path in picked]), len(picked)
