"""Helpers for end-to-end tests: a tiny config file over a generated dataset, and running the
project's commands the way a user types them, in a subprocess (`run`) or in this process
(`run_inline`, seconds faster: no interpreter and torch start-up)."""
import contextlib
import copy
import glob
import json
import logging
import os
import runpy
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

# A reduced Video-FocalNet (about 0.14M parameters) at 4 x 32 x 32: seconds per epoch on a CPU.
TINY_MODEL = {'TYPE': 'videofocalnet_custom', 'NAME': 'tiny', 'DROP_PATH_RATE': 0.0,
              'FOCAL': {'EMBED_DIM': 8, 'DEPTHS': [1, 1, 1, 1]}}
# Its teacher in distillation tests: twice as wide, so a checkpoint tells student from teacher.
TINY_TEACHER = dict(TINY_MODEL, NAME='teacher', FOCAL={'EMBED_DIM': 16, 'DEPTHS': [1, 1, 1, 1]})


def teacher_section(checkpoint):
    """The TEACHER_MODEL config section for TINY_TEACHER loaded from `checkpoint`."""
    return {k: v for k, v in TINY_TEACHER.items() if k != 'NAME'} | {'PRETRAINED_PATH': checkpoint}


def save_tiny_teacher(path, num_classes=3, seed=7):
    """A random TINY_TEACHER checkpoint ({'model': state dict}) for 4 x 32 x 32 clips at `path`,
    as main_KD.py's TEACHER_MODEL.PRETRAINED_PATH takes it; returns str(path)."""
    import models  # noqa: F401  (registers the architectures)
    from config import get_config
    from models import build_model

    cfg = get_config()
    cfg.defrost()
    cfg.TEACHER_MODEL.TYPE = TINY_TEACHER['TYPE']
    cfg.TEACHER_MODEL.FOCAL.EMBED_DIM, cfg.TEACHER_MODEL.FOCAL.DEPTHS = 16, [1, 1, 1, 1]  # TINY_TEACHER's
    cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES, cfg.DATA.INPUT_SIZE = num_classes, 4, 32
    torch.manual_seed(seed)
    torch.save({'model': build_model(cfg, cfg.TEACHER_MODEL).state_dict()}, path)
    return str(path)


def tiny_batch(n=4):
    """(clips (n, 2, 3, 32, 32), labels) for tiny_model(), the same every call."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 1][:n])


def tiny_model(num_classes=3, embed_dim=8, depths=(1, 1, 1, 1), num_frames=2, seed=0):
    """A seeded VideoFocalNet of TINY_MODEL's shape for in-process tests (no config needed)."""
    from models import VideoFocalNet

    torch.manual_seed(seed)
    return VideoFocalNet(num_classes=num_classes, embed_dim=embed_dim, depths=list(depths),
                         num_frames=num_frames, drop_path_rate=0.0)


def write_config(path, train_csv, val_csv, label_csv, num_classes, extra=None):
    """A YAML config file for main.py / main_KD.py; `extra` is a nested dict merged on top."""
    cfg = {
        'DATA': {'DATASET': 'tiny', 'ROOT': os.path.dirname(train_csv), 'TRAIN_FILE': train_csv,
                 'VAL_FILE': val_csv, 'LABEL_LIST': label_csv, 'BATCH_SIZE': 2, 'NUM_FRAMES': 4,
                 'INPUT_SIZE': 32, 'NUM_WORKERS': 0, 'DECODER': 'pyav'},
        'MODEL': dict(copy.deepcopy(TINY_MODEL), NUM_CLASSES=num_classes),
        'TRAIN': {'EPOCHS': 2, 'WARMUP_EPOCHS': 1, 'BASE_LR': 0.5, 'OPTIMIZER': {'NAME': 'sgd'},
                  'PRETRAINED_PATH': ''},  # from scratch on purpose: no ImageNet file fits the tiny model
        'AUG': {'MIXUP': 0.0, 'CUTMIX': 0.0},
        'AMP_OPT_LEVEL': 'O0', 'PRINT_FREQ': 2, 'SAVE_FREQ': 1,
    }
    _deep_update(cfg, copy.deepcopy(extra or {}))
    with open(path, 'w') as f:
        yaml.safe_dump(cfg, f)
    return str(path)


def _deep_update(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def run(args, torchrun=0, check=True, timeout=600):
    """Run `python <args>` (or `torchrun --nproc_per_node N <args>`) in the repository root."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    if torchrun:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(torchrun),
               '--standalone', *args]
    else:
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed ({proc.returncode}):\n{output[-6000:]}')
    return proc.returncode, output


@contextlib.contextmanager
def logging_restored():
    """Undo what `utils.logger.setup_logging` does to the root logger inside the block: its handlers
    (marked `dvfl`) come and go as before, its level is reset; pytest's own handlers are not touched."""
    root = logging.getLogger()
    ours, level = [h for h in root.handlers if getattr(h, 'dvfl', False)], root.level
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if getattr(h, 'dvfl', False) and h not in ours]:
            root.removeHandler(handler)
            handler.close()
        for handler in ours:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def run_inline(command, args, monkeypatch):
    """Run `python <command> <args>` (a file such as 'main.py', or a module such as 'tools.predict')
    in this process, as __main__ with sys.argv set, and return its exit status. The logging set-up
    the command makes is undone afterwards."""
    monkeypatch.setattr(sys, 'argv', [command, *args])
    monkeypatch.delenv('DVFL_DEBUG', raising=False)
    with logging_restored(), pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # runpy: the module was imported before
        if command.endswith('.py'):
            path = os.path.join(ROOT, command)
            assert os.path.isfile(path), f'{command} does not exist'
            runpy.run_path(path, run_name='__main__')
        else:
            runpy.run_module(command, run_name='__main__', alter_sys=True)
    return exit_info.value.code


def strict_json(line):
    """json.loads that refuses `Infinity`, `-Infinity` and `NaN`, as strict JSON parsers do."""
    def refuse(name):
        raise ValueError(f'not strict JSON: {name} in {line.strip()}')
    return json.loads(line, parse_constant=refuse)


def records(folder):
    """The JSON lines of `<folder>/log.jsonl` (what a run logs for machines: per-epoch and final),
    read strictly."""
    with open(os.path.join(str(folder), 'log.jsonl')) as f:
        return [strict_json(line) for line in f]


def final_record(folder):
    """The last `"final": true` record of `<folder>/log.jsonl`."""
    return [r for r in records(folder) if r.get('final')][-1]


def run_dir(output_root):
    """The single run folder under an --output root (<root>/<dataset>/<model>/<run>)."""
    found = glob.glob(os.path.join(str(output_root), '*', '*', '*'))
    assert len(found) == 1, found
    return found[0]


def assert_kd_mix(epoch, alpha, rel):
    """The epoch record's train loss is alpha * KD + (1 - alpha) * CE, with the two terms far enough
    apart that no other alpha would fit."""
    kd, ce = epoch['train_loss_kd'], epoch['train_loss_ce']
    assert abs(kd - ce) > 0.01 * ce  # else any alpha would fit
    assert epoch['train_loss'] == pytest.approx(alpha * kd + (1 - alpha) * ce, rel=rel)
