"""Focal modulation maps of a model on a clip, rendered as heat maps over its frames: an animated GIF
and a contact sheet (tools.visualize).

A map is, for the last block of each stage, the channel mean of |h(ctx_all)|, the spatial modulator
(the 1x1 conv `h` on the gated focal context, before it multiplies the query and the temporal
modulator), captured with the model's opt-in `capture_modulators` (no hooks: each stage's last
modulation holds a dict only inside its `with`).
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw

from .video_focalnet import capture_modulators

MIN_PANEL = 112  # display panels are upscaled by an integer factor to at least this many pixels
HEADER = 14      # height of the contact sheet's column titles


@torch.no_grad()
def modulation_maps(model, clip):
    """(logits (num_classes,), [one (T, S, S) map in [0, 1] per stage]) for a clip (T, C, S, S).

    A map is the channel mean of |spatial modulator|, upsampled to S x S and min-max scaled over
    the clip. With a tubelet stem (T' = T / tubelet tokens) each token's map covers its frames.
    """
    num_frames, size = clip.shape[0], clip.shape[-1]
    with capture_modulators(model) as stages:
        logits = model(clip.unsqueeze(0))[0]
    maps = []
    for stage in stages:
        magnitude = stage['spatial'].abs().mean(1, keepdim=True).float()       # (T', 1, h, w)
        magnitude = F.interpolate(magnitude, size=(size, size), mode='bilinear', align_corners=False)
        magnitude = magnitude[:, 0].repeat_interleave(num_frames // magnitude.shape[0], 0)
        low, high = magnitude.min(), magnitude.max()
        maps.append((magnitude - low) / (high - low) if high > low else torch.zeros_like(magnitude))
    return logits, maps


def overlay(frame, heat, alpha=0.5, cmap='jet'):
    """uint8 (H, W, 3) frame blended with a colour-mapped (H, W) map in [0, 1]."""
    colours = colormaps[cmap](heat)[..., :3] * 255.0
    return np.clip((1 - alpha) * frame + alpha * colours, 0, 255).astype(np.uint8)


def panel_rows(frames, maps, scale=1, alpha=0.5):
    """One uint8 row (S*scale, 5*S*scale, 3) per frame: the input, then one overlay per stage."""
    rows = []
    for t, frame in enumerate(frames.permute(0, 2, 3, 1).numpy()):
        panels = [frame] + [overlay(frame, m[t].numpy(), alpha) for m in maps]
        row = np.concatenate(panels, axis=1)
        rows.append(row.repeat(scale, axis=0).repeat(scale, axis=1))
    return rows


def contact_sheet(rows, titles):
    """Rows stacked under a header with the column titles."""
    width = rows[0].shape[1]
    sheet = Image.new('RGB', (width, HEADER + sum(r.shape[0] for r in rows)), 'white')
    draw = ImageDraw.Draw(sheet)
    column = width // len(titles)
    for i, title in enumerate(titles):
        draw.text((i * column + 3, 1), title, fill='black')
    top = HEADER
    for row in rows:
        sheet.paste(Image.fromarray(row), (0, top))
        top += row.shape[0]
    return sheet


def write_visualization(model, clip, display, out_prefix, alpha=0.5, frame_ms=250):
    """OUT_PREFIX.gif and OUT_PREFIX.png of `model` on one view: `clip` (T, C, S, S) is the model's
    input, `display` (T, C, S, S) uint8 the same frames unnormalised. Returns {'gif', 'png', 'probs'}."""
    logits, maps = modulation_maps(model, clip)
    scale = max(1, math.ceil(MIN_PANEL / display.shape[-1]))
    rows = panel_rows(display, maps, scale, alpha)

    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    gif, png = f'{out_prefix}.gif', f'{out_prefix}.png'
    images = [Image.fromarray(row) for row in rows]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    titles = ['input'] + [f'stage {i + 1}' for i in range(len(maps))]
    contact_sheet(rows, titles).save(png)
    return {'gif': gif, 'png': png, 'probs': logits.softmax(-1)}
