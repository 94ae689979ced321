"""The one convention every command follows (docs/development.md, "Commands").

- `command_parser(prog, doc)`: `usage:` names the command as it is typed (`python -m tools.predict`),
  the docstring's first paragraph is the description and the rest the epilog, kept as written.
- `add_config_args(parser)`: `--cfg FILE` and `--opts KEY VALUE ...`; `parse(...)` also takes KEY
  VALUE pairs at the end of the command line (`... TEST.NUM_CLIP 4`), as main.py does.
- `add_weights_arg(parser)`: trained weights are `--checkpoint CKPT` in every tool, `--resume` accepted
  as its alias (main.py and main_KD.py keep `--resume`, with `--checkpoint` as theirs).
- `parse(parser, argv)`: parse, then set up logging the same way for every command.
Mistakes in a command's input raise `UserError` and `cli_main` (utils/errors.py) prints them.
"""
import argparse
import re
import sys

from utils.logger import setup_logging

# A trailing override's key: an upper-case config key, dotted or not (TEST.NUM_CLIP, SEED).
OVERRIDE_KEY = re.compile(r'[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*')


class CommandParser(argparse.ArgumentParser):
    """argparse with the project's user-error form: a wrong argument is one `error: ...` line and
    exit status 2 (argparse's own status), naming the command and where its help is."""

    def error(self, message):
        sys.stdout.flush()
        print(f'error: {self.prog}: {message} (see {self.prog} --help)', file=sys.stderr)
        sys.exit(2)


def command_parser(prog, doc, **kwargs):
    """A parser named `prog` whose help is `doc`: first paragraph, then the rest verbatim."""
    head, _, rest = doc.strip().partition('\n\n')
    return CommandParser(prog=prog, description=' '.join(head.split()), epilog=rest or None,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def add_config_args(parser, required=True):
    parser.add_argument('--cfg', required=required, metavar='FILE', help='config file (YAML, BASE: inherits)')
    parser.add_argument('--opts', nargs='+', default=[], metavar='KEY VALUE',
                        help='config overrides; KEY VALUE pairs at the end of the command line work too')


def add_weights_arg(parser, required=True, help='trained checkpoint of MODEL (loaded strictly)', group=None):
    (group or parser).add_argument('--checkpoint', '--resume', dest='checkpoint', metavar='CKPT',
                                   required=required, help=help)


def split_trailing_overrides(argv):
    """(arguments, KEY VALUE pairs): the pairs at the end of `argv` whose keys look like config keys."""
    argv = list(argv)
    options = [i for i, a in enumerate(argv) if a.startswith('--')]
    if options and argv[options[-1]] == '--opts':
        return argv, []  # the pairs are --opts' own
    end = len(argv)
    while end >= 2 and OVERRIDE_KEY.fullmatch(argv[end - 2]) and not argv[end - 1].startswith('--'):
        end -= 2
    return argv[:end], argv[end:]


def parse(parser, argv=None, logging=True):
    """Parse `argv` (default sys.argv[1:]); trailing KEY VALUE pairs join `--opts` when the parser has
    it. Logging is set up (rank 0 to the console) unless `logging` is False."""
    argv = sys.argv[1:] if argv is None else list(argv)
    takes_opts = parser.get_default('opts') is not None
    overrides = []
    if takes_opts:
        argv, overrides = split_trailing_overrides(argv)
    args = parser.parse_args(argv)
    if takes_opts:
        args.opts = list(args.opts or []) + overrides
    if logging:
        setup_logging()
    return args
