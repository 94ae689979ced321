"""Deployment end to end on real decoded clips: tools.eval_onnx scores an ONNX file as main.py --eval
scores the checkpoint, tools.export --int8 writes a quantized model and reports (not fails on) its
distance to PyTorch, tools.predict --stream scores each window as the evaluation scores a video that
long, and bench_deploy's harness prints its table (a tiny dry run)."""
import json
import os
import re

import numpy as np
import onnx
import pytest
import torch

from datasets.encode import write_video
from datasets.synthetic import render_clip
from engine import predict_video
from datasets import list_clips
from models.deploy import OnnxError, compare_logits, load_onnx
from tests.helpers.runs import final_record, run, run_dir, run_inline, write_config
from tools import export, predict


def eval_outputs(folder):
    """(final record, per_class.csv text, confusion.csv text) of an evaluation folder."""
    texts = [open(os.path.join(folder, name)).read() for name in ('per_class.csv', 'confusion.csv')]
    return (final_record(folder), *texts)


def test_eval_onnx_gives_main_eval_results_and_report_files(deployed, deployed_onnx, tmp_path, monkeypatch):
    assert run_inline('main.py', ['--eval', '--cfg', deployed.cfg, '--resume', deployed.checkpoint,
                                  '--output', str(tmp_path / 'ckpt')], monkeypatch) == 0
    assert run_inline('tools.eval_onnx', ['--cfg', deployed.cfg, '--onnx', deployed_onnx,
                                          '--output', str(tmp_path / 'onnx')], monkeypatch) == 0
    want, want_per_class, want_confusion = eval_outputs(tmp_path / 'ckpt' / 'eval_2x3')
    got, per_class, confusion = eval_outputs(tmp_path / 'onnx' / 'eval_tiny_2x3')
    assert (got['test_num_videos'], got['test_num_views']) == (len(deployed.videos), 6)
    for key in ('test_acc1', 'test_acc5', 'test_num_videos', 'test_num_views'):
        assert got[key] == want[key], key
    assert got['test_loss'] == pytest.approx(want['test_loss'], abs=1e-5)
    assert (per_class, confusion) == (want_per_class, want_confusion)
    assert got['checkpoint'] == deployed_onnx
    assert os.path.isfile(tmp_path / 'onnx' / 'eval_tiny_2x3' / 'confusion.png')


def test_eval_onnx_with_a_wrong_file_is_one_error_line(deployed, tmp_path, monkeypatch, capsys):
    code = run_inline('tools.eval_onnx', ['--cfg', deployed.cfg, '--onnx', str(tmp_path / 'none.onnx')], monkeypatch)
    assert code == 2
    assert capsys.readouterr().err.strip() == f'error: {tmp_path / "none.onnx"}: ONNX file not found'
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_export_int8_writes_a_quantized_model_and_reports_its_agreement(deployed, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / 'm.onnx')
    export.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--out', out, '--int8',
                 '--calib-videos', '3', '--check-videos', '3', '--runs', '1'])
    text = capsys.readouterr().out
    path = str(tmp_path / 'm.int8.onnx')
    graph = onnx.load(path).graph
    assert 'QuantizeLinear' in {node.op_type for node in graph.node}
    int8_weights = [t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 10, int8_weights  # every conv and linear layer's weight
    agreement, diff = re.search(r'INT8 vs PyTorch on 18 clips of 3 videos of .*val\.csv: top-1 agreement '
                                r'([\d.]+)%, max abs logit difference (\S+)', text).groups()
    # The printed figures are what the quantized model gives on those clips.
    clips, _ = list_clips(deployed.config, deployed.config.DATA.VAL_FILE, 3)
    int8 = load_onnx(path, 4, 32)
    want_diff, want_agreement, scale = compare_logits(deployed.model, int8, clips, deployed.config.DATA.BATCH_SIZE)
    assert float(diff) == pytest.approx(want_diff, rel=1e-2)
    assert float(agreement) == pytest.approx(100 * want_agreement, abs=0.05)
    with torch.no_grad():
        assert scale == deployed.model(clips).abs().max().item()
    assert 0 < want_diff < 0.2 * scale  # an approximation of the model, not a copy and not noise
    assert re.search(r'INT8 [\d.]+ ms \| speed-up INT8 over fp32 [\d.]+x', text), text
    # The quantized file is evaluated like the float one.
    assert run_inline('tools.eval_onnx', ['--cfg', deployed.cfg, '--onnx', path], monkeypatch) == 0
    assert final_record(tmp_path / 'eval_m.int8_2x3')['test_num_views'] == 6


def test_export_int8_without_a_training_list_fails_before_exporting(deployed, tmp_path):
    out = tmp_path / 'never.onnx'
    with pytest.raises(OnnxError, match=r"DATA.TRAIN_FILE is '.*missing.csv', which is not a file: INT8"):
        export.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--out', str(out), '--int8',
                     '--opts', 'DATA.TRAIN_FILE', str(tmp_path / 'missing.csv')])
    assert not out.exists()


def demo_clips(names, height=40, width=48, frames=16, seed=0):
    """One rendered clip (frames, H, W, 3) per demo class name."""
    return [render_clip(np.random.default_rng(seed + i), name, height, width, frames) for i, name in enumerate(names)]


def stream_json(argv, capsys):
    capsys.readouterr()
    assert predict.main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return lines[:-1], lines[-1]['summary']


def test_stream_scores_each_window_as_the_evaluation_scores_that_clip(deployed, tmp_path, capsys):
    """Three 16-frame clips in one lossless stream, --stride 16: window k is clip k, and its top
    class and probability are those tools.predict gives the clip's own file (1 clip x 1 crop)."""
    clips = demo_clips(['up', 'grow', 'left'])
    files = [write_video(str(tmp_path / f'clip{k}.mkv'), c, fps=16, lossless=True) for k, c in enumerate(clips)]
    long = write_video(str(tmp_path / 'long.mkv'), np.concatenate(clips), fps=16, lossless=True)
    base = ['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--stream', long, '--json']
    windows, summary = stream_json(base + ['--stride', '16'], capsys)
    assert [(w['start'], w['end']) for w in windows] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    expected = [predict_video(deployed.model, deployed.config, f, 1, 1, device=torch.device('cpu')) for f in files]
    for window, probs in zip(windows, expected):
        assert window['id'] == int(probs.argmax())
        assert window['prob'] == pytest.approx(float(probs.max()), abs=1e-5)
    assert (summary['frames'], summary['windows'], summary['window']) == (48, 3, 16)
    assert summary['video_seconds'] == pytest.approx(3.0)
    assert summary['real_time_factor'] == pytest.approx(3.0 / summary['compute_seconds'])

    # --stride 8 adds the windows across two clips; --smooth 2 averages each with the one before.
    windows, _ = stream_json(base + ['--stride', '8', '--window', '16'], capsys)
    assert [w['start'] for w in windows] == [0.0, 0.5, 1.0, 1.5, 2.0]
    smoothed, _ = stream_json(base + ['--stride', '16', '--smooth', '2'], capsys)
    both = [(expected[k - 1] + expected[k]) / 2 if k else expected[0] for k in range(3)]
    assert [w['id'] for w in smoothed] == [int(p.argmax()) for p in both]
    assert [w['prob'] for w in smoothed] == pytest.approx([float(p.max()) for p in both], abs=1e-5)


def test_stream_text_output_and_a_source_that_does_not_open(deployed, tmp_path, capsys, monkeypatch):
    long = write_video(str(tmp_path / 'long.mp4'), np.concatenate(demo_clips(['up', 'down'])), fps=16)
    capsys.readouterr()
    assert predict.main(['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint, '--stream', long]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and re.fullmatch(r' +0\.00 - +1\.00 s  Class0\d +0\.\d{4}', lines[0]), lines
    assert re.fullmatch(r'3 windows of 16 frames every 8 over 2\.0 s of video in [\d.]+ s: real-time factor [\d.]+',
                        lines[-1])
    missing = str(tmp_path / 'none.mp4')
    code = run_inline('tools.predict', ['--cfg', deployed.cfg, '--checkpoint', deployed.checkpoint,
                                        '--stream', missing], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == (f'error: {missing}: cannot open ([Errno 2] No such file or directory: '
                                         f"'{missing}')"), err


@pytest.mark.slow
def test_bench_deploy_dry_run_prints_the_table_and_the_ratios(tmp_path):
    _, out = run(['-m', 'benchmarks.bench_deploy', '--tiny', '--size', '32', '--frames', '2', '--runs', '1',
                  '--batches', '1', '2', '--models', 'videofocalnet_base', 'videofocalnet_nano',
                  '--json', str(tmp_path / 'b.json')], timeout=600)
    for model in ('Video-FocalNet-B', 'VFL-Net'):
        for engine in ('PyTorch eager', 'onnxruntime fp32', 'onnxruntime INT8'):
            row = rf'\| {model} \| 0\.\d\dM \| [\d.]+ \| {engine} \| [\d.]* \| [\d.]+ \| [\d.]+ \| \d+ \|'
            assert re.search(row, out), out
    assert re.search(r'teacher / student \(Video-FocalNet-B / VFL-Net\): params [\d.]+x, GFLOPs [\d.]+x '
                     r'\(paper: about 7x\), ONNX size [\d.]+x', out), out
    assert re.search(r'VFL-Net: INT8 speed-up over fp32 onnxruntime b1 [\d.]+x, b2 [\d.]+x', out), out
    saved = json.load(open(tmp_path / 'b.json'))
    assert sorted(saved['results']) == ['videofocalnet_base', 'videofocalnet_nano']


STREAM_CLASSES = ['up', 'right', 'grow']
# A trained stand-in for the demo's student: teacher-sized (width 32, depths 1 1 2 1), three demo
# classes without camera shake, 10 epochs of 64 clips per class: 96% top-1 on its 24 validation
# clips (one view) when it was written, in about 30 s of CPU.
STREAM_RECIPE = {
    'DATA': {'BATCH_SIZE': 16},
    'MODEL': {'TUBELET_SIZE': 2, 'FOCAL': {'EMBED_DIM': 32, 'DEPTHS': [1, 1, 2, 1]}},
    'AUG': {'SAMPLE_ALL_FRAMES': True, 'FLIP_PROB': 0.0, 'COLOR_JITTER_PROB': 0.0, 'GRAY_SCALE': 0.0},
    'TRAIN': {'EPOCHS': 10, 'BASE_LR': 0.0192, 'WARMUP_LR': 1e-4, 'MIN_LR': 1e-4, 'WEIGHT_DECAY': 0.05,
              'OPTIMIZER': {'NAME': 'adamw'}},
    'TEST': {'NUM_CLIP': 1, 'NUM_CROP': 1, 'EVAL_FREQ': 0}, 'SAVE_FREQ': 100, 'PRINT_FREQ': 100,
}


@pytest.mark.slow
def test_stream_labels_follow_the_segments_of_a_long_video(tmp_path, capsys):
    """Six segments of two clips each (32 frames, 2 s), every class twice, in one 12 s video; with
    --stride 16 every window is one clip. Required: at least 10 of the 12 windows (83%) carry their
    segment's class, and every segment has a window labelled with its class."""
    from datasets.synthetic import generate

    data = generate(str(tmp_path / 'data'), clips_per_class=64, val_per_class=8, size=40, num_frames=16,
                    classes=STREAM_CLASSES, workers=1)
    cfg = write_config(tmp_path / 'stream.yaml', data['train_file'], data['val_file'], data['label_list'], 3,
                       extra=dict(STREAM_RECIPE, DATA=dict(STREAM_RECIPE['DATA'], ROOT=data['root'])))
    run(['main.py', '--cfg', cfg, '--output', str(tmp_path / 'out')])
    checkpoint = os.path.join(run_dir(tmp_path / 'out'), 'ckpt_epoch_9.pth')
    segments = ['up', 'right', 'grow', 'up', 'grow', 'right']
    clips = demo_clips([name for name in segments for _ in range(2)], height=40, width=40, seed=1000)
    long = write_video(str(tmp_path / 'long.mp4'), np.concatenate(clips), fps=16)
    windows, summary = stream_json(['--cfg', cfg, '--checkpoint', checkpoint, '--stream', long, '--json',
                                    '--stride', '16'], capsys)
    labels = [w['class'] for w in windows]
    assert len(labels) == 12 and summary['video_seconds'] == pytest.approx(12.0)
    truth = [name for name in segments for _ in range(2)]
    hits = sum(a == b for a, b in zip(labels, truth))
    assert hits >= 10, list(zip(truth, labels))
    for k, name in enumerate(segments):
        seen = labels[2 * k:2 * k + 2]
        assert name in seen, (k, name, seen)
