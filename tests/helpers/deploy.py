"""A trained-model stand-in for tools.predict / tools.export tests: a tiny dataset of generated videos,
its config file, and a checkpoint of a tiny model written by the project's save_checkpoint."""
import os
from types import SimpleNamespace

import torch

from config import load_config_file
from models import build_model
from tests.helpers.runs import write_config
from tests.helpers.videos import make_dataset
from utils.checkpoint import save_checkpoint
from utils.optim import build_optimizer, build_scheduler

NUM_CLASSES = 3


def tiny_deployment(root, seed=0, extra=None):
    """Namespace(cfg, config, checkpoint, model, videos): model in eval mode, its weights in the
    checkpoint; `extra` is merged into the config file (see tests.helpers.runs.write_config)."""
    root = str(root)
    train_csv, val_csv, label_csv = make_dataset(os.path.join(root, 'data'), NUM_CLASSES,
                                                 videos_per_class=1, num_frames=[12, 20, 16],
                                                 size=[(64, 48), (48, 64)])
    extra = {'TEST': {'NUM_CLIP': 2, 'NUM_CROP': 3}, **(extra or {})}
    cfg = write_config(os.path.join(root, 'tiny.yaml'), train_csv, val_csv, label_csv, NUM_CLASSES, extra)
    config = load_config_file(cfg)
    torch.manual_seed(seed)
    model = build_model(config)
    optimizer = build_optimizer(config, model, 0.1)
    scheduler = build_scheduler(config, optimizer, 1, 0.01, 0.001)
    scaler = torch.amp.GradScaler('cpu', enabled=False)
    ckpt = save_checkpoint(root, 0, model, optimizer, scheduler, scaler, 0.0, config)
    videos = sorted(os.path.join(dirpath, name) for dirpath, _, names in os.walk(os.path.join(root, 'data', 'val'))
                    for name in names)
    return SimpleNamespace(cfg=cfg, config=config, checkpoint=ckpt, model=model.eval(), videos=videos)
