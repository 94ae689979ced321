"""Build a zoo model from a MODEL or TEACHER_MODEL config node."""
import timm

from .registry import ZOO


def model_kwargs(config, node):
    """Constructor arguments from the config: they win over the registry entry's defaults."""
    f = node.FOCAL
    return dict(
        img_size=config.DATA.INPUT_SIZE,
        patch_size=f.PATCH_SIZE,
        in_chans=f.IN_CHANS,
        num_classes=config.MODEL.NUM_CLASSES,
        embed_dim=f.EMBED_DIM,
        depths=list(f.DEPTHS),
        mlp_ratio=f.MLP_RATIO,
        drop_rate=node.DROP_RATE,
        drop_path_rate=node.DROP_PATH_RATE,
        patch_norm=f.PATCH_NORM,
        use_checkpoint=config.TRAIN.USE_CHECKPOINT if node is config.MODEL else False,
        focal_levels=list(f.FOCAL_LEVELS),
        focal_windows=list(f.FOCAL_WINDOWS),
        use_conv_embed=f.USE_CONV_EMBED,
        use_layerscale=f.USE_LAYERSCALE,
        layerscale_value=f.LAYERSCALE_VALUE,
        use_postln=f.USE_POSTLN,
        use_postln_in_modulation=f.USE_POSTLN_IN_MODULATION,
        normalize_modulator=f.NORMALIZE_MODULATOR,
        num_frames=config.DATA.NUM_FRAMES,
        tubelet_size=node.TUBELET_SIZE,
    )


def build_model(config, node=None):
    """The registry entry named by `node.TYPE` (node: config.MODEL by default, or TEACHER_MODEL)."""
    node = config.MODEL if node is None else node
    if node.TYPE not in ZOO:
        raise ValueError(f"unknown model TYPE '{node.TYPE}'; choose one of {sorted(ZOO)}")
    kwargs = model_kwargs(config, node)
    depth_count = {len(kwargs['depths']), len(kwargs['focal_levels']), len(kwargs['focal_windows'])}
    if len(depth_count) != 1:
        raise ValueError(f'{node.TYPE}: FOCAL.DEPTHS, FOCAL_LEVELS and FOCAL_WINDOWS need one '
                         f'entry per stage, got {kwargs["depths"]}, {kwargs["focal_levels"]}, '
                         f'{kwargs["focal_windows"]}')
    return timm.create_model(node.TYPE, pretrained=False, **kwargs)
