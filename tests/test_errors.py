"""User mistakes end with one `error: <message>` line naming the file, key or value, exit status 2 and
no traceback (every command's: tests/test_commands.py); --debug / DVFL_DEBUG=1 show the traceback;
bugs keep theirs."""
import pytest
import torch

from config import load_config_file
from models import build_model
from tests.helpers.runs import run, run_inline, write_config
from tests.helpers.videos import make_dataset
from utils.errors import UserError, cli_main


def assert_user_error(code, output, *needles):
    lines = [line for line in output.splitlines() if line.startswith('error:')]
    assert code == 2 and len(lines) == 1 and 'Traceback' not in output, output[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def bad_csv(tmp_path, dataset, line):
    """The training list of `dataset` with `line` appended."""
    path = tmp_path / 'bad.csv'
    path.write_text(open(dataset[0]).read() + line + '\n')
    return str(path)


def checkpoint(tmp_path, cfg, num_classes):
    path = tmp_path / f'model_{num_classes}.pth'
    torch.save({'model': build_model(load_config_file(cfg, ['MODEL.NUM_CLASSES', str(num_classes)])).state_dict()}, path)
    return str(path)


# name -> (arguments after main.py given (config file, tmp_path, dataset), strings the error line names;
# '{tmp}' stands for tmp_path)
MISTAKES = {
    'config key': (lambda cfg, tmp, ds: ['--cfg', cfg, 'TRAIN.EPOCH', '3'],
                   ["'TRAIN.EPOCH'", 'Did you mean: TRAIN.EPOCHS,']),
    'config value': (lambda cfg, tmp, ds: ['--cfg', cfg, 'TEST.NUM_CROP', '2'], ['TEST.NUM_CROP', 'got 2']),
    'config value in a file': (lambda cfg, tmp, ds: ['--cfg', bad_yaml(tmp, 'DATA:\n  BATCH_SIZE: two\n')],
                               ['bad.yaml', 'DATA.BATCH_SIZE', "'two'"]),
    'YAML syntax': (lambda cfg, tmp, ds: ['--cfg', bad_yaml(tmp, 'DATA: [BATCH_SIZE: 2\n')],
                    ['bad.yaml', 'not valid YAML']),
    'missing config file': (lambda cfg, tmp, ds: ['--cfg', str(tmp / 'nowhere.yaml')], ['nowhere.yaml']),
    'missing video': (lambda cfg, tmp, ds: ['--cfg', cfg, 'DATA.ROOT', str(tmp / 'moved')],
                      ['{tmp}/moved/', 'file not found']),
    'annotation line': (lambda cfg, tmp, ds: ['--cfg', cfg, 'DATA.TRAIN_FILE', bad_csv(tmp, ds, 'train/x.avi')],
                        ['bad.csv, line 13']),
    'label': (lambda cfg, tmp, ds: ['--cfg', cfg, 'DATA.TRAIN_FILE', bad_csv(tmp, ds, 'train/x.avi,7')],
              ['bad.csv, line 13', '7']),
    'class list': (lambda cfg, tmp, ds: ['--cfg', cfg, 'MODEL.NUM_CLASSES', '4'],
                   ['labels.csv', 'lists 3 classes, but MODEL.NUM_CLASSES is 4']),
    'checkpoint that does not fit': (lambda cfg, tmp, ds: ['--eval', '--cfg', cfg, '--resume', checkpoint(tmp, cfg, 5)],
                                     ['model_5.pth', 'does not fit']),
    'unreadable checkpoint': (lambda cfg, tmp, ds: ['--eval', '--cfg', cfg, '--resume', text_file(tmp, 'ckpt.pth')],
                              ['ckpt.pth: ']),
    'eval without checkpoint': (lambda cfg, tmp, ds: ['--eval', '--cfg', cfg], ['--resume']),
    'missing pretrained file': (lambda cfg, tmp, ds: ['--cfg', cfg, '--pretrained', str(tmp / 'focalnet.pth')],
                                ['focalnet.pth']),
}


def bad_yaml(tmp_path, text):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    return str(path)


def text_file(tmp_path, name):
    path = tmp_path / name
    path.write_text('not a checkpoint')
    return str(path)


@pytest.mark.parametrize('mistake', list(MISTAKES))
def test_user_mistakes_through_main(mistake, tiny_config, tiny_dataset, tmp_path, monkeypatch, capsys):
    """main.py run in this process (the subprocess path: the tests below)."""
    make_args, needles = MISTAKES[mistake]
    args = make_args(tiny_config(), tmp_path, tiny_dataset)
    code = run_inline('main.py', [*args, '--output', str(tmp_path / 'out')], monkeypatch)
    out = capsys.readouterr()
    assert_user_error(code, out.out + out.err, *(n.format(tmp=tmp_path) for n in needles))


@pytest.mark.slow
def test_a_user_mistake_in_a_subprocess(tiny_config, tmp_path):
    code, output = run(['main.py', '--cfg', tiny_config(), 'DATA.ROOT', str(tmp_path / 'moved'), '--output',
                        str(tmp_path / 'out')], check=False)
    assert_user_error(code, output, f'{tmp_path}/moved/', 'file not found')


@pytest.mark.slow
def test_a_bad_video_found_in_a_loader_worker(tmp_path):
    """The error crosses the worker boundary (torch re-raises it with the worker's traceback in its
    text) and still ends as one line naming the file."""
    files = make_dataset(tmp_path / 'data', num_classes=2, videos_per_class=2, num_frames=6, size=(40, 32),
                         val_per_class=1)
    broken = tmp_path / 'data' / 'train' / 'Class01' / 'v_Class01_g02_c01.avi'
    broken.write_text('not a video')
    cfg = write_config(tmp_path / 'tiny.yaml', *files, num_classes=2, extra={'DATA': {'NUM_WORKERS': 2}})
    code, output = run(['main.py', '--cfg', cfg, '--output', str(tmp_path / 'out')], check=False)
    assert_user_error(code, output, str(broken))


@pytest.mark.slow
def test_no_teacher_through_main_kd(tiny_config, tmp_path):
    code, output = run(['main_KD.py', '--cfg', tiny_config(), '--output', str(tmp_path)], check=False)
    assert_user_error(code, output, 'TEACHER_MODEL.PRETRAINED_PATH')


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    missing = str(tmp_path / 'nowhere.yaml')
    code, output = run(['main.py', '--cfg', missing, '--debug'], check=False)
    assert code == 1 and 'Traceback' in output and f'ConfigError: config file not found: {missing}' in output
    monkeypatch.setenv('DVFL_DEBUG', '1')
    code, output = run(['get_flops.py', '--cfg', missing], check=False)
    assert code == 1 and 'Traceback' in output


def test_cli_main_turns_only_user_errors_into_one_line(capsys, monkeypatch):
    monkeypatch.delenv('DVFL_DEBUG', raising=False)

    def mistake():
        raise UserError('data/x.csv, line 3: label 9 is out of range')

    with pytest.raises(SystemExit) as exc:
        cli_main(mistake, argv=[])
    assert exc.value.code == 2
    assert capsys.readouterr().err == 'error: data/x.csv, line 3: label 9 is out of range\n'

    def bug():
        raise KeyError('oops')

    with pytest.raises(KeyError):  # any other exception keeps its traceback
        cli_main(bug, argv=[])
    with pytest.raises(UserError):
        cli_main(mistake, argv=['--debug'])
    with pytest.raises(SystemExit) as exc:
        cli_main(lambda: 1, argv=[])
    assert exc.value.code == 1


def test_a_user_error_raised_in_a_loader_worker_keeps_only_its_message(capsys):
    """torch re-raises a worker's exception with the worker's traceback in the message."""
    class WorkerError(UserError):
        pass

    text = ('Caught WorkerError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n'
            '  File "x.py", line 1, in f\n'
            f'{WorkerError.__module__}.{WorkerError.__qualname__}: /data/v.avi: cannot open\n')

    def raise_it():
        raise WorkerError(text)

    with pytest.raises(SystemExit):
        cli_main(raise_it, argv=[])
    assert capsys.readouterr().err == 'error: /data/v.avi: cannot open\n'
