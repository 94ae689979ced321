"""Video-FocalNet zoo; importing this package registers the timm entries (models/registry.py)."""
from .build import build_model
from .registry import (ZOO, videofocalnet_base, videofocalnet_custom, videofocalnet_nano, videofocalnet_small,
                       videofocalnet_tiny)
from .video_focalnet import VideoFocalNet, capture_modulators

__all__ = ['VideoFocalNet', 'build_model', 'capture_modulators', 'ZOO', 'videofocalnet_nano',
           'videofocalnet_tiny', 'videofocalnet_small', 'videofocalnet_base', 'videofocalnet_custom']
