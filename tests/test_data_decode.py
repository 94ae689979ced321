"""Decoding real files with decord and PyAV: same frames for the same indices, reduced-size decoding,
over-reported frame counts clamped, bad files named."""
import logging
import os

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

import datasets.decode as decode
from datasets.decode import VideoDecodeError, count_frames, decode_frames, read_clip, scan_video
from datasets.encode import frame_level, marker_frames, write_video
from tests.helpers.videos import BACKENDS



def frame_ids(frames):
    """Which marker frame each decoded frame is: the grey level nearest to the frame's median
    (levels are 8 apart, so one frame off is caught)."""
    levels = torch.tensor([frame_level(i) for i in range(27)], dtype=torch.float32)
    median = frames[:, :, frames.shape[2] // 3:].float().flatten(1).median(dim=1).values
    return (median[:, None] - levels[None]).abs().argmin(dim=1).tolist()


# (extension, lossless, (width, height), fps, frames): MP4 h264 and AVI mpeg4/FFV1, sizes, rates
VIDEOS = [('.mp4', True, (64, 48), 25, 24), ('.avi', True, (48, 32), 30, 20),
          ('.mp4', False, (64, 48), 30, 26), ('.avi', False, (40, 32), 12, 6), ('.webm', False, (48, 64), 24, 12)]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('videos')
    out = []
    for k, (ext, lossless, (w, h), fps, n) in enumerate(VIDEOS):
        frames = marker_frames(n, w, h, seed=k)
        path = write_video(str(folder / f'v{k}{ext}'), frames, fps=fps, lossless=lossless)
        out.append((path, frames, lossless))
    return out


@pytest.mark.parametrize('backend', BACKENDS)
def test_lossless_files_decode_to_the_exact_frames(videos, backend):
    for path, frames, lossless in videos:
        if not lossless:
            continue
        n = len(frames)
        indices = [0, n - 1, 3, 3, n // 2]
        got = decode_frames(path, indices, backend)
        assert got.dtype == torch.uint8 and got.shape == (5, 3, frames.shape[1], frames.shape[2])
        assert np.array_equal(got.permute(0, 2, 3, 1).numpy(), frames[indices]), path


def test_backends_return_the_same_frames(videos):
    """Both wrap FFmpeg decoders, so the YUV planes are identical; only the RGB conversion could
    round differently. The tolerance allows that, the frame ids rule out an index shift."""
    if decode.decord is None:
        pytest.skip('decord cannot be imported')
    for path, frames, _ in videos:
        n = len(frames)
        indices = sorted({0, 1, n // 3, n // 2, n - 2, n - 1})
        a, b = (decode_frames(path, indices, backend).int() for backend in ('decord', 'pyav'))
        assert a.shape == b.shape == (len(indices), 3, frames.shape[1], frames.shape[2])
        assert (a - b).abs().max() <= 3 and (a - b).abs().float().mean() <= 0.5, path
        assert frame_ids(a) == frame_ids(b) == indices, path


@pytest.mark.parametrize('backend', BACKENDS)
def test_reduced_size_decoding_keeps_the_aspect_and_the_frames(videos, backend):
    for path, frames, _ in videos:
        height, width = frames.shape[1:3]
        n = len(frames)
        got = decode_frames(path, [0, n - 1], backend, short_side=16)
        resized = torch.zeros(1, 1, height, width)
        assert got.shape[2:] == F.resize(resized, [16]).shape[2:], path  # as torchvision would resize
        assert frame_ids(got) == [0, n - 1]
        # never scaled up
        assert decode_frames(path, [0], backend, short_side=1000).shape[2:] == (height, width)
    if decode.decord is not None:
        a, b = (decode_frames(videos[2][0], [0, 5], bk, short_side=24).float() for bk in ('decord', 'pyav'))
        assert (a - b).abs().mean() < 1.5  # both scale bilinearly


@pytest.mark.parametrize('backend', BACKENDS)
def test_frame_counts(videos, backend):
    for path, frames, _ in videos:
        assert count_frames(path, backend) == len(frames), path  # WebM: from duration x rate
        assert scan_video(path, backend) == (len(frames), len(frames), [], 0, None)


@pytest.mark.parametrize('ext', ['.mp4', '.avi', '.webm'])
def test_pyav_keyframe_seeking_matches_decoding_in_order(tmp_path, ext):
    """The timestamp index + keyframe seeks (MP4 with B-frames, AVI, WebM) pick the same frames as
    counting frames from the start."""
    path = write_video(str(tmp_path / f'long{ext}'), marker_frames(80, 64, 48), options={'g': '8'})
    wanted = [2, 30, 31, 57, 79]
    container, stream = decode._pyav_open(path)
    with container:
        index = decode._pyav_index(container, stream)
        assert index is not None and len(index[0]) == 80 and len(index[1]) > 1
        seeking = decode._pyav_seek_frames(container, stream, wanted, None, index)
    container, stream = decode._pyav_open(path)
    with container:
        in_order, decoded = decode._pyav_frames(container, stream, wanted, None)
    assert seeking is not None and sorted(seeking) == wanted and decoded == 80
    assert all(np.array_equal(seeking[i], in_order[i]) for i in wanted)


def test_pyav_stops_after_the_last_wanted_frame(videos):
    container, stream = decode._pyav_open(videos[0][0])
    with container:
        frames, decoded = decode._pyav_frames(container, stream, [2, 5], None)
    assert sorted(frames) == [2, 5] and decoded == 6


@pytest.fixture(scope='module')
def cut_video(tmp_path_factory):
    """An MP4 with its index first, cut to 60%: the index still lists 30 frames, fewer decode."""
    folder = tmp_path_factory.mktemp('cut')
    full = write_video(str(folder / 'full.mp4'), marker_frames(30, 64, 48), faststart=True)
    data = open(full, 'rb').read()
    path = str(folder / 'cut.mp4')
    with open(path, 'wb') as f:
        f.write(data[:len(data) * 6 // 10])
    return path


@pytest.mark.parametrize('backend', BACKENDS)
def test_over_reported_frame_counts_are_clamped(cut_video, backend, caplog):
    reported, decodable, _, _, mismatch = scan_video(cut_video, backend)
    assert reported == 30 and 0 < decodable < 30 and mismatch is None
    decode._logged.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='datasets.decode'):
        last = decode_frames(cut_video, [0, 29], backend)
        frames, indices = read_clip(cut_video, lambda total: list(range(0, total, 3)), backend)
    assert frame_ids(last) == [0, decodable - 1]
    assert indices == list(range(0, decodable, 3)) and frame_ids(frames) == indices
    warnings = [r for r in caplog.records if cut_video in r.getMessage()]
    assert len(warnings) == (2 if backend == 'decord' else 1)  # decord also says it fell back to PyAV
    assert f'reports 30 frames but only {decodable} decode' in warnings[0].getMessage()


def bad_files(folder):
    text = folder / 'notes.avi'
    text.write_text('this is not a video\n')
    empty = folder / 'empty.avi'
    empty.write_bytes(b'')
    full = write_video(str(folder / 'whole.mp4'), marker_frames(20, 64, 48))  # index at the end
    cut = folder / 'truncated.mp4'
    cut.write_bytes(open(full, 'rb').read()[:3000])
    return {'missing': (str(folder / 'missing.avi'), 'file not found'), 'empty': (str(empty), 'empty file'),
            'text': (str(text), 'cannot open'), 'truncated': (str(cut), 'cannot open')}


@pytest.mark.parametrize('backend', BACKENDS)
def test_bad_files_raise_an_error_naming_the_file(tmp_path, backend):
    for kind, (path, reason) in bad_files(tmp_path).items():
        for call in (lambda: decode_frames(path, [0], backend), lambda: count_frames(path, backend),
                     lambda: scan_video(path, backend)):
            with pytest.raises(VideoDecodeError) as err:
                call()
            assert isinstance(err.value, RuntimeError) and err.value.path == path
            assert str(err.value).startswith(path) and reason in str(err.value), kind


def test_pyav_is_used_when_decord_is_missing(videos, monkeypatch, caplog):
    monkeypatch.setattr(decode, 'decord', None)
    decode._logged.clear()
    with caplog.at_level(logging.WARNING, logger='datasets.decode'):
        assert decode.resolve_backend('decord') == 'pyav'
        frames = decode_frames(videos[0][0], [1, 2], 'decord')
    assert frame_ids(frames) == [1, 2]
    assert 'decord cannot be imported' in caplog.text


def test_unknown_decoder_is_an_error():
    with pytest.raises(ValueError, match="DATA.DECODER must be one of .* got 'opencv'"):
        decode.resolve_backend('opencv')
    with pytest.raises(ValueError, match='non-negative'):
        decode_frames(os.devnull, [-1])


def test_decord_misread_width_falls_back_to_pyav(tmp_path):
    """decord 0.6 returns 4- or 6-channel frames for some widths; we must not pass them on."""
    import numpy as np
    from datasets.encode import write_video
    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8)
    path = str(tmp_path / 'w48.mp4')
    write_video(path, frames, lossless=True)
    for backend in ('decord', 'pyav'):  # decord missing: resolve_backend reads with PyAV
        out = decode.decode_frames(path, [0, 3, 5], backend=backend)
        assert out.shape == (3, 3, 32, 48) and out.dtype == torch.uint8


@pytest.mark.skipif(decode.decord is None, reason='decord cannot be imported')
def test_avi_pyav_and_decord_at_the_sampled_frames(tmp_path):
    """320x240 MPEG-4 AVIs as UCF101's: the same frame count from both, and at the sampled indices
    (train and 1-view test, published and all-frames sampling) the same RGB frames as decoding in
    order. Without B-frames (Simple Profile) decord reads them, bit for bit; with B-frames (packed
    Advanced Simple Profile) decord's random access would return other frames of the GOP
    (tests/test_data_wild.py), so `DATA.DECODER decord` reads them with PyAV."""
    import av
    import torch as th

    from datasets.sampling import Sampling, test_indices, train_indices, train_offsets

    for n, options, decord_reads in [(186, {}, True), (40, {}, True), (40, {'bf': '2'}, False)]:
        path = write_video(str(tmp_path / f'v{n}_{len(options)}.avi'), marker_frames(n, 320, 240, seed=n),
                           options=options)
        with av.open(path) as container:
            in_order = np.stack([f.to_ndarray(format='rgb24') for f in container.decode(video=0)])
        assert count_frames(path, 'decord') == count_frames(path, 'pyav') == len(in_order) == n
        assert decode._use_decord(path, 'decord')[0] == decord_reads
        g = th.Generator().manual_seed(0)
        indices = sorted({i for s in (Sampling(), Sampling(all_frames=True))
                          for i in train_indices(n, 8, train_offsets(8, g), s) + test_indices(n, 8, sampling=s)})
        for backend in ('pyav', 'decord'):
            frames = decode_frames(path, indices, backend).permute(0, 2, 3, 1).numpy()
            assert np.array_equal(frames, in_order[indices]), (path, backend)
