"""Build a zoo model from a MODEL or TEACHER_MODEL config node."""
import timm

from utils.errors import UserError

from .registry import ZOO


class ModelConfigError(UserError, ValueError):
    """MODEL / TEACHER_MODEL keys that name no zoo type or contradict the type they name."""


def architecture(node, section='MODEL'):
    """(embed_dim, depths) of a MODEL / TEACHER_MODEL node: the registry's for a zoo type, where
    FOCAL.EMBED_DIM / DEPTHS may only repeat them; the config's for videofocalnet_custom."""
    if node.TYPE not in ZOO:
        raise ModelConfigError(f"unknown model TYPE '{node.TYPE}'; choose one of {sorted(ZOO)}")
    fixed = ZOO[node.TYPE]
    out = {}
    for key, name in (('EMBED_DIM', 'embed_dim'), ('DEPTHS', 'depths')):
        given, full = node.FOCAL[key], f'{section}.FOCAL.{key}'
        given = list(given) if isinstance(given, (list, tuple)) else given
        if fixed[name] is None:
            if given is None:
                raise ModelConfigError(f'{node.TYPE} has no fixed architecture: set {full}')
            out[name] = given
        elif given is not None and given != fixed[name]:
            raise ModelConfigError(f'{full} = {given} contradicts {node.TYPE}, whose '
                             f'{name} is {fixed[name]} (models/registry.py); leave the key unset, or use '
                             f'TYPE videofocalnet_custom for another architecture')
        else:
            out[name] = fixed[name]
    return out['embed_dim'], out['depths']


def model_kwargs(config, node):
    """Constructor arguments from the config; depth and width come from `architecture`."""
    f = node.FOCAL
    embed_dim, depths = architecture(node, 'MODEL' if node is config.MODEL else 'TEACHER_MODEL')
    return dict(
        patch_size=f.PATCH_SIZE,
        in_chans=f.IN_CHANS,
        num_classes=config.MODEL.NUM_CLASSES,
        embed_dim=embed_dim,
        depths=list(depths),
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
    kwargs = model_kwargs(config, node)
    depth_count = {len(kwargs['depths']), len(kwargs['focal_levels']), len(kwargs['focal_windows'])}
    if len(depth_count) != 1:
        raise ModelConfigError(f'{node.TYPE}: FOCAL.DEPTHS, FOCAL_LEVELS and FOCAL_WINDOWS need one '
                         f'entry per stage, got {kwargs["depths"]}, {kwargs["focal_levels"]}, '
                         f'{kwargs["focal_windows"]}')
    return timm.create_model(node.TYPE, pretrained=False, **kwargs)
