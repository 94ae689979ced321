"""utils/cli.py, the one command convention: trailing KEY VALUE overrides, the weights flag and its
alias, prog and help, argparse mistakes as one `error:` line."""
import pytest

from utils import cli


@pytest.mark.parametrize('argv, rest, pairs', [
    (['--cfg', 'a.yaml', 'v.avi', 'TEST.NUM_CLIP', '4', 'SEED', '1'], ['--cfg', 'a.yaml', 'v.avi'],
     ['TEST.NUM_CLIP', '4', 'SEED', '1']),
    (['--cfg', 'a.yaml', '--opts', 'DATA.ROOT', 'd', 'SEED', '1'], None, []),  # --opts' own pairs
    (['--cfg', 'a.yaml', 'v1.avi', 'v2.avi'], None, []),                      # file names are not keys
    (['--checkpoint', 'CKPT', 'AMP_OPT_LEVEL', 'O1'], ['--checkpoint', 'CKPT'], ['AMP_OPT_LEVEL', 'O1']),
    (['x', 'TEST.NUM_CLIP', '--json'], None, []),                             # a flag is no value
])
def test_trailing_overrides_are_split_from_the_end(argv, rest, pairs):
    assert cli.split_trailing_overrides(argv) == (argv if rest is None else rest, pairs)


def parser():
    p = cli.command_parser('python -m tools.example', 'First line\nof the description.\n\nUsage text, kept.')
    cli.add_config_args(p)
    cli.add_weights_arg(p)
    p.add_argument('videos', nargs='+')
    return p


def test_parse_joins_trailing_pairs_to_opts_and_accepts_the_weights_alias():
    args = cli.parse(parser(), ['--cfg', 'c.yaml', '--opts', 'SEED', '2', '--resume', 'w.pth', 'v.mp4',
                                'TEST.NUM_CLIP', '4'], logging=False)
    assert args.checkpoint == 'w.pth' and args.videos == ['v.mp4']
    assert args.opts == ['SEED', '2', 'TEST.NUM_CLIP', '4']


def test_help_names_the_command_as_typed_and_keeps_the_docstring(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(['--help'])
    out = capsys.readouterr().out
    assert out.startswith('usage: python -m tools.example ')
    assert 'First line of the description.' in out and 'Usage text, kept.' in out
    assert '--checkpoint CKPT, --resume CKPT' in out


def test_an_argparse_mistake_is_one_error_line_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(['--cfg', 'c.yaml', 'v.mp4'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ('error: python -m tools.example: the following arguments are required: '
                                       '--checkpoint/--resume (see python -m tools.example --help)\n')


def test_main_takes_checkpoint_as_the_alias_of_resume():
    from config import parse_option

    _, config = parse_option('Doc.', ['--cfg', 'configs/demo/student.yaml', '--eval', '--checkpoint',
                                         '/runs/x/ckpt.pth', 'TEST.NUM_CLIP', '2'])
    assert config.MODEL.RESUME == '/runs/x/ckpt.pth' and config.TEST.NUM_CLIP == 2
    assert config.OUTPUT == '/runs/x/eval_2x3'  # the demo config's 3 crops
