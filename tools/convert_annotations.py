"""Turn official annotation files into our `path,label` lists (DATA.md has the layout of each dataset).

    python -m tools.convert_annotations kinetics kinetics400/annotations/train.csv data/kinetics400/train.csv \
        --labels labels/kinetics_400_labels.csv --root data/kinetics400 --skip-missing
    python -m tools.convert_annotations ssv2 labels/train.json data/ssv2/train.csv \
        --labels labels/ssv2_174_labels.csv --labels-json labels/labels.json
    python -m tools.convert_annotations diving48 Diving48_V2_train.json data/diving48/train.csv \
        --labels labels/diving_48_labels.csv --vocab Diving48_vocab.json

The label ids are those of --labels (the published heads' order). With --root every listed video
must exist under it (Kinetics videos go missing from YouTube: --skip-missing leaves them out and
says how many). --path-format changes the file name a row maps to (defaults in the usage above:
datasets/official_annotations.py).
"""

from datasets.annotations import AnnotationError, read_label_list
from datasets.official_annotations import (DIVING48_PATH, FORMATS, KINETICS_PATH, SSV2_PATH,
                                           split_missing, write_annotations)
from utils import cli
from utils.errors import cli_main

DEFAULT_PATHS = {'kinetics': KINETICS_PATH, 'ssv2': SSV2_PATH, 'diving48': DIVING48_PATH}


def parse_args(argv=None):
    parser = cli.command_parser('python -m tools.convert_annotations', __doc__)
    parser.add_argument('format', choices=sorted(FORMATS), help='kind of the official file')
    parser.add_argument('src', help='official annotation file (Kinetics CSV, SSv2 or Diving48 JSON)')
    parser.add_argument('out', help='our list to write: one `relative/path,label` per line')
    parser.add_argument('--labels', required=True, help='class list `id,name` (labels/*.csv): the label ids')
    parser.add_argument('--labels-json', help='ssv2: the official labels JSON, checked against --labels')
    parser.add_argument('--vocab', help='diving48: Diving48_vocab.json, checked against --labels')
    parser.add_argument('--path-format', help='file of a row, e.g. ' + repr(KINETICS_PATH))
    parser.add_argument('--root', help='folder the paths are relative to (DATA.ROOT): check the videos exist')
    parser.add_argument('--skip-missing', action='store_true', help='with --root: leave missing videos out')
    args = cli.parse(parser, argv)
    if args.labels_json and args.format != 'ssv2' or args.vocab and args.format != 'diving48':
        parser.error('--labels-json is for ssv2, --vocab for diving48')
    if args.skip_missing and not args.root:
        parser.error('--skip-missing needs --root')
    return args


def main(argv=None):
    args = parse_args(argv)
    names = read_label_list(args.labels)
    extra = {'labels_json': args.labels_json} if args.format == 'ssv2' else \
        {'vocab_json': args.vocab} if args.format == 'diving48' else {}
    rows = FORMATS[args.format](args.src, names, args.labels,
                                path_format=args.path_format or DEFAULT_PATHS[args.format], **extra)
    note = ''
    if args.root:
        rows, missing = split_missing(rows, args.root)
        if missing and not args.skip_missing:
            raise AnnotationError(f'{args.src}: {len(missing)} listed videos are not under {args.root}, '
                                  f'e.g. {missing[:3]} (--skip-missing leaves them out)')
        if not rows:
            raise AnnotationError(f'{args.src}: none of the listed videos is under {args.root}')
        note = f'; {len(missing)} missing under {args.root}, left out' if missing else ''
    write_annotations(rows, args.out)
    print(f'wrote {args.out}: {len(rows)} videos of {len({label for _, label in rows})} of the '
          f'{len(names)} classes of {args.labels}{note}')


if __name__ == '__main__':
    cli_main(main)
