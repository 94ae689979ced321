"""Focal modulation maps of a model on one video: OUT.gif (animated) and OUT.png (contact sheet).

    python visualize.py --cfg CONFIG --checkpoint CKPT (--video FILE | --csv FILE --row N)
                        --out OUT_PREFIX [--opts KEY VALUE ...]

What is shown: for the last block of each of the four stages, the magnitude of the SPATIAL
modulator, i.e. the channel mean of |h(ctx_all)| (the 1x1 conv `h` applied to the gated focal
context, before it multiplies the query and the temporal modulator). Each stage's map is scaled to
[0, 1] over the whole clip (so changes over time stay visible), upsampled bilinearly to the input
size and overlaid on the frame as a heat map (jet: blue low, red high).

The video is read as the evaluation reads it (one temporal view, the centre crop: the frames the
model sees). Every GIF frame is [input | stage 1 | stage 2 | stage 3 | stage 4]; the contact sheet
has one such row per frame under a header naming the columns. The modulators are captured with the
model's opt-in `capture_modulators`, whose hooks are gone afterwards.
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image, ImageDraw

from config import load_config_file
from datasets import load_test_clip, read_annotations, read_label_list
from models import build_model, capture_modulators
from utils.checkpoint import load_model_weights
from utils.errors import UserError, cli_main
from utils.logger import setup_logging

MIN_PANEL = 112  # display panels are upscaled by an integer factor to at least this many pixels
HEADER = 14      # height of the contact sheet's column titles


def load_model(config, checkpoint):
    """The config's model with the checkpoint's weights (strict), in eval mode on the CPU."""
    model = build_model(config)
    load_model_weights(model, checkpoint)
    return model.eval()


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


def video_from_csv(config, csv_path, row):
    """Path of row `row` (0-based) of an annotation file, resolved against DATA.ROOT."""
    samples = read_annotations(csv_path, config.DATA.ROOT, config.MODEL.NUM_CLASSES)
    if not 0 <= row < len(samples):
        raise UserError(f'{csv_path}: --row {row} is out of range (the file has {len(samples)} rows)')
    return samples[row][0]


def visualize(config, checkpoint, video, out_prefix, alpha=0.5, frame_ms=250, model=None):
    """Write OUT_PREFIX.gif and OUT_PREFIX.png; returns their paths and the clip's class
    probabilities. `model`: an already loaded model (then `checkpoint` is not read)."""
    model = load_model(config, checkpoint) if model is None else model
    clip, display = load_test_clip(config, video, num_clip=1, num_crop=1)
    logits, maps = modulation_maps(model, clip[0])
    scale = max(1, math.ceil(MIN_PANEL / display.shape[-1]))
    rows = panel_rows(display[0], maps, scale, alpha)

    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    gif, png = f'{out_prefix}.gif', f'{out_prefix}.png'
    images = [Image.fromarray(row) for row in rows]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    titles = ['input'] + [f'stage {i + 1}' for i in range(len(maps))]
    contact_sheet(rows, titles).save(png)
    return {'gif': gif, 'png': png, 'probs': logits.softmax(-1)}


def _class_names(config):
    """Names from DATA.LABEL_LIST, or None (class ids are printed) when it is not set."""
    path = config.DATA.LABEL_LIST
    return read_label_list(path, config.MODEL.NUM_CLASSES) if path else None


def main(argv=None):
    parts = __doc__.split('\n\n')
    parser = argparse.ArgumentParser(description=parts[0], epilog=parts[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cfg', required=True, help='model/data config (YAML)')
    parser.add_argument('--checkpoint', required=True, help="checkpoint: {'model': state_dict} or a state dict")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--video', help='a video file')
    source.add_argument('--csv', help='an annotation file (relative paths under DATA.ROOT)')
    parser.add_argument('--row', type=int, help='with --csv: the row to show (0-based)')
    parser.add_argument('--out', required=True, help='output prefix: writes OUT.gif and OUT.png')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat map opacity (0-1)')
    parser.add_argument('--frame-ms', type=int, default=250, help='GIF frame duration')
    parser.add_argument('--opts', nargs='+', default=[], help='config overrides KEY VALUE ...')
    args = parser.parse_args(argv)
    if args.csv is not None and args.row is None:
        parser.error('--csv needs --row')
    if not 0 <= args.alpha <= 1:
        parser.error(f'--alpha must be in [0, 1], got {args.alpha}')

    setup_logging()
    config = load_config_file(args.cfg, args.opts)
    video = args.video if args.video is not None else video_from_csv(config, args.csv, args.row)
    result = visualize(config, args.checkpoint, video, args.out, args.alpha, args.frame_ms)
    names = _class_names(config)
    probs, classes = result['probs'].topk(min(5, result['probs'].numel()))
    print(f'{video}: ' + ', '.join(f'{names[c] if names else c} {p:.1%}'
                                   for p, c in zip(probs.tolist(), classes.tolist())))
    print(f"wrote {result['gif']} and {result['png']}")


if __name__ == '__main__':
    cli_main(main)
