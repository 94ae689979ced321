"""timm registry entries for the zoo: `timm.create_model('videofocalnet_base', num_classes=101)`."""
from timm.models import register_model

from .video_focalnet import VideoFocalNet

# The one home of each model's depth and width (configs name the type only). All use focal levels
# [2]*4 and windows [3]*4 (kernels 3 and 5). videofocalnet_custom fixes neither: the caller gives
# embed_dim and depths (the demo and the tests' tiny models).
ZOO = {
    'videofocalnet_nano': dict(depths=[1, 1, 2, 1], embed_dim=96),
    'videofocalnet_tiny': dict(depths=[2, 2, 6, 2], embed_dim=96),
    'videofocalnet_small': dict(depths=[2, 2, 18, 2], embed_dim=96),
    'videofocalnet_base': dict(depths=[2, 2, 18, 2], embed_dim=128),
    'videofocalnet_custom': dict(depths=None, embed_dim=None),
}


def _create(name, pretrained=False, **kwargs):
    if pretrained:
        raise ValueError(
            f'{name}: weights are not downloaded; build with pretrained=False and load a checkpoint '
            'file (TRAIN.PRETRAINED_PATH, TEACHER_MODEL.PRETRAINED_PATH or --resume)')
    kwargs.pop('pretrained_cfg', None)
    kwargs.pop('pretrained_cfg_overlay', None)
    kwargs.pop('cache_dir', None)
    args = dict(ZOO[name], focal_levels=[2, 2, 2, 2], focal_windows=[3, 3, 3, 3])
    args.update(kwargs)
    unset = [k for k in ('embed_dim', 'depths') if args[k] is None]
    if unset:
        raise ValueError(f'{name} has no fixed architecture: give {" and ".join(unset)} '
                         '(MODEL.FOCAL.EMBED_DIM / MODEL.FOCAL.DEPTHS in a config)')
    return VideoFocalNet(**args)


def _entry(name, doc):
    """Register the timm entry point `name(pretrained=False, **kwargs)` for the zoo member `name`."""
    def create(pretrained=False, **kwargs):
        return _create(name, pretrained, **kwargs)
    create.__name__ = create.__qualname__ = name
    create.__doc__ = doc
    return register_model(create)


videofocalnet_nano = _entry('videofocalnet_nano', 'VFL-Net, the DVFL-Net student (22.2M parameters with 101 classes).')
videofocalnet_tiny = _entry('videofocalnet_tiny', 'Video-FocalNet-T (49.3M).')
videofocalnet_small = _entry('videofocalnet_small', 'Video-FocalNet-S (88.5M).')
videofocalnet_base = _entry('videofocalnet_base', 'Video-FocalNet-B, the distillation teacher (157.1M).')
videofocalnet_custom = _entry('videofocalnet_custom', 'Any width and depth (embed_dim and depths required): '
                              'reduced models for demos and tests.')
