"""Random draws as pure functions of their keys.

Every random choice of the training input path comes from a generator seeded by a hash of
(SEED, stream, epoch, sample index) (Mixup/CutMix: (SEED, stream, epoch, step, rank)), never from a
process's global state. A clip is then augmented the same way whichever worker made it, however
the batches are cut, and whether or not the run was killed and resumed; a cached-teacher pass can
replay exactly the inputs the student sees.
"""
import numpy as np
import torch

# One stream per kind of draw, so that two kinds never share numbers.
CLIP = 1     # in the worker: frame offsets, crop, flip (and the replacement of a bad video)
COLOUR = 2   # on the device: colour jitter and grayscale
MIX = 3      # on the device: Mixup / CutMix of a batch


def keyed_seed(*keys):
    """A 63-bit seed mixed from integer keys (numpy's SeedSequence: nearby keys give unrelated seeds)."""
    words = np.random.SeedSequence([int(k) % 2 ** 64 for k in keys]).generate_state(2, np.uint32)
    return int(words[0]) | (int(words[1]) & 0x7FFFFFFF) << 32


def torch_generator(*keys):
    """A CPU torch.Generator seeded from `keys`."""
    return torch.Generator().manual_seed(keyed_seed(*keys))


def numpy_generator(*keys):
    """A numpy Generator seeded from `keys`."""
    return np.random.default_rng(keyed_seed(*keys))
