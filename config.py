"""yacs configuration: defaults for every key the paper's configs and commands use.

Merge order (`get_config`): defaults <- `--cfg` file (with `BASE:` inheritance) <- `--opts` pairs
<- trailing KEY VALUE pairs given without `--opts` <- command-line flags.
"""
import argparse
import difflib
import os

import yaml
from yacs.config import CfgNode as CN

from utils.cli import command_parser
from utils.errors import ConfigValueError

_C = CN()

# Files this config inherits from, relative to the file that names them. Later files win.
_C.BASE = ['']

# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
_C.DATA = CN()
# Clips per GPU (per process) in a training step.
_C.DATA.BATCH_SIZE = 8
# Folder that the paths of TRAIN_FILE / VAL_FILE are relative to.
_C.DATA.ROOT = ''
# Annotation files: one `relative/path.ext,label` per line.
_C.DATA.TRAIN_FILE = ''
_C.DATA.VAL_FILE = ''
# Class list `id,name` (header optional); its order is the classifier head's order.
_C.DATA.LABEL_LIST = ''
# Dataset name, used in the output folder: <OUTPUT>/<DATASET>/<MODEL.NAME>/...
_C.DATA.DATASET = 'ucf101'
# Frames per clip (one per segment) and square input size.
_C.DATA.NUM_FRAMES = 8
_C.DATA.INPUT_SIZE = 224
# Loader worker processes per GPU; pinned memory for host-to-device copies.
_C.DATA.NUM_WORKERS = 8
_C.DATA.PIN_MEMORY = True
# Video decoder: 'pyav' (default: faster on every kind of file measured and always the in-order frames,
# docs/videos.md) or 'decord' (read with PyAV where decord's random access is wrong, or it is missing).
_C.DATA.DECODER = 'pyav'
# On a missing, empty or corrupt video: False raises an error naming the file; True logs it once
# and substitutes another sample.
_C.DATA.SKIP_BAD_VIDEOS = False

# ----------------------------------------------------------------------------------------------
# Model (the network being trained: the student in distillation)
# ----------------------------------------------------------------------------------------------
_C.MODEL = CN()
# Registry entry (timm register_model): videofocalnet_{nano,tiny,small,base}, which fix depth and
# width, or videofocalnet_custom, which takes them from FOCAL.EMBED_DIM / FOCAL.DEPTHS.
_C.MODEL.TYPE = 'videofocalnet_tiny'
# Name used in the output folder, e.g. 'VFL-Net' or 'video-focalnet_base'.
_C.MODEL.NAME = 'video-focalnet_tiny'
# Classes of the dataset (also the teacher's head size in distillation).
_C.MODEL.NUM_CLASSES = 101
_C.MODEL.DROP_RATE = 0.0
_C.MODEL.DROP_PATH_RATE = 0.1
# Frames per temporal token: 1 = per-frame 2-D stem, >1 = Conv3d stem over that many frames.
_C.MODEL.TUBELET_SIZE = 1
# Checkpoint to resume from (set by --resume).
_C.MODEL.RESUME = ''
_C.MODEL.FOCAL = CN()
_C.MODEL.FOCAL.PATCH_SIZE = 4
_C.MODEL.FOCAL.IN_CHANS = 3
# Width and blocks per stage: None = the TYPE's (models/registry.py owns them); a value that
# contradicts a zoo TYPE is an error. Required for videofocalnet_custom.
_C.MODEL.FOCAL.EMBED_DIM = None
_C.MODEL.FOCAL.DEPTHS = None
_C.MODEL.FOCAL.MLP_RATIO = 4.0
_C.MODEL.FOCAL.PATCH_NORM = True
# Focal levels and base window per stage: level k uses kernel 2k + window.
_C.MODEL.FOCAL.FOCAL_LEVELS = [2, 2, 2, 2]
_C.MODEL.FOCAL.FOCAL_WINDOWS = [3, 3, 3, 3]
_C.MODEL.FOCAL.USE_CONV_EMBED = False
_C.MODEL.FOCAL.USE_LAYERSCALE = False
_C.MODEL.FOCAL.LAYERSCALE_VALUE = 1e-4
_C.MODEL.FOCAL.USE_POSTLN = False
_C.MODEL.FOCAL.USE_POSTLN_IN_MODULATION = False
_C.MODEL.FOCAL.NORMALIZE_MODULATOR = False

# ----------------------------------------------------------------------------------------------
# Teacher (main_KD.py only): same keys as MODEL, frozen, weights from PRETRAINED_PATH
# ----------------------------------------------------------------------------------------------
# (not NUM_CLASSES: the teacher's head is the dataset's, MODEL.NUM_CLASSES; not RESUME).
_C.TEACHER_MODEL = CN(dict(TYPE='videofocalnet_base', NAME='video-focalnet_base', DROP_RATE=0.0,
                           DROP_PATH_RATE=0.5, TUBELET_SIZE=1))
# Checkpoint of a teacher trained on the same dataset (required by main_KD.py).
_C.TEACHER_MODEL.PRETRAINED_PATH = ''
_C.TEACHER_MODEL.FOCAL = _C.MODEL.FOCAL.clone()

# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
_C.TRAIN = CN()
_C.TRAIN.START_EPOCH = 0
_C.TRAIN.EPOCHS = 120
_C.TRAIN.WARMUP_EPOCHS = 20
# None in effect in the paper: the published code's no_weight_decay_keywords() returned {''}, which
# matches every parameter name. When > 0, norms, biases and other 1-D parameters are not decayed.
_C.TRAIN.WEIGHT_DECAY = 0.0
# Learning rates for a total batch of 512; scaled linearly by batch * world_size * accumulation / 512.
_C.TRAIN.BASE_LR = 0.1
_C.TRAIN.WARMUP_LR = 1e-3
_C.TRAIN.MIN_LR = 1e-3
# Gradient-norm clipping (0 disables it).
_C.TRAIN.CLIP_GRAD = 5.0
# Resume from the newest complete checkpoint in the output folder.
_C.TRAIN.AUTO_RESUME = True
# Micro-batches per optimiser step.
_C.TRAIN.ACCUMULATION_STEPS = 1
# Gradient checkpointing of the blocks (saves memory, costs a second forward).
_C.TRAIN.USE_CHECKPOINT = False
# torch.compile the training model (before the DDP wrap) and main_KD.py's frozen teacher. Checkpoints
# keep the plain parameter names; evaluation runs the eager model. Meant for GPUs: on a 2-core CPU the
# compiled nano step measured 1.27x the eager one (python -m benchmarks.bench_model --compile).
_C.TRAIN.COMPILE = False
# torch.compile backend: 'inductor' (generated kernels), or e.g. 'aot_eager' (same graph capture,
# eager kernels: seconds to compile; the tests use it to check DDP and checkpoints under compile).
_C.TRAIN.COMPILE_BACKEND = 'inductor'
# ImageNet-1K FocalNet weights to start from (official or timm layout, docs/pretrained.md);
# '' = random initialisation. A path that does not exist stops training at start-up.
_C.TRAIN.PRETRAINED_PATH = ''
# 'exact': the file must have the model's blocks; 'truncate': a deeper file loads its first blocks of
# each stage and the extra blocks are dropped (logged), as VFL-Net starts from focalnet_tiny_srf.
_C.TRAIN.PRETRAINED_DEPTH = 'exact'

_C.TRAIN.LR_SCHEDULER = CN()
# 'cosine', 'step' or 'linear', all stepped per iteration over all epochs, with a linear warm-up
# that overlaps the start of the decay (timm warmup_prefix off, as the published code).
_C.TRAIN.LR_SCHEDULER.NAME = 'cosine'
# Step schedule: decay every DECAY_EPOCHS by DECAY_RATE.
_C.TRAIN.LR_SCHEDULER.DECAY_EPOCHS = 30
_C.TRAIN.LR_SCHEDULER.DECAY_RATE = 0.1

_C.TRAIN.OPTIMIZER = CN()
# 'sgd' (with momentum) or 'adamw'.
_C.TRAIN.OPTIMIZER.NAME = 'sgd'
_C.TRAIN.OPTIMIZER.EPS = 1e-8
_C.TRAIN.OPTIMIZER.BETAS = (0.9, 0.999)
_C.TRAIN.OPTIMIZER.MOMENTUM = 0.9

# ----------------------------------------------------------------------------------------------
# Augmentation (one random draw per clip, shared by all of its frames)
# ----------------------------------------------------------------------------------------------
_C.AUG = CN()
# Segment sampling, one frame per NUM_FRAMES segment (datasets/sampling.py). As the published code
# (mmaction SampleFrames, clip_len 1): the segments cover the first N - FRAME_INTERVAL + 1 frames of
# an N-frame video (N - 3) in whole frames, (N - 3) // NUM_FRAMES each, so the last 3 to
# NUM_FRAMES + 2 frames are never drawn; one test view takes the centres of those segments.
_C.AUG.FRAME_INTERVAL = 4
# True: NUM_FRAMES equal segments over all N frames instead (train and the 1-view test), so the end
# of a video is sampled too. Multi-view testing (TEST.NUM_CLIP > 1) spans all frames either way.
_C.AUG.SAMPLE_ALL_FRAMES = False
# Repeated augmentation (PySlowFast's AUG.NUM_SAMPLE): each decoded training video gives NUM_SAMPLE
# independently augmented clips, side by side in one batch; DATA.BATCH_SIZE counts clips, so a batch
# holds BATCH_SIZE / NUM_SAMPLE videos and an epoch NUM_SAMPLE clips of every video. 1: the paper.
_C.AUG.NUM_SAMPLE = 1
# Random resized crop: area fraction and aspect-ratio range.
_C.AUG.CROP_SCALE = (0.08, 1.0)
_C.AUG.CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_C.AUG.FLIP_PROB = 0.5
# Colour jitter (brightness, contrast, saturation, hue), applied with COLOR_JITTER_PROB.
_C.AUG.COLOR_JITTER = (0.4, 0.4, 0.2, 0.1)
_C.AUG.COLOR_JITTER_PROB = 0.8
_C.AUG.GRAY_SCALE = 0.2
# Mixup alpha, CutMix alpha (0 disables each), probability of mixing a batch, probability of
# CutMix instead of Mixup when both are on, and label smoothing.
_C.AUG.MIXUP = 0.8
_C.AUG.CUTMIX = 1.0
_C.AUG.CUTMIX_MINMAX = None
_C.AUG.MIXUP_PROB = 1.0
_C.AUG.MIXUP_SWITCH_PROB = 0.5
_C.AUG.LABEL_SMOOTH = 0.1

# ----------------------------------------------------------------------------------------------
# Testing: temporal views x spatial crops per video (the final evaluation and --eval)
# ----------------------------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.NUM_CLIP = 1
# 1 (short side 256/224*INPUT_SIZE, centre crop) or 3 (short side INPUT_SIZE, three squares).
_C.TEST.NUM_CROP = 1
# Validation during training uses a single view; 0 disables the per-epoch validation.
_C.TEST.EVAL_FREQ = 1

# ----------------------------------------------------------------------------------------------
# Distillation (main_KD.py): alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE
# ----------------------------------------------------------------------------------------------
_C.KD = CN()
_C.KD.ALPHA = 0.2
# Accepted because the published scripts pass them; the paper's loss has no such terms.
_C.KD.BETA = 0.0
_C.KD.GAMMA = 0.0
_C.KD.TEMPERATURE = 10.0
# Evaluate the teacher once (one view) before training, so a wrong teacher shows at minute one.
_C.KD.EVAL_TEACHER = True
# Folder of teacher logits written by `main_KD.py --cache-teacher DIR`: the student reads the
# teacher's logits for each step from it, and the teacher is not built. '' = run the teacher online.
_C.KD.TEACHER_CACHE = ''

# ----------------------------------------------------------------------------------------------
# Misc
# ----------------------------------------------------------------------------------------------
# Mixed precision: O0 = float32; O1 = torch.autocast in AMP_DTYPE. O2 is accepted as a synonym of
# O1 (the published scripts pass it): there is no separate O2 mode.
_C.AMP_OPT_LEVEL = 'O0'
# Autocast dtype under O1/O2: 'float16' with a GradScaler (dynamic loss scaling), as the published
# apex O1, on a GPU or a CPU; 'bfloat16', no scaler (a GPU without bfloat16 is an error); '' the
# device's default: float16 + GradScaler on a GPU, bfloat16 on a CPU.
_C.AMP_DTYPE = ''
# Root of outputs; the run folder is <OUTPUT>/<DATASET>/<MODEL.NAME>/LR_..._EP_..._OPT_..._FRAMES_...
_C.OUTPUT = 'output'
# Save a checkpoint every SAVE_FREQ epochs (and at the last epoch).
_C.SAVE_FREQ = 10
# Log every PRINT_FREQ steps.
_C.PRINT_FREQ = 10
# Base random seed; each rank adds its rank.
_C.SEED = 0
# Deterministic kernels (no cuDNN autotuning, torch.use_deterministic_algorithms): what makes a GPU
# run repeat bit for bit, e.g. a student trained from a teacher cache equal to the online one.
_C.DETERMINISTIC = False
# Only evaluate (set by --eval).
_C.EVAL_MODE = False
# The process's GPU comes from torchrun's LOCAL_RANK environment variable (utils.distributed), not
# from the config.


class ConfigError(ConfigValueError):
    """A config file or override that names an unknown key or gives a wrong value."""


def _resolve_key(cfg, dotted, source):
    """Map a dotted key to its canonical spelling, ignoring case; fail naming close keys."""
    node, parts = cfg, []
    for i, part in enumerate(dotted.split('.')):
        if not isinstance(node, CN):
            raise ConfigError(f"{source}: '{dotted}' goes below '{'.'.join(parts)}', which is not a group")
        match = part if part in node else {k.upper(): k for k in node}.get(part.upper())
        if match is None:
            prefix = '.'.join(parts)
            candidates = [f'{prefix}.{k}' if prefix else k for k in node]
            candidates += _all_keys(cfg)
            candidates = list(dict.fromkeys(candidates))  # a key of this group is also in the full list
            close = difflib.get_close_matches(dotted.upper(), [c.upper() for c in candidates], n=3, cutoff=0.5)
            upper_to_key = {c.upper(): c for c in candidates}
            hint = ', '.join(upper_to_key[c] for c in close) or ', '.join(sorted(candidates[:len(node)]))
            raise ConfigError(f"{source}: unknown config key '{dotted}'. Did you mean: {hint}?")
        parts.append(match)
        node = node[match]
    return '.'.join(parts)


def _all_keys(node, prefix=''):
    keys = []
    for k, v in node.items():
        full = f'{prefix}{k}'
        keys.extend(_all_keys(v, full + '.') if isinstance(v, CN) else [full])
    return keys


def _coerce(old, value):
    """Numbers a float key should take: `KD.TEMPERATURE 10` is 10.0, and YAML 1.1 reads `1e-4`
    (no dot) as a string."""
    if isinstance(old, float) and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    return value


def _merge_pairs(cfg, pairs, source):
    if len(pairs) % 2:
        raise ConfigError(f'{source}: overrides must be KEY VALUE pairs, got an odd list: {pairs}')
    canonical = []
    for key, value in zip(pairs[0::2], pairs[1::2]):
        key = _resolve_key(cfg, key, source)
        old = cfg
        for part in key.split('.'):
            old = old[part]
        canonical += [key, _coerce(old, CN._decode_cfg_value(value))]
    try:
        cfg.merge_from_list(canonical)
    except (ValueError, AssertionError, KeyError) as err:
        raise ConfigError(f'{source}: {err}') from None


def _merge_dict(cfg, data, source, prefix=''):
    """Merge a loaded YAML mapping key by key, so errors name the key and case is forgiven."""
    for key, value in data.items():
        dotted = f'{prefix}{key}'
        if isinstance(value, dict):
            _merge_dict(cfg, value, source, dotted + '.')
            continue
        path = _resolve_key(cfg, dotted, source)
        node = cfg
        *parents, leaf = path.split('.')
        for p in parents:
            node = node[p]
        old = node[leaf]
        if isinstance(old, CN):
            raise ConfigError(f'{source}: {path} is a group, got a value {value!r}')
        if isinstance(value, list) and isinstance(old, tuple):
            value = tuple(value)
        value = _coerce(old, value)
        if old is not None and value is not None and not isinstance(value, type(old)):
            raise ConfigError(f'{source}: {path} expects {type(old).__name__} like the default '
                              f'{old!r}, got {value!r}')
        node[leaf] = value


def _merge_file(cfg, cfg_file):
    if not os.path.isfile(cfg_file):
        raise ConfigError(f'config file not found: {cfg_file}')
    with open(cfg_file) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f'{cfg_file}: not valid YAML: {" ".join(str(err).split())}') from None
    if not isinstance(data, dict):
        raise ConfigError(f'{cfg_file}: expected a mapping of keys at the top level')
    bases = data.pop('BASE', None) or data.pop('base', None) or ['']
    for base in bases:
        if base:
            _merge_file(cfg, os.path.join(os.path.dirname(cfg_file), base))
    _merge_dict(cfg, data, cfg_file)


def output_dir(config):
    """<OUTPUT>/<DATASET>/<MODEL.NAME>/LR_<BASE_LR>_EP_<EPOCHS>_OPT_<opt>_FRAMES_<NUM_FRAMES>."""
    run = (f'LR_{config.TRAIN.BASE_LR}_EP_{config.TRAIN.EPOCHS}_OPT_{config.TRAIN.OPTIMIZER.NAME}'
           f'_FRAMES_{config.DATA.NUM_FRAMES}')
    return os.path.join(config.OUTPUT, config.DATA.DATASET, config.MODEL.NAME, run)


def eval_dir(config, output=None):
    """<--output, or the checkpoint's folder>/eval_<NUM_CLIP>x<NUM_CROP>: an evaluation never writes
    into the training run's own files."""
    parent = output or os.path.dirname(os.path.abspath(config.MODEL.RESUME))
    return os.path.join(parent, f'eval_{config.TEST.NUM_CLIP}x{config.TEST.NUM_CROP}')


def update_config(config, args):
    """Apply file, overrides and flags to `config` (see the module docstring for the order)."""
    config.defrost()
    if getattr(args, 'cfg', None):
        _merge_file(config, args.cfg)
    if getattr(args, 'opts', None):
        _merge_pairs(config, list(args.opts), '--opts')
    if getattr(args, 'overrides', None):
        _merge_pairs(config, list(args.overrides), 'trailing overrides')

    flags = {
        'batch_size': 'DATA.BATCH_SIZE',
        'resume': 'MODEL.RESUME',
        'accumulation_steps': 'TRAIN.ACCUMULATION_STEPS',
        'amp_opt_level': 'AMP_OPT_LEVEL',
        'output': 'OUTPUT',
        'pretrained': 'TRAIN.PRETRAINED_PATH',
    }
    for attr, key in flags.items():
        value = getattr(args, attr, None)
        if value is not None:
            config.merge_from_list([key, value])
    if getattr(args, 'use_checkpoint', False):
        config.TRAIN.USE_CHECKPOINT = True
    if getattr(args, 'eval', False):
        config.EVAL_MODE = True
    validate(config)
    if config.EVAL_MODE:
        if not config.MODEL.RESUME:
            raise ConfigError('--eval needs a checkpoint: pass --resume CKPT')
        config.OUTPUT = eval_dir(config, getattr(args, 'output', None))
    else:
        config.OUTPUT = output_dir(config)
    config.freeze()
    return config


def validate(config):
    """The checks both loaders (get_config, load_config_file) make: a value no code path can use
    fails here, naming the key, before anything is built; an old config gets a message saying
    what to write instead."""
    if config.AMP_OPT_LEVEL not in ('O0', 'O1', 'O2'):
        raise ConfigError(f"AMP_OPT_LEVEL must be O0, O1 or O2, got '{config.AMP_OPT_LEVEL}'")
    if config.AMP_DTYPE not in ('', 'float16', 'bfloat16'):
        raise ConfigError(f"AMP_DTYPE must be '', float16 or bfloat16, got '{config.AMP_DTYPE}'")
    if config.TEST.NUM_CROP not in (1, 3):
        raise ConfigError(f'TEST.NUM_CROP must be 1 or 3, got {config.TEST.NUM_CROP}')
    if config.DATA.DECODER not in ('decord', 'pyav'):
        raise ConfigError(f"DATA.DECODER must be 'decord' or 'pyav', got '{config.DATA.DECODER}'")
    if config.TRAIN.OPTIMIZER.NAME.lower() not in ('sgd', 'adamw'):
        raise ConfigError(f"TRAIN.OPTIMIZER.NAME must be 'sgd' or 'adamw', got '{config.TRAIN.OPTIMIZER.NAME}'")
    if config.TRAIN.LR_SCHEDULER.NAME.lower() not in ('cosine', 'linear', 'step'):
        raise ConfigError(f"TRAIN.LR_SCHEDULER.NAME must be cosine, linear or step, "
                          f"got '{config.TRAIN.LR_SCHEDULER.NAME}'")
    jitter = config.AUG.COLOR_JITTER
    if not isinstance(jitter, (list, tuple)) or len(jitter) != 4:
        raise ConfigError(f'AUG.COLOR_JITTER must be 4 numbers (brightness, contrast, saturation, hue), '
                          f'e.g. [0.4, 0.4, 0.2, 0.1] (the recipe); got {jitter!r}')
    num_sample = config.AUG.NUM_SAMPLE
    if num_sample < 1 or config.DATA.BATCH_SIZE % num_sample:
        raise ConfigError(f'AUG.NUM_SAMPLE {num_sample} must be >= 1 and divide DATA.BATCH_SIZE '
                          f'{config.DATA.BATCH_SIZE} (the batch counts clips, NUM_SAMPLE per video)')
    if config.TRAIN.PRETRAINED_DEPTH not in ('exact', 'truncate'):
        raise ConfigError(f"TRAIN.PRETRAINED_DEPTH must be 'exact' or 'truncate', "
                          f"got '{config.TRAIN.PRETRAINED_DEPTH}'")


def get_config(args=None):
    """A fresh config: defaults merged with what `args` (argparse namespace) carries."""
    config = _C.clone()
    if args is not None:
        update_config(config, args)
    return config


def parse_option(description, argv=None, add_arguments=None, prog='python main.py'):
    """(args, config) from the command line of main.py and main_KD.py: the flags both take, then
    get_config. `description` is the command's docstring (utils.cli.command_parser);
    `add_arguments(parser)` lets main_KD.py add its own flags."""
    parser = command_parser(prog, description)
    parser.add_argument('--cfg', required=True, metavar='FILE', help='config file')
    parser.add_argument('--opts', nargs='+', metavar='KEY VALUE', help='config overrides')
    parser.add_argument('--batch-size', type=int, help='clips per GPU (DATA.BATCH_SIZE)')
    parser.add_argument('--resume', '--checkpoint', dest='resume', metavar='CKPT',
                        help='checkpoint to resume from, or to evaluate with --eval')
    parser.add_argument('--accumulation-steps', type=int, help='micro-batches per optimiser step')
    parser.add_argument('--use-checkpoint', action='store_true', help='gradient checkpointing')
    parser.add_argument('--amp-opt-level', choices=['O0', 'O1', 'O2'],
                        help='O0 float32; O1 torch.autocast in AMP_DTYPE (float16 + GradScaler, or '
                             'bfloat16); O2 is the same as O1')
    parser.add_argument('--output', metavar='PATH',
                        help='root of output folders (with --eval: where eval_<clips>x<crops>/ goes)')
    parser.add_argument('--pretrained', help='ImageNet FocalNet weights (TRAIN.PRETRAINED_PATH)')
    parser.add_argument('--eval', action='store_true',
                        help='only evaluate the --resume checkpoint, into <its folder>/eval_<clips>x<crops>/')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of user errors too (or set DVFL_DEBUG=1)')
    # torch.distributed.launch passes --local_rank (ignored); torchrun sets LOCAL_RANK, which
    # utils.distributed reads.
    parser.add_argument('--local_rank', '--local-rank', type=int, help=argparse.SUPPRESS)
    parser.add_argument('overrides', nargs='*', metavar='KEY VALUE',
                        help='more overrides, as with --opts (e.g. TEST.NUM_CLIP 4 TEST.NUM_CROP 3)')
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    return args, get_config(args)


def load_config_file(cfg_file, opts=()):
    """Defaults + one file + overrides, without touching OUTPUT (tools and tests)."""
    config = _C.clone()
    config.defrost()
    _merge_file(config, cfg_file)
    if opts:
        _merge_pairs(config, list(opts), 'overrides')
    validate(config)
    config.freeze()
    return config
