"""Start a Video-FocalNet from FocalNet weights in any published layout, without partial loads.

Layouts, told apart by their key names:
- 'official': the FocalNet release (focalnet_tiny_srf.pth, ...): `patch_embed.*`,
  `layers.{i}.blocks.*`, `layers.{i}.downsample.*` at the END of stage i, `norm.*`, `head.*`.
  These are our names minus the temporal branch.
- 'timm': `timm.create_model('focalnet_*')` state dicts: `stem.*`, downsampling at the START of
  stage i, 1x1 convolutions where we have Linear layers, `ls1.gamma`, `norm1_post`, `head.fc.*`.
- 'video': ours, i.e. the published Video-FocalNet / DVFL-Net checkpoints and our own training
  checkpoints (it has `f_temporal`, `h_temporal`, `focal_layers_temporal`).

From an image layout the spatial weights are loaded, the temporal branch keeps the model's
initialisation and the classifier head is re-initialised; a 2-D stem is inflated for
tubelet_size > 1. Everything else must fit exactly; what does not is an error naming the keys.
One explicit exception, depth='truncate' (TRAIN.PRETRAINED_DEPTH): a file with more blocks per stage
than the model loads its first blocks of each stage and drops the rest, logged by name. This is how
the published VFL-Net (nano, depths [1, 1, 2, 1]) starts from focalnet_tiny_srf ([2, 2, 6, 2]).
Reading files (torch, safetensors, containers) is utils/checkpoint.py's job.
"""
import logging
import os
import re
from dataclasses import dataclass, field

import torch
from timm.layers import trunc_normal_

from utils.checkpoint import CheckpointError, read_state_dict, unwrap

TEMPORAL_PARTS = ('f_temporal', 'h_temporal', 'focal_layers_temporal')
HEAD_KEYS = ('head.weight', 'head.bias')
STEM_KEY = 'patch_embed.proj.weight'


# ------------------------------------------------------------------------------------------------
# Layouts
# ------------------------------------------------------------------------------------------------

def is_temporal(key):
    return any(f'.{part}.' in key for part in TEMPORAL_PARTS)


def detect_layout(state_dict):
    """'timm', 'video' or 'official', from the key names."""
    keys = list(state_dict)
    if 'stem.proj.weight' in state_dict:
        return 'timm'
    if STEM_KEY in state_dict:
        return 'video' if any(is_temporal(k) for k in keys) else 'official'
    raise CheckpointError(f'not a FocalNet checkpoint: neither patch_embed.proj.weight (official, '
                          f'Video-FocalNet) nor stem.proj.weight (timm) is present; first keys: '
                          f'{keys[:8]}')


_TIMM_RENAMES = [
    (re.compile(r'^stem\.'), 'patch_embed.'),
    (re.compile(r'\.ls([12])\.gamma$'), r'.gamma_\1'),
    (re.compile(r'\.norm([12])_post\.'), r'.norm\1.'),
    (re.compile(r'\.modulation\.norm\.'), '.modulation.ln.'),
    (re.compile(r'^head\.fc\.'), 'head.'),
]
_TIMM_DOWNSAMPLE = re.compile(r'^layers\.(\d+)\.downsample\.')
# timm keeps these as 1x1 convolutions (NCHW throughout); FocalNet has Linear layers.
_TIMM_CONV1X1 = re.compile(r'\.(modulation\.f|modulation\.proj|mlp\.fc1|mlp\.fc2)\.weight$')


def timm_to_official(state_dict):
    """Rename and reshape a timm FocalNet state dict into the official FocalNet layout."""
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl in _TIMM_RENAMES:
            new = pattern.sub(repl, new)
        m = _TIMM_DOWNSAMPLE.match(new)
        if m:
            stage = int(m.group(1))
            if stage == 0:
                raise CheckpointError(f'{key}: timm FocalNet has no downsampling at stage 0')
            new = f'layers.{stage - 1}.downsample.' + new[m.end():]
        if _TIMM_CONV1X1.search(new) and value.dim() == 4:
            if value.shape[2:] != (1, 1):
                raise CheckpointError(f'{key}: expected a 1x1 convolution, got {tuple(value.shape)}')
            value = value.flatten(1)
        if new in out:
            raise CheckpointError(f'{key}: two timm keys map to {new} (both norm1 and norm1_post?)')
        out[new] = value
    return out


_BLOCK = re.compile(r'layers\.(\d+)\.blocks\.(\d+)\.')


def stage_depths(state_dict):
    """Blocks per stage as far as the keys tell, e.g. [2, 2, 6, 2]."""
    depths = {}
    for key in state_dict:
        m = _BLOCK.match(key)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    return [depths.get(i, 0) for i in range(max(depths, default=-1) + 1)]


def _architecture(state_dict):
    """'embed_dim E, depths [...]' as far as the keys tell."""
    stem = state_dict.get(STEM_KEY)
    dim = stem.shape[0] if stem is not None else '?'
    return f'embed_dim {dim}, depths {stage_depths(state_dict)}'


def truncate_depth(state_dict, depths):
    """(state dict without the blocks beyond `depths[i]` in stage i, names of the dropped blocks).
    Stages the model lacks are kept, so they still fail as keys the model does not have."""
    kept, dropped = {}, {}
    for key, value in state_dict.items():
        m = _BLOCK.match(key)
        if m and int(m.group(1)) < len(depths) and int(m.group(2)) >= depths[int(m.group(1))]:
            dropped.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        else:
            kept[key] = value
    names = []
    for stage, blocks in sorted(dropped.items()):
        first, last = min(blocks), max(blocks)
        names.append(f'layers.{stage}.blocks.{first}' + (f'-{last}' if last > first else ''))
    return kept, names


def _summarise(keys, limit=12):
    """Key list for a message: whole blocks collapse to `layers.i.blocks.j.* (n keys)`."""
    groups = {}
    for key in keys:
        m = re.match(r'(layers\.\d+\.blocks\.\d+)\.', key)
        groups.setdefault(m.group(1) + '.*' if m else key, []).append(key)
    items = [name if len(ks) == 1 and name == ks[0] else f'{name} ({len(ks)} keys)'
             for name, ks in groups.items()]
    more = f' ... and {len(items) - limit} more' if len(items) > limit else ''
    return '; '.join(items[:limit]) + more


def _hints(unexpected, missing, mismatched):
    hints = []
    if unexpected and all(_BLOCK.match(k) for k in unexpected) and not missing and not mismatched:
        hints.append("the file is deeper than the model: TRAIN.PRETRAINED_DEPTH 'truncate' loads the "
                     'first blocks of each stage and drops the rest')
    if any('gamma_' in k for k in unexpected + missing):
        hints.append('layerscale differs: MODEL.FOCAL.USE_LAYERSCALE')
    if any('.modulation.ln.' in k for k in unexpected + missing):
        hints.append('post-norm in the modulation differs: MODEL.FOCAL.USE_POSTLN_IN_MODULATION')
    if STEM_KEY in mismatched:
        hints.append('stem differs: another width (MODEL.TYPE, or FOCAL.EMBED_DIM of videofocalnet_custom), '
                     'MODEL.FOCAL.PATCH_SIZE, USE_CONV_EMBED or MODEL.TUBELET_SIZE')
    if unexpected and all(is_temporal(k) for k in unexpected):
        hints.append('the temporal branch does not fit (focal levels or windows differ)')
    return hints


# ------------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------------

@dataclass
class Conversion:
    """A full state dict for the model and an account of where each entry came from."""
    layout: str
    state_dict: dict
    loaded: list = field(default_factory=list)
    initialised: dict = field(default_factory=dict)  # key -> why it keeps / gets a fresh init
    inflated: list = field(default_factory=list)
    ignored: dict = field(default_factory=dict)  # checkpoint key -> why it is not used
    dropped: list = field(default_factory=list)  # blocks beyond the model's depth ('truncate')

    def summary(self, source):
        lines = [f'{source}: {self.layout} layout, loaded {len(self.loaded)} tensors']
        if self.dropped:
            lines.append(f'  dropped, the file is deeper than the model (TRAIN.PRETRAINED_DEPTH '
                         f'truncate): {", ".join(self.dropped)}')
        if self.inflated:
            lines.append(f'  inflated over time (repeated, divided by the tubelet size): '
                         f'{", ".join(self.inflated)}')
        by_reason = {}
        for key, why in self.initialised.items():
            by_reason.setdefault(why, []).append(key)
        for why, keys in by_reason.items():
            if all(is_temporal(k) for k in keys):
                blocks = {k.split('.modulation.')[0] for k in keys}
                what = (f'{len(keys)} tensors, {", ".join(TEMPORAL_PARTS)} of {len(blocks)} blocks')
            else:
                what = _summarise(keys, limit=6)
            lines.append(f'  at initialisation ({why}): {what}')
        for key, why in self.ignored.items():
            lines.append(f'  not used: {key} ({why})')
        return '\n'.join(lines)


def _new_head(ref):
    """Truncated normal (std 0.02) weight and bias: the published main.py / main_KD.py re-drew both
    this way after loading ImageNet weights (the model's own init gives the head a zero bias)."""
    return trunc_normal_(torch.empty_like(ref), std=.02)


def _check_norm_placement(raw, model):
    """Pre- and post-norm blocks have the same keys in our layout; timm's names tell them apart."""
    source_post = any('_post.' in k for k in raw)
    flags = {m.use_postln for m in model.modules() if hasattr(m, 'use_postln')}
    if flags and flags != {source_post}:
        raise CheckpointError(
            f'the timm checkpoint uses {"post" if source_post else "pre"}-norm blocks '
            f'(norm1{"_post" if source_post else ""}), the model '
            f'{"post" if True in flags else "pre"}-norm: set MODEL.FOCAL.USE_POSTLN to {source_post}')


def convert_to_video(state_dict, model, require_head=False, source='<state dict>', depth='exact'):
    """Map `state_dict` (any layout) onto `model`'s keys; `model` itself is not changed.

    Returns a Conversion whose state_dict loads into the model with strict=True. Temporal-branch
    entries keep the model's current (initial) values when the source is an image checkpoint; the
    head is re-initialised unless the source is a video checkpoint with a head of the model's size
    (`require_head=True` makes any other case an error, e.g. for a frozen teacher). `depth`: 'exact'
    or 'truncate' (see the module docstring).
    """
    if depth not in ('exact', 'truncate'):
        raise CheckpointError(f"TRAIN.PRETRAINED_DEPTH must be 'exact' or 'truncate', got {depth!r}")
    model = unwrap(model)
    try:
        layout = detect_layout(state_dict)
        if layout == 'timm':
            _check_norm_placement(state_dict, model)
            state_dict = timm_to_official(state_dict)
    except CheckpointError as err:
        raise CheckpointError(f'{source}: {err}') from None
    image = layout != 'video'
    target = model.state_dict()
    conv = Conversion(layout, {})
    if depth == 'truncate':
        state_dict, conv.dropped = truncate_depth(state_dict, stage_depths(target))
    missing, mismatched = [], []

    for key, ref in target.items():
        src = state_dict.get(key)
        if image and is_temporal(key):
            conv.state_dict[key] = ref.clone()
            conv.initialised[key] = 'temporal branch, absent from an image checkpoint'
            continue
        if key in HEAD_KEYS:
            if not image and src is not None and src.shape == ref.shape:
                conv.state_dict[key] = src
                conv.loaded.append(key)
                continue
            theirs = (f'the checkpoint head has {state_dict["head.weight"].shape[0]} classes'
                      if 'head.weight' in state_dict else 'the checkpoint has no head')
            if image:
                theirs += ', and it is an image checkpoint'
            if require_head:
                raise CheckpointError(f'{source}: the classifier head must come from the '
                                      f'checkpoint, but {theirs} (model head '
                                      f'{tuple(target["head.weight"].shape)})')
            why = (f'classifier head re-initialised for {target["head.weight"].shape[0]} classes, '
                   f'weight and bias trunc normal std 0.02; {theirs}')
            conv.state_dict[key] = _new_head(ref)
            conv.initialised[key] = why
            continue
        if src is None:
            missing.append(key)
            continue
        if key == STEM_KEY and src.dim() == 4 and ref.dim() == 5:
            tubelet = ref.shape[2]
            src = src.unsqueeze(2).repeat(1, 1, tubelet, 1, 1) / tubelet
            conv.inflated.append(f'{key} (x{tubelet})')
        if src.shape != ref.shape:
            mismatched.append(key)
            continue
        conv.state_dict[key] = src
        conv.loaded.append(key)

    unexpected = []
    for key in state_dict:
        if key in target:
            continue
        if key in HEAD_KEYS:
            conv.ignored[key] = 'the model has no classifier head (num_classes 0)'
        else:
            unexpected.append(key)

    if missing or mismatched or unexpected:
        lines = [f'{source}: the {layout} checkpoint does not fit the model (checkpoint '
                 f'{_architecture(state_dict)}; model {_architecture(target)})']
        if mismatched:
            shapes = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(target[k].shape)}'
                      for k in mismatched]
            more = f' ... and {len(shapes) - 10} more' if len(shapes) > 10 else ''
            lines.append(f'  shape mismatch ({len(shapes)}): ' + '; '.join(shapes[:10]) + more)
        if missing:
            lines.append(f'  missing in the checkpoint ({len(missing)}): {_summarise(missing)}')
        if unexpected:
            lines.append(f'  not in the model ({len(unexpected)}): {_summarise(unexpected)}')
        lines += [f'  hint: {h}' for h in _hints(unexpected, missing, mismatched)]
        raise CheckpointError('\n'.join(lines))
    return conv


def load_pretrained(model, path, logger=None, require_head=False, trusted=False, depth='exact',
                    model_name=None):
    """Load FocalNet / Video-FocalNet weights from `path` into `model` (see the module docstring).

    Logs what was loaded, what was dropped, what stayed at initialisation and why; returns the
    Conversion. `model_name` (e.g. 'videofocalnet_nano (VFL-Net)') is named when the file is missing.
    """
    if model_name and not os.path.isfile(path):
        raise CheckpointError(
            f"{path}: ImageNet FocalNet weights for {model_name} not found. docs/pretrained.md says "
            f"which file each model starts from and where to download it; to train from scratch on "
            f"purpose, set TRAIN.PRETRAINED_PATH ''")
    model = unwrap(model)
    conv = convert_to_video(read_state_dict(path, trusted=trusted), model,
                            require_head=require_head, source=path, depth=depth)
    model.load_state_dict(conv.state_dict, strict=True)
    (logger or logging.getLogger(__name__)).info(conv.summary(path))
    return conv
