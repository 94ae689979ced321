"""A recorded teacher: its logits on every training step of a run, written once by
`main_KD.py --cache-teacher DIR` and replayed by `KD.TEACHER_CACHE DIR`, so that students trained
from one teacher do not pay for its forward pass again.

Layout of DIR:
    meta.json                  what the logits depend on (the fingerprint), epochs, steps, dtype
    config.yaml                the caching pass's full config, for the record
    epoch_<EEEE>_rank_<R>.pt   {'logits': (steps, B, classes) float16/float32,
                                'probe': (steps, B, PROBE_SIZE) float32}, one file per epoch and rank

The fingerprint holds every setting that shapes the teacher's inputs (data and augmentation keys,
batch, world size, accumulation, seed) and the teacher itself (type, architecture, sha256 of its
checkpoint); a run whose settings differ is refused naming the key. The probe is a few input
values per clip at fixed positions: replaying checks them, so inputs that did not replay (another
worker count, an input path that is not a pure function of seed and epoch) stop the run instead of
distilling from logits of other clips.
"""
import datetime
import hashlib
import json
import os

import torch
import torch.nn as nn

from .checkpoint import atomic_write
from .errors import UserError

FORMAT = 'dvfl-teacher-cache'
VERSION = 1
PROBE_SIZE = 16
PROBE_ATOL = 1e-3  # a replayed input is bit-identical on the same device; other inputs differ by O(1)
DTYPES = {'float16': torch.float16, 'float32': torch.float32}

# Keys of DATA and AUG that do not change the teacher's inputs: everything else in these groups
# is in the fingerprint, so a key added later is covered unless listed here.
# DATA.TRAIN_FILE enters by the sha256 of its contents (not its path), DATA.ROOT not at all: moving
# the data set keeps the cache valid, and the probe catches changed videos.
NOT_INPUT_KEYS = {'DATA.ROOT', 'DATA.TRAIN_FILE', 'DATA.VAL_FILE', 'DATA.LABEL_LIST', 'DATA.DATASET',
                  'DATA.NUM_WORKERS', 'DATA.PIN_MEMORY', 'AUG.LABEL_SMOOTH'}


class TeacherCacheError(UserError, RuntimeError):
    """A teacher cache that is missing, incomplete, unreadable, or made under other settings."""


def sha256_file(path, chunk=1 << 24):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _flat(node, prefix):
    out = {}
    for key, value in node.items():
        if hasattr(value, 'items'):
            out.update(_flat(value, f'{prefix}{key}.'))
        else:
            out[f'{prefix}{key}'] = value
    return out


def fingerprint(config, world_size, teacher_hash=True):
    """{name: value} of everything the teacher's logits on a training step depend on.

    TRAIN.EPOCHS is not in it: epochs are independent, so a cache covers any run of as many epochs
    or fewer. With teacher_hash=False the checkpoint's sha256 is left out (a run that names no file).
    """
    fp = {}
    if config.DATA.TRAIN_FILE and os.path.isfile(config.DATA.TRAIN_FILE):
        fp['DATA.TRAIN_FILE sha256'] = sha256_file(config.DATA.TRAIN_FILE)
    for group in ('DATA', 'AUG'):
        fp.update({k: v for k, v in _flat(config[group], f'{group}.').items() if k not in NOT_INPUT_KEYS})
    fp['MODEL.NUM_CLASSES'] = config.MODEL.NUM_CLASSES
    fp['TRAIN.ACCUMULATION_STEPS'] = config.TRAIN.ACCUMULATION_STEPS
    fp['SEED'] = config.SEED
    fp['world size'] = world_size
    teacher = _flat(config.TEACHER_MODEL, 'TEACHER_MODEL.')
    for key in ('NAME', 'PRETRAINED_PATH', 'DROP_RATE', 'DROP_PATH_RATE'):  # no effect in eval mode
        teacher.pop(f'TEACHER_MODEL.{key}')
    fp.update(teacher)
    path = config.TEACHER_MODEL.PRETRAINED_PATH
    if teacher_hash:
        if not path or not os.path.isfile(path):
            raise TeacherCacheError(f'TEACHER_MODEL.PRETRAINED_PATH {path!r} is not a file: a teacher cache '
                                    "is checked against the sha256 of the teacher's checkpoint (to train "
                                    "from a cache without it, set TEACHER_MODEL.PRETRAINED_PATH '')")
        fp['TEACHER_MODEL.PRETRAINED_PATH sha256'] = sha256_file(path)
    return json.loads(json.dumps(fp))  # tuples become lists, as they read back from meta.json


def compare_fingerprints(cache_dir, made, this_run):
    """Raise naming every key whose value differs (a key this run does not have is not compared)."""
    diffs = [f'{key} {made.get(key)!r}, this run has {value!r}' for key, value in this_run.items()
             if made.get(key) != value]
    if diffs:
        raise TeacherCacheError(f'teacher cache {cache_dir} was made with ' + '; '.join(diffs)
                                + '. Make a cache for these settings with main_KD.py --cache-teacher')


def input_probe(samples):
    """(B, PROBE_SIZE) float32: values of each clip at fixed, scattered positions (a multiplicative
    hash of the index, so flips and shifted crops change them)."""
    flat = samples.detach().flatten(1)
    positions = (torch.arange(PROBE_SIZE, device=flat.device) * 2654435761) % flat.shape[1]
    return flat[:, positions].float()


def epoch_file(cache_dir, epoch, rank):
    return os.path.join(cache_dir, f'epoch_{epoch:04d}_rank_{rank}.pt')


def read_meta(cache_dir):
    path = os.path.join(cache_dir, 'meta.json')
    if not os.path.isfile(path):
        raise TeacherCacheError(f'teacher cache {cache_dir}: no meta.json (not a teacher cache, or its '
                                'caching pass never started); make it with main_KD.py --cache-teacher')
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise TeacherCacheError(f'{path}: cannot read: {err}') from None
    if meta.get('format') != FORMAT or meta.get('version') != VERSION:
        raise TeacherCacheError(f'{path}: not a version-{VERSION} {FORMAT} (format {meta.get("format")!r}, '
                                f'version {meta.get("version")!r})')
    return meta


class TeacherCacheWriter:
    """One rank's side of the caching pass: checks or writes meta.json, then one file per epoch.

    An existing cache with the same fingerprint is completed or extended (epochs already written are
    kept); one with another fingerprint is refused.
    """

    def __init__(self, cache_dir, config, world_size, rank, steps_per_epoch, dtype='float16',
                 teacher_precision='float32'):
        if dtype not in DTYPES:
            raise ValueError(f'teacher cache dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
        self.cache_dir, self.rank, self.dtype = cache_dir, rank, dtype
        fp = fingerprint(config, world_size)
        meta = {'format': FORMAT, 'version': VERSION, 'fingerprint': fp, 'epochs': config.TRAIN.EPOCHS,
                'steps_per_epoch': steps_per_epoch, 'batch_size': config.DATA.BATCH_SIZE,
                'num_classes': config.MODEL.NUM_CLASSES, 'dtype': dtype,
                'teacher_precision': teacher_precision,
                'teacher_checkpoint': config.TEACHER_MODEL.PRETRAINED_PATH,
                'created': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
        if os.path.isfile(os.path.join(cache_dir, 'meta.json')):
            old = read_meta(cache_dir)
            compare_fingerprints(cache_dir, old['fingerprint'], fp)
            for key in ('steps_per_epoch', 'dtype', 'teacher_precision'):
                if old.get(key) != meta[key]:
                    raise TeacherCacheError(f'teacher cache {cache_dir} was made with {key} {old.get(key)!r}, '
                                            f'this pass has {meta[key]!r}; use another folder')
            meta['epochs'] = max(meta['epochs'], old['epochs'])
            meta['created'] = old['created']
        self.meta, self.config_dump = meta, config.dump()

    def write_meta(self):
        """Rank 0, before any epoch file (so a folder with epoch files always says what they are)."""
        os.makedirs(self.cache_dir, exist_ok=True)
        atomic_write(os.path.join(self.cache_dir, 'meta.json'),
                     lambda f: f.write(json.dumps(self.meta, indent=1).encode()))
        atomic_write(os.path.join(self.cache_dir, 'config.yaml'), lambda f: f.write(self.config_dump.encode()))

    def has_epoch(self, epoch):
        return os.path.isfile(epoch_file(self.cache_dir, epoch, self.rank))

    def write_epoch(self, epoch, logits, probes):
        """Store one epoch: lists of per-step (B, classes) logits and (B, PROBE_SIZE) probes."""
        logits = torch.stack([t.detach().float().cpu() for t in logits])
        stored = logits.to(DTYPES[self.dtype])
        if logits.isfinite().all() and not stored.isfinite().all():
            raise TeacherCacheError(f'teacher logits of epoch {epoch} exceed the {self.dtype} range '
                                    f'(max |logit| {logits.abs().max():.4g}); use --cache-dtype float32')
        state = {'epoch': epoch, 'rank': self.rank, 'logits': stored,
                 'probe': torch.stack([p.cpu() for p in probes])}
        path = epoch_file(self.cache_dir, epoch, self.rank)
        atomic_write(path, lambda f: torch.save(state, f))
        return path


def describe(cache_dir, meta):
    fp = meta['fingerprint']
    digest = fp.get('TEACHER_MODEL.PRETRAINED_PATH sha256', '?')[:12]
    return (f"{fp.get('TEACHER_MODEL.TYPE')} from {meta['teacher_checkpoint']} (sha256 {digest}...), "
            f"run at {meta['teacher_precision']}, {meta['epochs']} epochs x {meta['steps_per_epoch']} steps "
            f"stored as {meta['dtype']} in {cache_dir}, made {meta['created']}")


class CachedTeacher(nn.Module):
    """Stands in for the frozen teacher: called on a step's inputs, returns the logits the teacher
    gave on these inputs when the cache was made. `set_epoch(e)` loads epoch e of this rank and
    rewinds to its first step; each call moves one step on, as the training loop calls the
    criterion once per micro-batch. No parameters, so nothing of it is trained or checkpointed."""

    def __init__(self, cache_dir, config, world_size, rank, device):
        super().__init__()
        meta = read_meta(cache_dir)
        compare_fingerprints(cache_dir, meta['fingerprint'],
                             fingerprint(config, world_size, bool(config.TEACHER_MODEL.PRETRAINED_PATH)))
        if meta['epochs'] < config.TRAIN.EPOCHS:
            raise TeacherCacheError(
                f"teacher cache {cache_dir} covers epochs 0-{meta['epochs'] - 1}, this run trains "
                f"TRAIN.EPOCHS {config.TRAIN.EPOCHS}: epoch {meta['epochs']} is missing; extend it by "
                f"running main_KD.py --cache-teacher {cache_dir} with TRAIN.EPOCHS {config.TRAIN.EPOCHS}")
        for epoch in range(config.TRAIN.EPOCHS):
            if not os.path.isfile(epoch_file(cache_dir, epoch, rank)):
                raise TeacherCacheError(
                    f'teacher cache {cache_dir} has no logits for epoch {epoch} on rank {rank} '
                    f'({os.path.basename(epoch_file(cache_dir, epoch, rank))}): its caching pass did '
                    'not finish; rerun main_KD.py --cache-teacher with the same settings to complete it')
        self.cache_dir, self.meta, self.rank, self.device = cache_dir, meta, rank, device
        self.epoch, self.step, self.logits, self.probes = None, 0, None, None

    def set_epoch(self, epoch):
        path = epoch_file(self.cache_dir, epoch, self.rank)
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except FileNotFoundError:
            raise TeacherCacheError(f'teacher cache {self.cache_dir} has no logits for epoch {epoch} on '
                                    f'rank {self.rank} ({path})') from None
        except Exception as err:
            raise TeacherCacheError(f'{path}: cannot read the cached teacher logits: {err}') from None
        self.logits = state['logits'].to(self.device)
        self.probes = state['probe'].to(self.device)
        self.epoch, self.step = epoch, 0

    def forward(self, samples):
        if self.logits is None:
            raise RuntimeError('CachedTeacher: call set_epoch(epoch) before the first step of an epoch')
        where = f'epoch {self.epoch} step {self.step} on rank {self.rank}'
        if self.step >= len(self.logits):
            raise TeacherCacheError(f'teacher cache {self.cache_dir} has no logits for {where} (it holds '
                                    f'{len(self.logits)} steps per epoch)')
        expected, probe = self.probes[self.step], input_probe(samples)
        if probe.shape != expected.shape:
            raise TeacherCacheError(f'teacher cache {self.cache_dir} holds batches of {expected.shape[0]} '
                                    f'clips, {where} has {probe.shape[0]}')
        # Read on the host with the step's loss (check_probe), not here: no wait inside the forward.
        self.probe_diff = (probe - expected).abs().max()
        self.where = where
        logits = self.logits[self.step]
        self.step += 1
        return logits

    def check_probe(self, diff):
        """Raise unless the last step's inputs (max |probe difference| `diff`, read on the host)
        are the ones the teacher saw when the cache was made."""
        if not diff <= PROBE_ATOL:
            raise TeacherCacheError(
                f'the inputs of {self.where} are not the ones the teacher saw when cache {self.cache_dir} '
                f'was made (max difference {diff:.3g}): the input path did not replay (the training list, '
                'the videos or the decoder changed since the cache was made?)')
