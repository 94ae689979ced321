"""User mistakes end a command with one line, `error: <message>`, and exit status 2; bugs keep
their traceback.

Every error a user can fix by changing an input (a config key or value, a YAML file, a missing or
unreadable file, an annotation line, a label, a class list, a checkpoint that does not fit, a missing
teacher) is raised as a subclass of `UserError`, with a message naming the file, key or value at
fault. `cli_main` runs an entry point's main function and turns those into the short form; any
other exception propagates with its traceback. `--debug` on the command line, or DVFL_DEBUG=1 in
the environment, shows the traceback of user errors too.
"""
import os
import sys

DEBUG_ENV = 'DVFL_DEBUG'
EXIT_USER_ERROR = 2


class UserError(Exception):
    """An input the user can fix; the message names the file, key or value at fault."""


class ConfigValueError(UserError, ValueError):
    """A config key's value that the code cannot use (a ValueError too, for library callers)."""


def debug_requested(argv=None):
    """True when `--debug` is among the arguments or DVFL_DEBUG is set to a non-empty, non-0 value."""
    argv = sys.argv[1:] if argv is None else argv
    return '--debug' in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')


def user_message(err):
    """The message of a user error; an error re-raised from a DataLoader worker carries the worker's
    traceback in its text, of which only the last line (the original message) is kept."""
    text = str(err)
    if '\nOriginal Traceback' in text:
        text = text.rstrip().splitlines()[-1]
        prefix = f'{type(err).__module__}.{type(err).__qualname__}: '
        text = text[len(prefix):] if text.startswith(prefix) else text
    return text


def cli_main(main, argv=None):
    """Run `main()` (an entry point) and exit with its return value; a `UserError` prints
    `error: <message>` on stderr and exits 2 unless debugging was asked for."""
    try:
        status = main()
    except UserError as err:
        if debug_requested(argv):
            raise
        sys.stdout.flush()
        print(f'error: {user_message(err)}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(status if isinstance(status, int) else 0)
