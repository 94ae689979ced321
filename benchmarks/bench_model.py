"""Time models.VideoFocalNet against the straightforward formulation it replaced, side by side.

    python -m benchmarks.bench_model [--model videofocalnet_nano] [--batch 2] [--reps 7] [--compile]

Both models hold the same weights and see the same clip. The measurements alternate (reference,
fast, fast, reference, ...) and the median of each is reported, so load from other processes hits
both alike. Prints forward and training-step (forward + backward) times and ratios, the largest
logit difference, and the activation memory a training step saves for backward, per clip.
`--compile` adds torch.compile of the fast model against its eager self (compiling takes minutes
on a small CPU).
"""
import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F

import models  # noqa: F401  (registers the zoo)
from models.video_focalnet_reference import ReferenceVideoFocalNet


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


def compare(name, timer, a, b, reps):
    """Median seconds of timer(a) and timer(b), measured alternately."""
    times = {id(a): [], id(b): []}
    for rep in range(reps):
        for model in ((a, b) if rep % 2 == 0 else (b, a)):
            times[id(model)].append(timer(model))
    return statistics.median(times[id(a)]), statistics.median(times[id(b)])


def report(label, names, seconds, batch):
    (name_a, name_b), (ta, tb) = names, seconds
    print(f'{label:>13}: {name_a} {ta * 1000:8.1f} ms  {name_b} {tb * 1000:8.1f} ms  '
          f'ratio {tb / ta:.3f}  ({batch / tb:.2f} clips/s)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='videofocalnet_nano')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--reps', type=int, default=7, help='timed repetitions of each measurement')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--compile', action='store_true', help='also time torch.compile of the fast model')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    fast = timm.create_model(args.model, num_classes=101, num_frames=args.frames, img_size=args.size)
    ref_args = dict(models.ZOO[args.model], num_classes=101, num_frames=args.frames, img_size=args.size)
    ref = ReferenceVideoFocalNet(**ref_args)
    ref.load_state_dict(fast.state_dict(), strict=True)
    clip = torch.randn(args.batch, args.frames, 3, args.size, args.size)
    target = torch.randint(0, 101, (args.batch,))
    print(f'{args.model}, batch {args.batch} x {args.frames} x {args.size}x{args.size}, '
          f'{args.threads} threads, median of {args.reps} interleaved repetitions')

    with torch.no_grad():
        diff = (fast.eval()(clip) - ref.eval()(clip)).abs().max().item()
    print(f'logits max abs diff (eval): {diff:.2e}')
    for model in (ref, fast):  # warm-up: allocator, oneDNN primitive caches
        step_time(model, clip, target)
        forward_time(model, clip)

    names = ('reference', 'fast')
    seconds = compare('forward', lambda m: forward_time(m, clip), ref, fast, args.reps)
    report('forward', names, seconds, args.batch)
    seconds = compare('train step', lambda m: step_time(m, clip, target), ref, fast, args.reps)
    report('train step', names, seconds, args.batch)
    ref_mem, fast_mem = (saved_bytes_per_clip(m, clip, target) for m in (ref, fast))
    print(f'activation memory per training clip: reference {ref_mem / 2**20:.1f} MiB  '
          f'fast {fast_mem / 2**20:.1f} MiB  ratio {fast_mem / ref_mem:.3f}')

    if args.compile:
        compiled = torch.compile(fast)  # the fused oneDNN inference path is for eager mode only
        start = time.perf_counter()
        step_time(compiled, clip, target)
        forward_time(compiled, clip)
        print(f'compiling took {time.perf_counter() - start:.0f} s')
        names = ('eager', 'compiled')
        seconds = compare('forward', lambda m: forward_time(m, clip), fast, compiled, args.reps)
        report('forward', names, seconds, args.batch)
        seconds = compare('train step', lambda m: step_time(m, clip, target), fast, compiled, args.reps)
        report('train step', names, seconds, args.batch)


if __name__ == '__main__':
    main()
