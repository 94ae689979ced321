"""tools.predict on generated videos: top-k class names with the mean softmax over the views that
engine.evaluate scores, bad videos named without losing the others, --json, and --onnx. main() runs
in-process here (the command line itself: tests/test_commands.py and one subprocess run below)."""
import json
import math
import re

import pytest
import torch

from datasets import load_test_clip
from engine import evaluate, predict_video
from tests.helpers.deploy import NUM_CLASSES, tiny_deployment
from tests.helpers.runs import run
from tools import predict
from utils.checkpoint import CheckpointError
from utils.errors import UserError


def parse_json(output):
    """The JSON list tools.predict prints on stdout (the runner appends stderr after it)."""
    return json.loads(output[output.index('['):output.rindex(']') + 1])


def evaluation_probs(d, video, num_clip, num_crop):
    """The video's mean softmax as engine.evaluate computes it. evaluate reports the NLL of that mean
    at the label, so one single-video evaluation per class label gives back every probability."""
    views, _ = load_test_clip(d.config, video, num_clip, num_crop)
    probs = []
    for label in range(NUM_CLASSES):
        loader = [(views[None], torch.tensor([label]), torch.tensor([0]))]
        stats = evaluate(d.model, loader, 1, NUM_CLASSES, device=torch.device('cpu'),
                         chunk_size=d.config.DATA.BATCH_SIZE)
        assert stats['num_views'] == num_clip * num_crop
        probs.append(math.exp(-stats['loss']))
    return probs


def predict_main(argv, capsys):
    """(exit status, stdout + stderr) of tools.predict's main() run in this process."""
    capsys.readouterr()  # drop what came before (the ONNX exporter prints)
    code = predict.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_predict_prints_topk_with_the_evaluation_probabilities(deployed, capsys):
    videos = deployed.videos[:2]
    _, output = predict_main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, *videos,
                              '--views', '3x1', '--topk', '2', '--json'], capsys)
    results = parse_json(output)
    assert [r['video'] for r in results] == videos
    for result, video in zip(results, videos):
        expected = evaluation_probs(deployed, video, 3, 1)
        assert result['views'] == 3
        order = sorted(range(NUM_CLASSES), key=lambda c: -expected[c])[:2]
        assert [e['id'] for e in result['top']] == order
        assert [e['class'] for e in result['top']] == [f'Class{c:02d}' for c in order]
        for entry in result['top']:
            assert entry['prob'] == pytest.approx(expected[entry['id']], abs=1e-6)

    # Text form, with the config's default views (TEST.NUM_CLIP 2 x TEST.NUM_CROP 3).
    _, output = predict_main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, videos[0]], capsys)
    expected = evaluation_probs(deployed, videos[0], 2, 3)
    assert f'{videos[0]} (2 clips x 3 crops)' in output
    lines = re.findall(r'^\s+(\d)\. (Class\d\d)\s+([\d.]+)$', output, re.M)
    assert [int(rank) for rank, _, _ in lines] == [1, 2, 3]  # --topk 5, capped at the 3 classes
    for _, name, prob in lines:
        assert float(prob) == pytest.approx(expected[int(name[5:])], abs=1e-4)


@pytest.mark.slow
def test_unreadable_video_is_named_and_the_others_are_still_predicted(deployed, tmp_path):
    """As a user types it (a subprocess): the exit status and both output streams."""
    corrupt = tmp_path / 'corrupt.avi'
    corrupt.write_bytes(b'RIFF\x00\x00\x00\x00AVI garbage' * 50)
    missing = str(tmp_path / 'missing.mp4')
    good = deployed.videos[0]
    args = ['-m', 'tools.predict', '--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, str(corrupt), good,
            missing]
    code, output = run(args, check=False)
    assert code == 1
    assert re.search(f'error: cannot decode {re.escape(str(corrupt))}: ', output), output
    assert f'error: cannot decode {missing}: file not found' in output
    assert f'{good} (2 clips x 3 crops)' in output and '  1. Class' in output
    assert '2 of 3 videos could not be decoded' in output

    code, output = run([*args, '--json'], check=False)
    assert code == 1
    results = parse_json(output)
    assert [r['video'] for r in results] == [str(corrupt), good, missing]
    assert str(corrupt) in results[0]['error'] and 'file not found' in results[2]['error']
    assert len(results[1]['top']) == NUM_CLASSES and 'error' not in results[1]


@pytest.mark.slow
def test_predict_through_onnxruntime_equals_the_checkpoint(deployed, deployed_onnx, capsys):
    _, output = predict_main(['--cfg', deployed.cfg, '--onnx', deployed_onnx, *deployed.videos, '--json'], capsys)
    results = parse_json(output)
    for result, video in zip(results, deployed.videos):
        expected = evaluation_probs(deployed, video, 2, 3)
        for entry in result['top']:
            assert entry['prob'] == pytest.approx(expected[entry['id']], abs=1e-5)


def test_checkpoint_of_another_model_is_a_clear_error(deployed, tmp_path, capsys):
    other = tiny_deployment(tmp_path, extra={'MODEL': {'FOCAL': {'EMBED_DIM': 16}}})
    with pytest.raises(CheckpointError) as exc:
        predict.main(['--cfg', deployed.cfg, '--checkpoint', other.checkpoint, deployed.videos[0]])
    assert other.checkpoint in str(exc.value) and 'does not fit the model' in str(exc.value)


def test_corrupt_onnx_file_is_named(deployed, tmp_path):
    bad = tmp_path / 'bad.onnx'
    bad.write_bytes(b'\x08\x07garbage')
    with pytest.raises(UserError, match=f'{bad}: cannot load the ONNX model'):
        predict.main(['--cfg', deployed.cfg, '--onnx', str(bad), deployed.videos[0]])


@pytest.mark.parametrize('views', ['4x2', 'x3', '0x1'])
def test_bad_views_argument_is_refused(deployed, views, capsys):
    with pytest.raises(SystemExit):
        predict.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, deployed.videos[0],
                      '--views', views])
    assert '--views' in capsys.readouterr().err


def test_in_process_prediction_is_the_mean_of_the_views(deployed):
    """engine.predict_video against a direct computation: softmax of each view's logits, averaged."""
    probs = predict_video(deployed.model, deployed.config, deployed.videos[2], 2, 3, device=torch.device('cpu'))
    views, _ = load_test_clip(deployed.config, deployed.videos[2], 2, 3)
    with torch.no_grad():
        direct = deployed.model(views).softmax(-1).double().mean(0)
    assert probs.dtype == torch.float64 and probs.shape == (NUM_CLASSES,)
    torch.testing.assert_close(probs, direct, atol=1e-6, rtol=0)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
