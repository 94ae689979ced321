"""Checkpoint files: reading (torch `weights_only`, safetensors, any container), atomic save on
rank 0, strict model loading, resume. Mapping other layouts onto the model is models/pretrained.py's."""
import glob
import os
import pickle
import re
import zipfile

import torch

from .errors import UserError

CKPT_RE = re.compile(r'ckpt_epoch_(\d+)\.pth$')


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be read, or that does not fit the model it is loaded into."""


def atomic_write(path, write):
    """write(f) into a temporary file beside `path`, then rename it: a crash never leaves half a file."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'wb') as f:
        write(f)
    os.replace(tmp, path)


def unwrap(model):
    """The bare model under DDP / torch.compile wrappers, in either order."""
    while hasattr(model, '_orig_mod') or hasattr(model, 'module'):
        model = getattr(model, '_orig_mod', None) or model.module
    return model


def _unsafe_globals(path):
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # only a hint for the message; the load error itself is what matters
        return []


def read_checkpoint(path, trusted=False, mmap=False):
    """torch.load with weights_only=True (unless the user trusts the file); failures name the file.

    mmap: map the file instead of reading it (zip-format files, torch.save's default): only the
    tensors used are paged in, and processes loading one file share its pages, so the ranks that
    each load a teacher do not each hold its optimiser state in memory."""
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        return torch.load(path, map_location='cpu', weights_only=not trusted,
                          mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        found = _unsafe_globals(path)
        what = f' (it pickles {", ".join(found)})' if found else ''
        raise CheckpointError(
            f'{path}: refused to load, the file needs arbitrary code to unpickle{what}: '
            f'{str(err).splitlines()[0]}. If you trust its source, convert it once to plain '
            f'tensors: python -m tools.convert {path} OUT.pth --cfg CONFIG --trust-source') from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f'{path}: cannot read the checkpoint (truncated, or not a PyTorch '
                              f'file?): {reason}') from None


def _is_state_dict(obj):
    return (isinstance(obj, dict) and len(obj) > 0
            and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()))


def model_state(ckpt, path='<checkpoint>'):
    """The model state dict of a bare state dict, `{'model': sd}` or `{'state_dict': sd}`, without
    the `module.` (DDP) and `_orig_mod.` (torch.compile) prefixes."""
    if not _is_state_dict(ckpt) and isinstance(ckpt, dict):
        for key in ('model', 'state_dict'):
            if _is_state_dict(ckpt.get(key)):
                ckpt = ckpt[key]
                break
    if not _is_state_dict(ckpt):
        top = sorted(map(str, ckpt))[:12] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: no model weights found; expected a state dict of tensors, "
                              f"{{'model': state_dict}} or {{'state_dict': state_dict}}, got {top}")
    for prefix in ('module.', '_orig_mod.'):
        if all(k.startswith(prefix) for k in ckpt):
            ckpt = {k[len(prefix):]: v for k, v in ckpt.items()}
    return dict(ckpt)


def read_state_dict(path, trusted=False):
    """The model state dict in `path`: bare, `{'model': sd}` or `{'state_dict': sd}`.

    Loads with `weights_only=True` so a file cannot run code; `trusted=True` (an explicit user
    choice, e.g. `tools.convert --trust-source`) lifts that for files that pickle objects such as
    Swin-style yacs configs. `.safetensors` files (the Hugging Face hub's timm weights) are read
    with safetensors, which timm depends on. `module.` / `_orig_mod.` prefixes are stripped.
    """
    if str(path).endswith('.safetensors'):
        return model_state(_read_safetensors(path), path)
    return model_state(read_checkpoint(path, trusted=trusted), path)


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        state_dict = load_file(path, device='cpu')
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint not found: {path}') from None
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f'{path}: cannot read the safetensors file (truncated?): {err}') from None
    if not state_dict:
        raise CheckpointError(f'{path}: the safetensors file holds no tensors')
    return state_dict


def check_state_fits(model, state, path):
    """Raise naming every missing, unexpected or mis-shaped key; nothing is loaded partially."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        lines = [f'{path}: checkpoint does not fit the model built from the config '
                 '(another architecture, depth, width or class count?)']
        for title, items in (('size mismatch', shapes), ('missing in checkpoint', missing),
                             ('not in model', unexpected)):
            if items:
                more = f' ... and {len(items) - 10} more' if len(items) > 10 else ''
                lines.append(f'  {title} ({len(items)}): ' + '; '.join(items[:10]) + more)
        raise CheckpointError('\n'.join(lines))


def load_model_weights(model, path, logger=None):
    """Strictly load the model weights of any supported checkpoint form (a memory-mapped read: the
    rest of the file, e.g. optimiser state, is not read); return the raw checkpoint."""
    ckpt = read_checkpoint(path, mmap=True)
    _load_weights(model, ckpt, path)
    if logger:
        logger.info(f'loaded model weights from {path}')
    return ckpt


def _load_weights(model, ckpt, path):
    state = model_state(ckpt, path)
    model = unwrap(model)
    check_state_fits(model, state, path)
    model.load_state_dict(state, strict=True)


def save_checkpoint(output_dir, epoch, model, optimizer, lr_scheduler, scaler, max_accuracy, config,
                    logger=None, world_size=1, steps_per_epoch=None):
    """Write ckpt_epoch_<epoch>.pth through a temporary file, so a crash never leaves half a file.
    world_size and steps_per_epoch are for the record: a resume under another world size says
    what changed."""
    state = {
        'model': unwrap(model).state_dict(),
        'optimizer': optimizer.state_dict(),
        'lr_scheduler': lr_scheduler.state_dict(),
        'scaler': scaler.state_dict(),
        'epoch': epoch,
        'max_accuracy': max_accuracy,
        'config': config.dump(),
        'world_size': world_size,
        'steps_per_epoch': steps_per_epoch,
    }
    path = os.path.join(output_dir, f'ckpt_epoch_{epoch}.pth')
    atomic_write(path, lambda f: torch.save(state, f))
    if logger:
        logger.info(f'saved {path}')
    return path


def find_latest_checkpoint(output_dir):
    """The highest-epoch complete ckpt_epoch_<e>.pth in output_dir, or None."""
    found = [(int(m.group(1)), p) for p in glob.glob(os.path.join(output_dir, 'ckpt_epoch_*.pth'))
             if (m := CKPT_RE.search(p))]
    return max(found)[1] if found else None


def resume_training(path, model, optimizer, scaler, logger=None):
    """Restore model, optimiser and GradScaler; return (next_epoch, max_accuracy, checkpoint).

    The LR schedule is not restored: the caller rebuilds it from the config for this run's world
    size and steps per epoch, so a resume on another GPU count continues the same LR-against-epoch
    curve re-scaled by the linear rule (engine.resume_schedule). A scaler saved disabled (O0,
    bfloat16, any CPU run before float16 ran there) holds no state: a float16 run then starts its
    loss scaling afresh, and a run without loss scaling ignores a saved scale."""
    ckpt = read_checkpoint(path)
    _load_weights(model, ckpt, path)
    missing = [k for k in ('optimizer', 'epoch') if k not in ckpt]
    if missing:
        raise CheckpointError(f'{path}: cannot resume training, the checkpoint has no {missing} '
                              '(it holds weights only; use TRAIN.PRETRAINED_PATH or --eval instead)')
    optimizer.load_state_dict(ckpt['optimizer'])
    saved_scaler = ckpt.get('scaler') or {}
    if scaler.is_enabled() and saved_scaler:
        scaler.load_state_dict(saved_scaler)
    elif logger and scaler.is_enabled():
        logger.info(f'{path} has no GradScaler state (saved without float16 loss scaling): loss '
                    f'scaling starts at scale {scaler.get_scale():g}')
    elif logger and saved_scaler:
        logger.info(f'{path}: its GradScaler state (scale {saved_scaler.get("scale")}) is not used, '
                    'this run has no loss scaling')
    if logger:
        logger.info(f"resumed from {path} (epoch {ckpt['epoch']})")
    return ckpt['epoch'] + 1, ckpt.get('max_accuracy', 0.0), ckpt
