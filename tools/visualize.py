"""Focal modulation maps of a model on one video: OUT.gif (animated) and OUT.png (contact sheet).

    python -m tools.visualize --cfg CONFIG --checkpoint CKPT (--video FILE | --csv FILE --row N)
                              --out OUT_PREFIX [--opts KEY VALUE ...]

What is shown: for the last block of each of the four stages, the magnitude of the SPATIAL
modulator, i.e. the channel mean of |h(ctx_all)| (the 1x1 conv `h` applied to the gated focal
context, before it multiplies the query and the temporal modulator). Each stage's map is scaled to
[0, 1] over the whole clip (so changes over time stay visible), upsampled bilinearly to the input
size and overlaid on the frame as a heat map (jet: blue low, red high).

The video is read as the evaluation reads it (one temporal view, the centre crop: the frames the
model sees). Every GIF frame is [input | stage 1 | stage 2 | stage 3 | stage 4]; the contact sheet
has one such row per frame under a header naming the columns. The modulators are captured with the
model's opt-in `capture_modulators`, which leaves nothing attached to the model (models/visualize.py).
"""

from config import load_config_file
from datasets import load_test_clip, read_annotations, read_label_list
from models import build_model
from models.visualize import write_visualization
from utils import cli
from utils.checkpoint import load_model_weights
from utils.errors import UserError, cli_main


def load_model(config, checkpoint):
    """The config's model with the checkpoint's weights (strict), in eval mode on the CPU."""
    model = build_model(config)
    load_model_weights(model, checkpoint)
    return model.eval()


def video_from_csv(config, csv_path, row):
    """Path of row `row` (0-based) of an annotation file, resolved against DATA.ROOT."""
    samples = read_annotations(csv_path, config.DATA.ROOT, config.MODEL.NUM_CLASSES)
    if not 0 <= row < len(samples):
        raise UserError(f'{csv_path}: --row {row} is out of range (the file has {len(samples)} rows)')
    return samples[row][0]


def visualize(config, checkpoint, video, out_prefix, alpha=0.5, frame_ms=250, model=None):
    """Write OUT_PREFIX.gif and OUT_PREFIX.png of the evaluation's one-crop view of `video`; returns
    their paths and the clip's class probabilities. `model`: an already loaded model (then
    `checkpoint` is not read)."""
    model = load_model(config, checkpoint) if model is None else model
    clip, display = load_test_clip(config, video, num_clip=1, num_crop=1)
    return write_visualization(model, clip[0], display[0], out_prefix, alpha, frame_ms)


def _class_names(config):
    """Names from DATA.LABEL_LIST, or None (class ids are printed) when it is not set."""
    path = config.DATA.LABEL_LIST
    return read_label_list(path, config.MODEL.NUM_CLASSES) if path else None


def main(argv=None):
    parser = cli.command_parser('python -m tools.visualize', __doc__)
    cli.add_config_args(parser)
    cli.add_weights_arg(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--video', help='a video file')
    source.add_argument('--csv', help='an annotation file (relative paths under DATA.ROOT)')
    parser.add_argument('--row', type=int, help='with --csv: the row to show (0-based)')
    parser.add_argument('--out', required=True, help='output prefix: writes OUT.gif and OUT.png')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat map opacity (0-1)')
    parser.add_argument('--frame-ms', type=int, default=250, help='GIF frame duration')
    args = cli.parse(parser, argv)
    if args.csv is not None and args.row is None:
        parser.error('--csv needs --row')
    if not 0 <= args.alpha <= 1:
        parser.error(f'--alpha must be in [0, 1], got {args.alpha}')

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
