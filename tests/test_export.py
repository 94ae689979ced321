"""tools.export and models/deploy.py: the ONNX model of a tiny checkpoint equals PyTorch on real decoded clips (batch 1 and
3), a mismatch fails the export, and a bad ONNX file fails naming it."""
import copy
import os
import re
import shutil

import pytest
import torch

from datasets import VideoDecodeError, load_test_clip
from models.deploy import OnnxError, check_export, load_onnx
from tests.helpers.runs import run
from tools import export
from utils.checkpoint import CheckpointError


def test_onnxruntime_equals_pytorch_on_a_generated_video_at_batch_1_and_3(deployed, deployed_onnx):
    onnx_model = load_onnx(deployed_onnx, deployed.config.DATA.NUM_FRAMES, deployed.config.DATA.INPUT_SIZE)
    batch_dim = onnx_model.session.get_inputs()[0].shape[0]
    assert isinstance(batch_dim, str), f'batch dimension is fixed to {batch_dim}'
    clips, _ = load_test_clip(deployed.config, deployed.videos[1], num_clip=3, num_crop=1)
    assert clips.shape == (3, 4, 3, 32, 32)
    for batch in (clips[:1], clips):
        with torch.no_grad():
            expected = deployed.model(batch)
        got = onnx_model(batch)
        assert got.shape == (len(batch), 3)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    # The views differ, so a batch of 3 really is three clips, not one broadcast.
    assert (expected[0] - expected[1:]).abs().max() > 1e-4


def test_mismatch_above_tolerance_fails_and_removes_the_file(deployed, deployed_onnx, tmp_path):
    path = shutil.copy(deployed_onnx, tmp_path / 'copy.onnx')
    onnx_model = load_onnx(str(path), 4, 32)
    clips, _ = load_test_clip(deployed.config, deployed.videos[0], num_clip=3, num_crop=1)
    assert check_export(deployed.model, onnx_model, clips) <= 1e-4
    changed = copy.deepcopy(deployed.model)
    with torch.no_grad():
        changed.head.bias.add_(1e-3)  # the exported file no longer matches these weights
    with pytest.raises(OnnxError, match=r'copy\.onnx: onnxruntime logits differ from PyTorch by .*removed'):
        check_export(changed, onnx_model, clips)
    assert not os.path.exists(path)


@pytest.mark.parametrize('content', [b'', b'not an onnx file\n', 'truncated'])
def test_corrupt_onnx_file_is_a_clear_error_naming_it(deployed_onnx, tmp_path, content):
    path = tmp_path / 'model.onnx'
    if content == 'truncated':
        content = open(deployed_onnx, 'rb').read()[:2000]
    path.write_bytes(content)
    with pytest.raises(OnnxError, match=re.escape(str(path)) + ': cannot load the ONNX model'):
        load_onnx(str(path), 4, 32)
    with pytest.raises(OnnxError, match='ONNX file not found'):
        load_onnx(str(tmp_path / 'missing.onnx'), 4, 32)


def test_onnx_for_another_clip_shape_than_the_config_is_refused(deployed_onnx):
    with pytest.raises(OnnxError, match=r"shape \['batch', 4, 3, 32, 32\].*\(batch, 8, 3, 32, 32\)"):
        load_onnx(deployed_onnx, 8, 32)


def test_export_without_a_video_or_validation_list_says_so(deployed, tmp_path):
    out = tmp_path / 'never.onnx'
    with pytest.raises(OnnxError, match='pass --video FILE, or set DATA.VAL_FILE'):
        export.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--out', str(out),
                     '--opts', 'DATA.VAL_FILE', ''])
    assert not out.exists()


def test_export_with_an_unreadable_video_fails_naming_it(deployed, tmp_path):
    video = tmp_path / 'broken.mp4'
    video.write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'\xff' * 500)
    out = tmp_path / 'never.onnx'
    with pytest.raises(VideoDecodeError) as exc:
        export.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--out', str(out),
                     '--video', str(video)])
    assert str(exc.value).startswith(f'{video}: ')
    assert not out.exists()


def test_export_of_a_checkpoint_for_another_model_fails_naming_it(deployed, tmp_path):
    with pytest.raises(CheckpointError) as exc:
        export.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--out',
                     str(tmp_path / 'x.onnx'), '--opts', 'MODEL.NUM_CLASSES', '5'])
    assert deployed.checkpoint in str(exc.value) and 'does not fit the model' in str(exc.value)


@pytest.mark.slow
def test_export_command_verifies_on_the_validation_list_and_prints_latency(deployed, tmp_path):
    out = tmp_path / 'model.onnx'
    _, output = run(['-m', 'tools.export', '--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint,
                     '--out', str(out), '--runs', '3'])
    diff = re.search(r'verified on (\S+) \(batch 1 and 3\): max abs logit difference onnxruntime vs '
                     r'PyTorch (\S+) \(<= 0.0001\)', output)
    assert diff, output
    assert diff.group(1) == deployed.videos[0]  # the first video of DATA.VAL_FILE
    assert float(diff.group(2)) <= 1e-4
    latency = re.search(r'PyTorch eager ([\d.]+) ms \| onnxruntime ([\d.]+) ms', output)
    assert latency and float(latency.group(1)) > 0 and float(latency.group(2)) > 0, output
    onnx_model = load_onnx(str(out), 4, 32)
    clips, _ = load_test_clip(deployed.config, deployed.videos[2], num_clip=3, num_crop=1)
    with torch.no_grad():
        torch.testing.assert_close(onnx_model(clips), deployed.model(clips), atol=1e-4, rtol=0)
