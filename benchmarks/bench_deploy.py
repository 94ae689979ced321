"""The deployment table: teacher vs student on the CPU this runs on, each engine in its own process.

    python -m benchmarks.bench_deploy                       # B, S, T and VFL-Net at 8 x 224 x 224
    python -m benchmarks.bench_deploy --models videofocalnet_nano --batches 1 --runs 3
    python -m benchmarks.bench_deploy --tiny --size 32 --frames 2 --runs 1   # CI's dry run (seconds)

Per model (random weights, 101 classes: speed and memory do not depend on the weights): parameters,
fvcore GFLOPs at batch 1, the ONNX file sizes (float32 from tools.export's exporter, INT8 from
tools.export --int8's quantizer, calibrated here on random clips), and for each engine (PyTorch
eager, onnxruntime float32, onnxruntime INT8) the median latency per clip at each batch size and the
peak resident memory of a fresh process that loads the model and runs one clip at batch 1 (measured
before any larger batch runs). The last lines give the teacher / student ratio of every figure (the
B / VFL-Net, or the first / the last of --models) beside the paper's claim of about 7x fewer GFLOPs.
`--json FILE` also writes the figures, each model's as soon as they are measured; `--from-json FILE`
prints the table of such a file.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

from utils import cli
from utils.errors import cli_main

ENGINES = ('eager', 'ort', 'int8')
ENGINE_NAMES = {'eager': 'PyTorch eager', 'ort': 'onnxruntime fp32', 'int8': 'onnxruntime INT8'}
DEFAULT_MODELS = ('videofocalnet_base', 'videofocalnet_small', 'videofocalnet_tiny', 'videofocalnet_nano')
SHORT = {'videofocalnet_base': 'Video-FocalNet-B', 'videofocalnet_small': 'Video-FocalNet-S',
         'videofocalnet_tiny': 'Video-FocalNet-T', 'videofocalnet_nano': 'VFL-Net'}
PAPER_GFLOPS_RATIO = 7  # the paper: "about 7x fewer GFLOPs" than the teacher
NUM_CLASSES = 101
TINY = dict(embed_dim=8, depths=[1, 1, 1, 1])


def build(name, args):
    import timm

    import models  # noqa: F401  (registers the zoo)

    torch.manual_seed(0)
    extra = TINY if args.tiny else {}
    return timm.create_model(name, num_classes=NUM_CLASSES, num_frames=args.frames, **extra).eval()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def prepare(name, args, folder):
    """Parameters, GFLOPs, and the float32 and INT8 ONNX files of one model."""
    from models.deploy import export_onnx, quantize_int8
    from models.flops import count

    model = build(name, args)
    params, gflops, _ = count(model, args.frames, args.size)
    fp32, int8 = (os.path.join(folder, f'{name}{suffix}.onnx') for suffix in ('', '.int8'))
    start = time.perf_counter()
    export_onnx(model, args.frames, args.size, fp32)
    export_s = time.perf_counter() - start
    del model
    calibration = torch.randn(args.calibration, args.frames, 3, args.size, args.size)
    start = time.perf_counter()
    quantize_int8(fp32, int8, calibration, args.quant_format, args.per_channel)
    return {'params': params, 'gflops': gflops, 'onnx_mb': os.path.getsize(fp32) / 2 ** 20,
            'int8_mb': os.path.getsize(int8) / 2 ** 20, 'export_s': export_s,
            'quantize_s': time.perf_counter() - start}


def measure(name, engine, args, folder):
    """Peak RSS after loading and one batch-1 clip, then median latency per clip at each batch."""
    from models.deploy import load_onnx, median_latency

    if engine == 'eager':
        model = build(name, args)
    else:
        path = os.path.join(folder, f'{name}{".int8" if engine == "int8" else ""}.onnx')
        model = load_onnx(path, args.frames, args.size)
    with torch.no_grad():
        model(torch.randn(1, args.frames, 3, args.size, args.size))
    result = {'rss_mb': peak_rss_mb()}
    for batch in args.batches:
        clip = torch.randn(batch, args.frames, 3, args.size, args.size)
        result[f'ms_b{batch}'] = median_latency(model, clip, warmup=1, runs=args.runs) * 1000 / batch
    return result


def worker(args):
    """One step in this process (the parent starts one per model and engine): prints a JSON line."""
    step, name, folder = args.worker
    result = prepare(name, args, folder) if step == 'prepare' else measure(name, step, args, folder)
    print(json.dumps(result))


def run_worker(step, name, args, folder):
    """Run one worker step in a fresh Python process and return its figures."""
    argv = [sys.executable, '-m', 'benchmarks.bench_deploy', '--worker', step, name, folder,
            '--frames', str(args.frames), '--size', str(args.size), '--runs', str(args.runs),
            '--calibration', str(args.calibration), '--quant-format', args.quant_format,
            '--threads', str(args.threads), '--batches', *map(str, args.batches)]
    argv += ['--tiny'] * args.tiny + ['--per-channel'] * args.per_channel
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f'error: {step} of {name} failed:\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(results, batches):
    """Table lines: one per model and engine."""
    head = ['model', 'params', 'GFLOPs', 'engine', 'ONNX MB'] + [f'ms/clip b{b}' for b in batches] + ['peak RSS MB']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, r in results.items():
        for engine in ENGINES:
            size = {'eager': '', 'ort': f'{r["onnx_mb"]:.1f}', 'int8': f'{r["int8_mb"]:.1f}'}[engine]
            e = r[engine]
            cells = [SHORT.get(name, name), f'{r["params"] / 1e6:.2f}M', f'{r["gflops"]:.2f}',
                     ENGINE_NAMES[engine], size] + [f'{e[f"ms_b{b}"]:.1f}' for b in batches] + [f'{e["rss_mb"]:.0f}']
            lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def teacher_student(names):
    """Video-FocalNet-B and VFL-Net when both ran, else the first and the last model."""
    teacher = 'videofocalnet_base' if 'videofocalnet_base' in names else names[0]
    student = 'videofocalnet_nano' if 'videofocalnet_nano' in names else names[-1]
    return teacher, student


def ratios(results, batches):
    """Teacher / student of every figure, beside the paper's claim."""
    teacher, student = teacher_student(list(results))
    t, s = results[teacher], results[student]
    lines = [f'teacher / student ({SHORT.get(teacher, teacher)} / {SHORT.get(student, student)}): '
             f'params {t["params"] / s["params"]:.2f}x, GFLOPs {t["gflops"] / s["gflops"]:.2f}x '
             f'(paper: about {PAPER_GFLOPS_RATIO}x), ONNX size {t["onnx_mb"] / s["onnx_mb"]:.2f}x']
    for engine in ENGINES:
        cells = [f'latency b{b} {t[engine][f"ms_b{b}"] / s[engine][f"ms_b{b}"]:.2f}x' for b in batches]
        lines.append(f'  {ENGINE_NAMES[engine]}: {", ".join(cells)}, '
                     f'peak RSS {t[engine]["rss_mb"] / s[engine]["rss_mb"]:.2f}x')
    for name, r in results.items():
        cells = [f'b{b} {r["ort"][f"ms_b{b}"] / r["int8"][f"ms_b{b}"]:.2f}x' for b in batches]
        lines.append(f'{SHORT.get(name, name)}: INT8 speed-up over fp32 onnxruntime {", ".join(cells)}; '
                     f'fp32 onnxruntime over eager b{batches[0]} '
                     f'{r["eager"][f"ms_b{batches[0]}"] / r["ort"][f"ms_b{batches[0]}"]:.2f}x')
    return lines


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_deploy', __doc__)
    parser.add_argument('--models', nargs='+', default=list(DEFAULT_MODELS),
                        help='timm names, measured in this order (default: B, S, T, VFL-Net); the ratios '
                             'are B / VFL-Net when both are there, else first / last')
    parser.add_argument('--batches', nargs='+', type=int, default=[1, 8], help='batch sizes timed')
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--runs', type=int, default=5, help='timed runs per batch (median, after 1 warm-up)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(), help='CPU threads of every engine')
    parser.add_argument('--calibration', type=int, default=4, help='random clips calibrating INT8')
    parser.add_argument('--quant-format', default='QOperator', choices=['QDQ', 'QOperator'])
    parser.add_argument('--per-channel', action='store_true', help='per-channel INT8 weights')
    parser.add_argument('--tiny', action='store_true',
                        help='every model at width 8, depths 1 1 1 1: the harness in seconds (CI), figures meaningless')
    parser.add_argument('--keep', metavar='DIR', help='write the ONNX files here and keep them')
    parser.add_argument('--json', metavar='FILE', help='also write the figures as JSON')
    parser.add_argument('--from-json', metavar='FILE', help='print the table of a --json file (a run cut short)')
    parser.add_argument('--worker', nargs=3, metavar=('STEP', 'MODEL', 'DIR'), help=argparse.SUPPRESS)
    args = cli.parse(parser, argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        return print_table(saved['results'], saved['args']['batches'])

    print(f'{len(args.models)} models at {args.frames} x {args.size} x {args.size}, {NUM_CLASSES} classes, '
          f'batches {args.batches}, {args.threads} threads, median of {args.runs} runs; INT8 '
          f'{args.quant_format}{" per-channel" if args.per_channel else ""}; CPU: {cpu_name()}', flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or scratch
        os.makedirs(folder, exist_ok=True)
        for name in args.models:
            results[name] = run_worker('prepare', name, args, folder)
            for engine in ENGINES:
                results[name][engine] = run_worker(engine, name, args, folder)
            r = results[name]
            print(f'{name}: exported in {r["export_s"]:.0f} s, quantized in {r["quantize_s"]:.0f} s; ' +
                  ', '.join(f'{e} b{args.batches[0]} {r[e][f"ms_b{args.batches[0]}"]:.1f} ms' for e in ENGINES),
                  flush=True)
            if args.json:
                with open(args.json, 'w') as f:
                    json.dump({'args': {k: v for k, v in vars(args).items() if k != 'worker'},
                               'cpu': cpu_name(), 'results': results}, f, indent=1)
            if not args.keep:
                for suffix in ('', '.int8'):
                    os.remove(os.path.join(folder, f'{name}{suffix}.onnx'))
    print_table(results, args.batches)


def print_table(results, batches):
    print('\n'.join(rows(results, batches)))
    if len(results) > 1:
        print('\n'.join(ratios(results, batches)))


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        return f'{names[0]} ({len(names)} logical cores)' if names else 'unknown'
    except OSError:
        return 'unknown'


if __name__ == '__main__':
    cli_main(main)
