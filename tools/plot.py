"""Plot train loss, learning rate and validation top-1/top-5 per epoch of one or more runs.

    python -m tools.plot RUN_DIR_OR_LOG [RUN_DIR_OR_LOG ...] --out plot.png [--labels A B ...]

Each run is a folder holding the log.jsonl that main.py / main_KD.py write, or the file itself;
the library is utils/plot.py.
"""

from utils import cli
from utils.errors import cli_main
from utils.plot import plot_runs


def main(argv=None):
    parser = cli.command_parser('python -m tools.plot', __doc__)
    parser.add_argument('runs', nargs='+', metavar='RUN_DIR_OR_LOG',
                        help='a run folder holding log.jsonl, or the log file itself')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--labels', nargs='+', help='legend names, one per run')
    args = cli.parse(parser, argv)
    plot_runs(args.runs, args.out, args.labels)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    cli_main(main)
