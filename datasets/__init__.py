"""Video data pipeline: annotations, decoding, sampling, worker clip transforms, device-side batch
augmentation and mixing, loaders.

Tools: `python -m tools.check_data` (decode every listed file), `python -m tools.splits` (build and
check train/val lists). See DATA.md.
"""
from .annotations import AnnotationError, read_annotations, read_label_list
from .batch_augment import BatchAugment, build_batch_augment
from .decode import VideoDecodeError, count_frames, decode_frames
from .loader import (EpochSampler, ShardedSampler, build_dataloader, build_val_loader, class_names, list_clips,
                     load_test_clip)
from .mixup import ClipMixup, build_mixup

__all__ = ['AnnotationError', 'read_annotations', 'read_label_list', 'VideoDecodeError', 'count_frames',
           'decode_frames', 'ShardedSampler', 'build_dataloader', 'build_val_loader', 'load_test_clip',
           'list_clips', 'ClipMixup', 'build_mixup', 'BatchAugment', 'build_batch_augment', 'EpochSampler',
           'class_names']
