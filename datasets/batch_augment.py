"""The device half of the training input path: colour jitter, grayscale, normalisation and
Mixup/CutMix of a batch of uint8 clips, where the model runs.

Loader workers decode, crop and flip and ship uint8 clips (transforms.ClipCrop); the per-pixel
colour work runs here instead: batched on a GPU, clip by clip and in place on a CPU (a working set
the size of one clip, no fresh batch-sized buffers). The colour operations follow torchvision's
ColorJitter (the four operations in a random order per clip, factors uniform in
[max(0, 1 - x), 1 + x], hue shift uniform in [-h, h], each result clamped to [0, 1]) and
RandomGrayscale (ITU-R 601 luma), with one draw of every parameter per clip, shared by its frames.
The draws for a clip come from a generator seeded by (SEED, epoch, sample index), Mixup/CutMix's
from (SEED, epoch, step, rank) (rng.py): replaying a batch gives the same inputs bit for bit.
"""
import torch
from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from utils.distributed import get_rank
from utils.errors import ConfigValueError

from .mixup import build_mixup
from .rng import COLOUR, torch_generator

BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


# ------------------------------------------------------------------------------------------------
# Colour operations on float RGB clips in [0, 1], shape (N, T, 3, H, W), in place; one factor per
# clip (shape (N, 1, 1, 1, 1)). Temporaries are plane-sized buffers from a Scratch.
# ------------------------------------------------------------------------------------------------
class Scratch:
    """Reused plane-sized buffers. On a CPU a fresh multi-megabyte tensor faults in every page it
    touches (glibc returns large blocks to the system), which cost more than the arithmetic; the
    CUDA caching allocator already reuses memory, so there a buffer is simply allocated."""

    def __init__(self):
        self.buffers = {}

    def __call__(self, x, count):
        """`count` tensors shaped like one channel of x."""
        shape = (count, *x.shape[:-3], 1, *x.shape[-2:])
        if x.device.type != 'cpu':
            return torch.empty(shape, dtype=x.dtype, device=x.device).unbind(0)
        key = (shape, x.dtype)
        if key not in self.buffers:
            self.buffers[key] = torch.empty(shape, dtype=x.dtype)
        return self.buffers[key].unbind(0)


def rgb_to_gray(x, out):
    """Luma with torchvision's weights into `out` (..., 1, H, W)."""
    r, g, b = x.split(1, -3)
    return torch.mul(r, 0.2989, out=out).add_(g, alpha=0.587).add_(b, alpha=0.114)


def adjust_brightness(x, factor, scratch=None):
    return x.mul_(factor).clamp_(0, 1)


def adjust_contrast(x, factor, scratch=None):
    """Blend with the mean luma of each frame (torchvision computes it per image)."""
    gray, = (scratch or Scratch())(x, 1)
    mean = rgb_to_gray(x, gray).mean((-3, -2, -1), keepdim=True)
    return x.mul_(factor).add_(mean.mul_(1 - factor)).clamp_(0, 1)


def adjust_saturation(x, factor, scratch=None):
    """Blend with the frame's grayscale."""
    gray, = (scratch or Scratch())(x, 1)
    rgb_to_gray(x, gray).mul_(1 - factor)
    return x.mul_(factor).add_(gray).clamp_(0, 1)


def adjust_hue(x, shift, scratch=None):
    """Rotate the HSV hue by `shift` turns (torchvision's adjust_hue) in closed form, with only
    min/max/ceil/floor/abs arithmetic (branch-free: `where` and comparisons are slow on CPUs).

    Hue h in sextants [0, 6) from the channel at the minimum m (ties: r, then g): b -> 1 + (g - r)/c,
    r -> 3 + (b - g)/c, g -> 5 + (r - b)/c, with chroma c = max - m (the same function as HSV's
    max-based cases). After the shift, R is m + c * clamp(|h - 3| - 1, 0, 1), G and B are
    max - c * clamp(|h - centre| - 1, 0, 1) with centre 2 and 4."""
    r, g, b = x.split(1, -3)
    maxc, minc, chroma, r_min, g_min, b_min, hue, tmp = (scratch or Scratch())(x, 8)
    torch.maximum(torch.maximum(r, g, out=maxc), b, out=maxc)
    torch.minimum(torch.minimum(r, g, out=minc), b, out=minc)
    torch.sub(maxc, minc, out=chroma)
    torch.sub(r, minc, out=r_min).ceil_().neg_().add_(1)               # 1 where r is the minimum
    torch.sub(g, minc, out=g_min).ceil_().neg_().add_(1)
    g_min.addcmul_(g_min, r_min, value=-1)                             # ... else where g is
    torch.add(r_min, g_min, out=b_min).neg_().add_(1)                  # ... else b
    torch.sub(g, r, out=hue).mul_(b_min)
    hue.addcmul_(torch.sub(b, g, out=tmp), r_min).addcmul_(torch.sub(r, b, out=tmp), g_min)
    hue.mul_(torch.clamp_min(chroma, 1e-12, out=tmp).reciprocal_())
    hue.add_(b_min).add_(r_min, alpha=3).add_(g_min, alpha=5).add_(shift * 6)
    hue.sub_(torch.div(hue, 6, out=tmp).floor_(), alpha=6)            # wrap into [0, 6)
    for channel, centre, base, sign in ((r, 3, minc, 1), (g, 2, maxc, -1), (b, 4, maxc, -1)):
        torch.sub(hue, centre, out=tmp).abs_().sub_(1).clamp_(0, 1)
        channel.copy_(base).addcmul_(chroma, tmp, value=sign)
    return x


def to_grayscale(x, scratch=None):
    gray, = (scratch or Scratch())(x, 1)
    return x.copy_(rgb_to_gray(x, gray).expand_as(x))


JITTER_OPS = {BRIGHTNESS: adjust_brightness, CONTRAST: adjust_contrast, SATURATION: adjust_saturation,
              HUE: adjust_hue}


def jitter_strengths(value):
    """AUG.COLOR_JITTER as (brightness, contrast, saturation, hue)."""
    try:
        strengths = tuple(float(v) for v in value)
    except TypeError:
        strengths = ()
    if len(strengths) != 4 or min(strengths) < 0 or strengths[3] > 0.5:
        raise ConfigValueError(f'AUG.COLOR_JITTER must be (brightness, contrast, saturation, hue), each >= 0 and '
                               f'hue <= 0.5, e.g. (0.4, 0.4, 0.2, 0.1); got {value!r}')
    return strengths


class ClipColourParams:
    """One clip's colour draws: whether jitter applies, the order of the four operations, their
    factors (hue: a shift), whether the clip turns gray. Drawn in a fixed order from the clip's
    generator, whatever is applied, so the stream never depends on earlier outcomes."""

    def __init__(self, generator, strengths, jitter_prob, gray_prob):
        u = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
        self.order = torch.randperm(4, generator=generator).tolist()
        self.jitter = u[0] < jitter_prob
        b, c, s, h = strengths
        self.factors = [max(0.0, 1 - b) + (1 + b - max(0.0, 1 - b)) * u[1],
                        max(0.0, 1 - c) + (1 + c - max(0.0, 1 - c)) * u[2],
                        max(0.0, 1 - s) + (1 + s - max(0.0, 1 - s)) * u[3],
                        -h + 2 * h * u[4]]
        self.active = [self.jitter and strength > 0 for strength in strengths]
        self.gray = u[5] < gray_prob


class BatchAugment:
    """Prepare a training batch on `device`: the single home of "move to device, augment, mix"
    (train_one_epoch calls it; a cached-teacher pass calls it to replay the student's inputs).

        samples, targets = batch_aug(clips, labels, epoch=epoch, step=step, sample_indices=indices,
                                     rank=rank)

    clips: uint8 (B, T, C, S, S) from the train loader; labels: int (B,); epoch: the epoch;
    step: the loader step within the epoch (micro-batch index, from 0); sample_indices: dataset
    indices (B,) of the clips, as the loader yields them; rank: the process rank (None: the one
    this object was built with). Returns float32 samples (B, T, C, S, S) normalised with ImageNet
    mean/std and targets: soft (B, num_classes) under Mixup/CutMix, else the labels, on `device`.
    Colour draws depend on (SEED, epoch, sample index) only, mixing draws on (SEED, epoch, step,
    rank) only.
    """

    def __init__(self, device, strengths=(0.4, 0.4, 0.2, 0.1), jitter_prob=0.8, gray_prob=0.2, mixup=None,
                 seed=0, rank=0, chunk_size=None):
        self.device, self.seed, self.rank, self.mixup = torch.device(device), seed, rank, mixup
        # clips coloured together: the whole batch on a GPU, one at a time on a CPU (cache-sized)
        self.chunk_size = chunk_size or (1 if self.device.type == 'cpu' else None)
        self.strengths, self.jitter_prob, self.gray_prob = jitter_strengths(strengths), jitter_prob, gray_prob
        self.mean = torch.tensor(IMAGENET_DEFAULT_MEAN, device=self.device).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_DEFAULT_STD, device=self.device).view(3, 1, 1)
        self.scratch = Scratch()

    def colour_params(self, epoch, sample_indices):
        """The ClipColourParams of each clip, from (SEED, epoch, index)."""
        return [ClipColourParams(torch_generator(self.seed, COLOUR, epoch, int(index)), self.strengths,
                                 self.jitter_prob, self.gray_prob) for index in sample_indices]

    def __call__(self, clips, labels, *, epoch, step, sample_indices, rank=None):
        if clips.dtype != torch.uint8 or clips.ndim != 5:
            raise TypeError(f'expected uint8 clips (B, T, C, H, W) from the train loader, got {clips.dtype} '
                            f'{tuple(clips.shape)}')
        if len(sample_indices) != clips.shape[0]:
            raise ValueError(f'{clips.shape[0]} clips but {len(sample_indices)} sample indices')
        params = self.colour_params(epoch, sample_indices.tolist() if torch.is_tensor(sample_indices)
                                    else sample_indices)
        clips = clips.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        samples = torch.empty(clips.shape, dtype=torch.float32, device=self.device)
        chunk = self.chunk_size or len(clips)
        for start in range(0, len(clips), chunk):
            part = samples[start:start + chunk]
            part.copy_(clips[start:start + chunk]).div_(255)
            self.colour(part, params[start:start + chunk])
            part.sub_(self.mean).div_(self.std)
        if self.mixup is not None:
            return self.mixup(samples, labels, epoch=epoch, step=step, rank=self.rank if rank is None else rank)
        return samples, labels

    def colour(self, x, params):
        """Jitter (each operation at its place in the clip's order) then grayscale, in place on float
        clips (N, T, 3, H, W) in [0, 1]. The factors reach the device in one copy."""
        factors = torch.tensor([p.factors for p in params], dtype=x.dtype).to(x.device, non_blocking=True)
        factors = factors.view(len(params), 4, 1, 1, 1, 1)
        for position in range(4):
            for op, fn in JITTER_OPS.items():
                chosen = [p.active[op] and p.order[position] == op for p in params]
                self._apply(x, fn, chosen, factors[:, op])
        self._apply(x, to_grayscale, [p.gray for p in params])

    def _apply(self, x, fn, chosen, factors=None):
        """fn on the chosen clips of x (in place), each with its own factor (N, 1, 1, 1, 1)."""
        if not any(chosen):
            return
        args = () if factors is None else (factors,)
        if all(chosen):
            fn(x, *args, scratch=self.scratch)
            return
        index = torch.tensor([i for i, c in enumerate(chosen) if c]).to(x.device, non_blocking=True)
        args = tuple(a.index_select(0, index) for a in args)
        x.index_copy_(0, index, fn(x.index_select(0, index), *args, scratch=self.scratch))


def build_batch_augment(config, device, rank=None):
    """BatchAugment from AUG.* (colour jitter, grayscale, Mixup/CutMix) and SEED; `rank` defaults to
    this process's rank in the default process group."""
    if rank is None:
        rank = get_rank()
    aug = config.AUG
    return BatchAugment(device, aug.COLOR_JITTER, aug.COLOR_JITTER_PROB, aug.GRAY_SCALE, build_mixup(config),
                        config.SEED, rank)
