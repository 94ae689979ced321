"""Everything a run says reaches its log: warnings of the datasets.* loggers, from the main process and
from DataLoader workers, go to log_rank0.txt and to rank 0's console."""
import logging
import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tests.helpers.runs import run, run_dir, write_config
from tests.helpers.videos import make_dataset
from utils.logger import setup_logging, worker_logging


@pytest.mark.slow
@pytest.mark.parametrize('workers', [0, 2])
def test_a_skipped_video_is_named_in_the_run_log(tmp_path, workers):
    files = make_dataset(tmp_path / 'data', num_classes=2, videos_per_class=3, num_frames=6, size=(40, 32),
                         val_per_class=1)
    broken = str(tmp_path / 'data' / 'train' / 'Class01' / 'v_Class01_g02_c01.avi')
    with open(broken, 'w') as f:
        f.write('not a video')
    cfg = write_config(tmp_path / 'tiny.yaml', *files, num_classes=2, extra={
        'DATA': {'SKIP_BAD_VIDEOS': True, 'NUM_WORKERS': workers}, 'TRAIN': {'EPOCHS': 1},
        'TEST': {'EVAL_FREQ': 0}})
    _, console = run(['main.py', '--cfg', cfg, '--output', str(tmp_path / 'out')])
    log = open(os.path.join(run_dir(tmp_path / 'out'), 'log_rank0.txt')).read()
    for text in (log, console):
        assert 'skipping a bad video (DATA.SKIP_BAD_VIDEOS)' in text and broken in text, text[-3000:]


class Warns(Dataset):
    """Each item logs a warning the way datasets/ does (a module logger under `datasets.`)."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        logging.getLogger('datasets.fake').warning('item %d warned in pid %d', index, os.getpid())
        return torch.tensor(index)


def remove_dvfl_handlers():
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, 'dvfl', False)]:
        root.removeHandler(handler)
        handler.close()


@pytest.mark.slow
def test_spawned_workers_log_into_the_rank_file(tmp_path):
    """With the spawn start method a worker inherits no handlers; worker_logging() gives it the rank's."""
    try:
        setup_logging(str(tmp_path), rank=0)
        loader = DataLoader(Warns(), batch_size=1, num_workers=2, multiprocessing_context='spawn',
                            worker_init_fn=worker_logging())
        assert len(list(loader)) == 4
    finally:
        remove_dvfl_handlers()
    text = open(tmp_path / 'log_rank0.txt').read()
    assert all(f'item {i} warned in pid' in text for i in range(4)), text
    assert f'pid {os.getpid()}' not in text  # the items were read in the workers


def test_project_loggers_reach_the_file_and_others_only_from_warning(tmp_path, capsys):
    try:
        logger = setup_logging(str(tmp_path), rank=1)
        logging.getLogger('datasets.decode').warning('a datasets warning')
        logging.getLogger('models.pretrained').info('a models message')
        logging.getLogger('somelibrary').info('library chatter')
        logger.info('from the entry point')
        init = worker_logging()
        init(0)  # what a DataLoader worker runs first: the same handlers, appending
        logging.getLogger('datasets.video_dataset').warning('from a worker')
    finally:
        remove_dvfl_handlers()
    text = open(tmp_path / 'log_rank1.txt').read()
    for message in ('a datasets warning', 'a models message', 'from the entry point', 'from a worker'):
        assert text.count(message) == 1, text
    assert 'library chatter' not in text
    assert capsys.readouterr().out == ''  # rank 1 writes no console lines
