"""The real loaders on tiny generated datasets: shapes, both backends, sharding, bad files."""
import logging
import os

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

import datasets
import datasets.decode as decode
from datasets import EpochSampler, ShardedSampler, build_dataloader, build_val_loader, load_test_clip
from datasets.annotations import AnnotationError
from datasets.decode import VideoDecodeError, count_frames, decode_frames
from datasets.rng import CLIP, torch_generator
from datasets.sampling import test_indices as view_indices
from datasets.sampling import train_indices, train_offsets
from datasets.transforms import SpatialViews, normalize
from tests.helpers.videos import BACKENDS, data_config, make_dataset

# mixed containers, sizes (one portrait), frame rates, and a video shorter than NUM_FRAMES (4)
MIXED = dict(num_frames=[12, 3, 9], size=[(64, 48), (48, 64), (40, 32)], fps=[25, 30, 12], ext=['.avi', '.mp4'])


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    files = make_dataset(root, num_classes=3, videos_per_class=2, **MIXED)
    return root, files


def config_for(tiny, **overrides):
    root, files = tiny
    return data_config(*files, num_classes=3, **overrides)


@pytest.mark.parametrize('backend', BACKENDS)
def test_train_and_val_loaders(tiny, backend):
    config = config_for(tiny, DATA__DECODER=backend, TEST__NUM_CLIP=2, TEST__NUM_CROP=3)
    dataset_train, dataset_val, loader_train, loader_val = build_dataloader(config)
    sampler = loader_train.sampler
    assert isinstance(sampler, EpochSampler) and sampler.num_replicas == 1 and loader_train.drop_last
    sampler.set_epoch(3)
    order = list(sampler)
    assert sorted(order) == [(i, 3) for i in range(6)] and order == list(sampler)  # the epoch fixes the order
    sampler.set_epoch(4)
    assert [i for i, _ in sampler] != [i for i, _ in order]
    assert len(dataset_train) == len(dataset_val) == 6
    batches = list(loader_train)
    assert len(batches) == 3
    for clips, labels, indices in batches:
        assert clips.shape == (2, 4, 3, 32, 32) and clips.dtype == torch.uint8  # workers ship uint8
        assert labels.dtype == torch.int64 and set(labels.tolist()) <= {0, 1, 2}
        assert labels.tolist() == [dataset_train.samples[i][1] for i in indices.tolist()]
    assert sorted(i for _, _, idx in batches for i in idx.tolist()) == list(range(6))
    seen = []
    for views, labels, indices in loader_val:
        assert views.shape[1:] == (6, 4, 3, 32, 32) and views.dtype == torch.float32
        assert indices.dtype == torch.int64 and labels.dtype == torch.int64
        assert labels.tolist() == [dataset_val.samples[i][1] for i in indices.tolist()]
        seen += indices.tolist()
    assert sorted(seen) == list(range(6))
    first = next(iter(loader_val))[0]
    assert torch.equal(first, next(iter(loader_val))[0])  # evaluation is deterministic


def test_val_views_are_clip_major(tiny):
    """view = clip * NUM_CROP + crop, rebuilt here from decode_frames + test_indices + the crops."""
    config = config_for(tiny, DATA__DECODER='pyav')
    dataset, _ = build_val_loader(config, 2, 3)
    for index in (0, 1):  # a 12-frame and a 3-frame (shorter than NUM_FRAMES) video
        views, label, got_index = dataset[index]
        path = dataset.samples[index][0]
        total = datasets.count_frames(path, 'pyav')
        for clip in range(2):
            frames = datasets.decode_frames(path, view_indices(total, 4, clip, 2), 'pyav', short_side=32)
            crops = SpatialViews(32, 3)(frames)
            for crop in range(3):
                assert torch.equal(views[clip * 3 + crop], normalize(crops[crop]))
        assert (label, got_index) == (dataset.samples[index][1], index)


@pytest.mark.parametrize('world', [1, 2, 3])
def test_val_sharding_covers_every_video_exactly_once(tiny, world):
    config = config_for(tiny, DATA__DECODER='pyav')
    seen = []
    for rank in range(world):
        _, loader = build_val_loader(config, 1, 1, rank=rank, world_size=world)
        assert not loader.drop_last
        seen += [i for _, _, indices in loader for i in indices.tolist()]
    assert sorted(seen) == list(range(6))
    for length in range(8):
        shards = [list(ShardedSampler(length, r, world)) for r in range(world)]
        assert sorted(sum(shards, [])) == list(range(length))
        assert [len(ShardedSampler(length, r, world)) for r in range(world)] == [len(s) for s in shards]


def test_workers_and_distributed_sampler(tiny, tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        config = config_for(tiny, DATA__NUM_WORKERS=2)
        _, _, loader_train, loader_val = build_dataloader(config)
        assert isinstance(loader_train.sampler, DistributedSampler)
        assert loader_train.persistent_workers and loader_train.num_workers == 2
        for epoch in range(2):
            loader_train.sampler.set_epoch(epoch)
            assert [clips.shape for clips, _, _ in loader_train] == [(2, 4, 3, 32, 32)] * 3
        assert sorted(i for _, _, idx in loader_val for i in idx.tolist()) == list(range(6))
    finally:
        dist.destroy_process_group()


def epoch_clips(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return {int(i): clip for clips, _, indices in loader for i, clip in zip(indices, clips)}


def test_train_clips_depend_on_seed_epoch_and_index_not_on_workers(tiny):
    """Frame offsets, crop and flip are drawn from (SEED, epoch, index): 0 or 2 persistent workers,
    any batch size, and a fresh loader (a resumed run) give the same clip for the same index."""
    runs = []
    for workers, batch in ((0, 2), (2, 3), (2, 2)):
        config = config_for(tiny, DATA__NUM_WORKERS=workers, DATA__BATCH_SIZE=batch, DATA__DECODER='pyav')
        dataset, _, loader, _ = build_dataloader(config)
        runs.append([epoch_clips(loader, epoch) for epoch in (0, 1)])
        del loader
    for run in runs[1:]:
        for epoch in (0, 1):
            assert sorted(run[epoch]) == list(range(6))
            assert all(torch.equal(run[epoch][i], runs[0][epoch][i]) for i in range(6))
    assert any(not torch.equal(runs[0][0][i], runs[0][1][i]) for i in range(6))  # a new epoch draws again
    clip, label, index = dataset[4, 1]
    assert torch.equal(clip, runs[0][1][4]) and index == 4 and label == dataset.samples[4][1]
    config.defrost()
    config.SEED = 1
    other = build_dataloader(config)[0]
    assert any(not torch.equal(other[i, 1][0], runs[0][1][i]) for i in range(6))


def test_num_sample_gives_independently_cropped_clips_of_one_decoded_video(tiny):
    """AUG.NUM_SAMPLE 2: a batch of DATA.BATCH_SIZE clips holds 2 clips of each of its videos with
    keys index * 2 + k. The frames are drawn once, with the generator of key index * 2 (clip 0 is
    the clip a one-sample dataset makes for that key); clip k is cropped and flipped with the
    generator of its own key."""
    config = config_for(tiny, DATA__BATCH_SIZE=4, DATA__DECODER='pyav', AUG__NUM_SAMPLE=2)
    dataset, _, loader, _ = build_dataloader(config)
    loader.sampler.set_epoch(1)
    batches = list(loader)
    assert len(batches) == 3 and all(clips.shape == (4, 4, 3, 32, 32) for clips, _, _ in batches)
    assert sorted(torch.cat([k for _, _, k in batches]).tolist()) == list(range(12))
    single = build_dataloader(config_for(tiny, DATA__DECODER='pyav'))[0]
    differ = 0
    for clips, labels, keys in batches:
        assert torch.equal(labels[0::2], labels[1::2]) and torch.equal(keys[0::2] + 1, keys[1::2])
        for pair, key, label in zip(clips.view(2, 2, *clips.shape[1:]), keys[0::2].tolist(), labels[0::2]):
            index = key // 2
            path = dataset.samples[index][0]
            assert label == dataset.samples[index][1]
            single.samples = [dataset.samples[index]] * 12  # the same video under every key
            assert torch.equal(pair[0], single[key, 1][0])
            frames_rng = torch_generator(config.SEED, CLIP, 1, key)
            indices = train_indices(count_frames(path, 'pyav'), 4, train_offsets(4, frames_rng),
                                    dataset.sampling)
            crop_rng = torch_generator(config.SEED, CLIP, 1, key + 1)
            assert torch.equal(pair[1], dataset.transform(decode_frames(path, indices, 'pyav', dataset.short_side), crop_rng))
            differ += not torch.equal(pair[0], pair[1])
    assert differ >= 4  # independent crops and flips


def test_load_test_clip(tiny):
    config = config_for(tiny)
    path = os.path.join(str(tiny[0]), 'val', 'Class01', 'v_Class01_g21_c01.mp4')
    if not os.path.exists(path):
        path = os.path.join(str(tiny[0]), 'val', 'Class01', 'v_Class01_g21_c01.avi')
    views, display = load_test_clip(config, path, num_clip=2, num_crop=3)
    assert views.shape == display.shape == (6, 4, 3, 32, 32)
    assert views.dtype == torch.float32 and display.dtype == torch.uint8
    assert torch.equal(views, normalize(display))


@pytest.fixture()
def with_bad(tmp_path):
    """A dataset whose train list holds a text file renamed .avi and a truncated MP4."""
    files = make_dataset(tmp_path, num_classes=2, videos_per_class=4, num_frames=8, ext=['.avi', '.mp4'])
    text = tmp_path / 'train' / 'Class00' / 'v_Class00_g01_c01.avi'
    text.write_text('not a video')
    mp4 = tmp_path / 'train' / 'Class01' / 'v_Class01_g02_c01.mp4'
    mp4.write_bytes(mp4.read_bytes()[:1500])
    return files, [str(text), str(mp4)]


def test_bad_videos_raise_naming_the_file(with_bad):
    files, bad = with_bad
    config = data_config(*files, num_classes=2, DATA__BATCH_SIZE=8)
    dataset, _, loader, _ = build_dataloader(config)
    with pytest.raises(VideoDecodeError) as err:
        next(iter(loader))
    assert err.value.path in bad and str(err.value).startswith(err.value.path)


def test_bad_videos_are_skipped_and_logged_once(with_bad, caplog):
    files, bad = with_bad
    config = data_config(*files, num_classes=2, DATA__BATCH_SIZE=4, DATA__SKIP_BAD_VIDEOS=True)
    _, _, loader, _ = build_dataloader(config)
    decode._logged.clear()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            batches = list(loader)
            assert [clips.shape[0] for clips, _, _ in batches] == [4, 4]
    skipped = [r.getMessage() for r in caplog.records if 'skipping a bad video' in r.getMessage()]
    assert {r.name for r in caplog.records if 'skipping' in r.getMessage()} == {'datasets.video_dataset'}
    assert sorted(m.split(': ', 1)[1].split(':')[0] for m in skipped) == sorted(bad)


def test_skipping_gives_up_when_nothing_decodes(tmp_path):
    files = make_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=4)
    for folder, _, names in os.walk(tmp_path):
        for name in names:
            if name.endswith('.avi'):
                with open(os.path.join(folder, name), 'w') as f:
                    f.write('junk')
    config = data_config(*files, num_classes=2, DATA__SKIP_BAD_VIDEOS=True)
    dataset, _, _, _ = build_dataloader(config)
    with pytest.raises(RuntimeError, match='11 videos in a row failed to decode'):
        dataset[0]


def test_missing_files_fail_at_start_or_are_left_out(tiny, tmp_path, caplog):
    root, (train, val, labels) = tiny
    csv = tmp_path / 'train.csv'
    csv.write_text(open(train).read() + 'train/Class00/gone.avi,0\n')
    config = data_config(str(csv), val, labels, num_classes=3, root=root)
    with pytest.raises(VideoDecodeError, match=r'gone.avi: file not found \(1 of the 7 videos .* DATA.ROOT'):
        build_dataloader(config)
    config = data_config(str(csv), val, labels, num_classes=3, root=root, DATA__SKIP_BAD_VIDEOS=True)
    with caplog.at_level(logging.WARNING):
        dataset_train, _, _, _ = build_dataloader(config)
    assert len(dataset_train) == 6 and 'missing and left out' in caplog.text


def test_annotation_errors_stop_the_build(tiny, tmp_path):
    root, (train, val, labels) = tiny
    with pytest.raises(AnnotationError, match='lists 3 classes, but MODEL.NUM_CLASSES is 4'):
        build_dataloader(data_config(train, val, labels, num_classes=4, root=root))
    csv = tmp_path / 'val.csv'
    csv.write_text('val/Class00/v_Class00_g21_c01.avi,7\n')
    with pytest.raises(AnnotationError, match=r'line 1: label 7 is outside \[0, 3\)'):
        build_dataloader(data_config(train, str(csv), labels, num_classes=3, root=root))


def test_too_few_videos_for_a_batch(tiny):
    with pytest.raises(ValueError, match='cannot fill one batch of DATA.BATCH_SIZE 8'):
        build_dataloader(config_for(tiny, DATA__BATCH_SIZE=8))


def test_public_names():
    for name in ('build_dataloader', 'build_val_loader', 'build_mixup', 'load_test_clip', 'read_annotations',
                 'read_label_list', 'decode_frames', 'count_frames', 'VideoDecodeError', 'AnnotationError'):
        assert hasattr(datasets, name), name


def test_a_bad_validation_video_is_marked_not_replaced(tmp_path):
    """Under SKIP_BAD_VIDEOS a corrupt validation video comes back with index -1 (left out of the
    scores), never as another video's views; without the flag it is an error naming the file."""
    root = tmp_path / 'd'
    train, val, labels = make_dataset(root, num_classes=2, videos_per_class=2)
    bad = open(val, newline='').read().splitlines()[0].split(',')[0]
    with open(os.path.join(root, bad), 'w') as f:
        f.write('not a video')
    dataset, _ = build_val_loader(data_config(train, val, labels, num_classes=2, root=root), 1, 1)
    with pytest.raises(VideoDecodeError, match=os.path.basename(bad)):
        dataset[0]
    config = data_config(train, val, labels, num_classes=2, root=root, DATA__SKIP_BAD_VIDEOS=True)
    dataset, _ = build_val_loader(config, 2, 1)
    views, label, index = dataset[0]
    assert index == -1 and views.shape[0] == 2 and label == 0
    assert dataset[1][2] == 1
