"""Time models.VideoFocalNet against the straightforward formulation, side by side.

    python -m benchmarks.bench_model [--model videofocalnet_nano] [--batch 2] [--reps 7] [--blocks] [--compile]

The straightforward formulation (benchmarks/reference_model.py, a direct port of the official
code's layout) runs the same model's modules, so both hold the same weights; both see the same
clip. The measurements alternate (reference, model, model, reference, ...) and the median of each
is reported, so load from other processes hits both alike. Prints forward and training-step (forward + backward) times and ratios, with each
call's minor page faults (a formulation whose allocations make glibc give memory back and fault it
in again pays for that in time, and its times swing with the heap's state), the largest logit
difference, and the activation memory a training step saves for backward, per clip.
`--blocks` adds the first block of every stage on its own (forward + backward, and the forward
alone), to show where the model step gains and where it does not. `--compile` adds torch.compile
of the model against its eager self (compiling takes minutes on a small CPU).
"""
import resource
import statistics
import time

import timm
import torch
import torch.nn.functional as F

import models  # noqa: F401  (registers the zoo)
from benchmarks.reference_model import ReferenceForward, block
from utils import cli
from utils.errors import cli_main


def forward_time(model, clip):
    """An inference forward: eval mode, no autograd."""
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(clip)
        return time.perf_counter() - start


def step_time(model, clip, target):
    """A training step's forward and backward (the optimiser update is the same for both)."""
    model.train()
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    F.cross_entropy(model(clip), target).backward()
    return time.perf_counter() - start


def saved_bytes_per_clip(model, clip, target):
    """Bytes of the tensors autograd keeps for backward (parameters excluded), per clip."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(clip), target)
    loss.backward()
    return sum(storages.values()) / clip.shape[0]


def block_times(model, batch, frames, size, reps):
    """The first block of every stage in both formulations on the same tokens. Per stage: (stage,
    side, width, (reference, model) training-step seconds, (reference, model) forward seconds)."""
    rows, side = [], size // model.patch_embed.proj.stride[-1]
    for stage, layer in enumerate(model.layers, 1):
        blk = layer.blocks[0]
        tokens = torch.randn(batch * frames, side, side, blk.norm1.normalized_shape[0])
        grad = torch.randn_like(tokens)
        # Both called on (N, H, W, C) tokens: the reference block takes (N, H*W, C) and H, W.
        calls = (lambda x, s=side: block(blk, x.flatten(1, 2), s, s).view_as(x), blk)

        def step(call):
            x = tokens.clone().requires_grad_()
            start = time.perf_counter()
            call(x).backward(grad)
            return time.perf_counter() - start

        def forward(call):
            with torch.no_grad():
                start = time.perf_counter()
                call(tokens)
                return time.perf_counter() - start

        blk.train()
        steps = compare(step, *calls, reps)[0]
        blk.eval()
        rows.append((stage, side, tokens.shape[-1], steps, compare(forward, *calls, reps)[0]))
        side //= 2
    return rows


def compare(timer, a, b, reps):
    """Median seconds of timer(a) and timer(b), measured alternately, and the median number of
    minor page faults of each call (fresh pages from the OS: memory the allocator gave back)."""
    times, faults = ([], []), ([], [])
    for rep in range(reps):
        for k in ((0, 1) if rep % 2 == 0 else (1, 0)):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[k].append(timer((a, b)[k]))
            faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return tuple(statistics.median(t) for t in times), tuple(statistics.median(f) for f in faults)


def report(label, names, measured, batch):
    (name_a, name_b), ((ta, tb), (fa, fb)) = names, measured
    print(f'{label:>13}: {name_a} {ta * 1000:8.1f} ms  {name_b} {tb * 1000:8.1f} ms  '
          f'ratio {tb / ta:.3f}  ({batch / tb:.2f} clips/s; page faults {fa:.0f} / {fb:.0f})')


def main(argv=None):
    parser = cli.command_parser('python -m benchmarks.bench_model', __doc__)
    parser.add_argument('--model', default='videofocalnet_nano')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--reps', type=int, default=7, help='timed repetitions of each measurement')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--blocks', action='store_true', help='also time the first block of every stage')
    parser.add_argument('--compile', action='store_true', help='also time torch.compile of the model')
    args = cli.parse(parser, argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = timm.create_model(args.model, num_classes=101, num_frames=args.frames)
    ref = ReferenceForward(model)
    clip = torch.randn(args.batch, args.frames, 3, args.size, args.size)
    target = torch.randint(0, 101, (args.batch,))
    print(f'{args.model}, batch {args.batch} x {args.frames} x {args.size}x{args.size}, '
          f'{args.threads} threads, median of {args.reps} interleaved repetitions')

    with torch.no_grad():
        diff = (model.eval()(clip) - ref.eval()(clip)).abs().max().item()
    print(f'logits max abs diff (eval): {diff:.2e}')
    for m in (ref, model):  # warm-up: allocator, primitive caches
        step_time(m, clip, target)
        forward_time(m, clip)

    names = ('reference', 'model')
    measured = compare(lambda m: forward_time(m, clip), ref, model, args.reps)
    report('forward', names, measured, args.batch)
    measured = compare(lambda m: step_time(m, clip, target), ref, model, args.reps)
    report('train step', names, measured, args.batch)
    ref_mem, mem = (saved_bytes_per_clip(m, clip, target) for m in (ref, model))
    print(f'activation memory per training clip: reference {ref_mem / 2**20:.1f} MiB  '
          f'model {mem / 2**20:.1f} MiB  ratio {mem / ref_mem:.3f}')

    if args.blocks:
        for stage, side, dim, steps, forwards in block_times(model, args.batch, args.frames, args.size, args.reps):
            print(f'stage {stage} block ({side}x{side}x{dim}): train step ratio {steps[1] / steps[0]:.3f} '
                  f'({steps[0] * 1000:.0f} -> {steps[1] * 1000:.0f} ms), forward ratio '
                  f'{forwards[1] / forwards[0]:.3f} ({forwards[0] * 1000:.0f} -> {forwards[1] * 1000:.0f} ms)')

    if args.compile:
        compiled = torch.compile(model)
        start = time.perf_counter()
        step_time(compiled, clip, target)
        forward_time(compiled, clip)
        print(f'compiling took {time.perf_counter() - start:.0f} s')
        names = ('eager', 'compiled')
        measured = compare(lambda m: forward_time(m, clip), model, compiled, args.reps)
        report('forward', names, measured, args.batch)
        measured = compare(lambda m: step_time(m, clip, target), model, compiled, args.reps)
        report('train step', names, measured, args.batch)


if __name__ == '__main__':
    cli_main(main)
