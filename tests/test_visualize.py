"""tools.visualize and models/visualize.py: GIF and contact sheet of the per-stage spatial modulator
maps, nothing left attached to the model."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence

from config import load_config_file
from datasets import load_test_clip, synthetic
from models import build_model
from models.visualize import HEADER, MIN_PANEL, modulation_maps
from tools import visualize
from utils.checkpoint import CheckpointError
from utils.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES, SIZE = 4, 32
PANEL = SIZE * -(-MIN_PANEL // SIZE)  # the integer upscale of models/visualize.py


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A generated dataset, a tiny config pointing at it, and a randomly initialised checkpoint."""
    tmp = tmp_path_factory.mktemp('vis')
    paths = synthetic.generate(str(tmp / 'data'), clips_per_class=1, val_per_class=1, size=40,
                               num_frames=8, seed=1, workers=1,
                               classes=['up', 'down', 'left', 'grow', 'shrink'])  # 5: top-5 names all
    cfg = tmp / 'tiny.yaml'
    cfg.write_text(f"""
DATA:
  ROOT: {paths['root']}
  LABEL_LIST: {paths['label_list']}
  VAL_FILE: {paths['val_file']}
  INPUT_SIZE: {SIZE}
  NUM_FRAMES: {FRAMES}
MODEL:
  TYPE: videofocalnet_custom
  NUM_CLASSES: 5
  FOCAL:
    EMBED_DIM: 8
    DEPTHS: [1, 1, 1, 1]
""")
    config = load_config_file(str(cfg))
    torch.manual_seed(0)
    model = build_model(config).eval()
    ckpt = tmp / 'tiny.pth'
    torch.save({'model': model.state_dict()}, ckpt)
    return dict(tmp=tmp, paths=paths, cfg=str(cfg), config=config, ckpt=str(ckpt), model=model)


def _captures(model):
    """What each modulation holds for capture_modulators (None outside its `with`)."""
    return [m.capture for m in model.modules() if hasattr(m, 'capture')]


def _gif_frames(path):
    with Image.open(path) as gif:
        return [np.asarray(frame.convert('RGB')) for frame in ImageSequence.Iterator(gif)]


def test_gif_and_contact_sheet_have_input_plus_four_stage_panels(setup, tmp_path):
    model = setup['model']
    video = os.path.join(setup['paths']['root'], 'val/down/down_00000.mp4')
    result = visualize.visualize(setup['config'], setup['ckpt'], video, str(tmp_path / 'out' / 'down'),
                                 model=model)
    assert len(_captures(model)) == 4 and _captures(model) == [None] * 4  # released after the maps

    frames = _gif_frames(result['gif'])
    assert result['gif'] == str(tmp_path / 'out' / 'down.gif')
    assert len(frames) == FRAMES
    assert all(f.shape == (PANEL, 5 * PANEL, 3) for f in frames)
    with Image.open(result['png']) as sheet:
        assert sheet.size == (5 * PANEL, HEADER + FRAMES * PANEL)

    # The first panel is the input frame the model saw (up to the GIF's 256-colour palette), the
    # others overlay a heat map on it.
    _, display = load_test_clip(setup['config'], video)
    expected = display[0].permute(0, 2, 3, 1).numpy().repeat(PANEL // SIZE, 1).repeat(PANEL // SIZE, 2)
    for t, frame in enumerate(frames):
        panels = np.split(frame.astype(int), 5, axis=1)
        assert np.abs(panels[0] - expected[t]).mean() < 6
        for stage in panels[1:]:
            assert np.abs(stage - panels[0]).mean() > 10
    assert torch.allclose(result['probs'].sum(), torch.tensor(1.0))


def test_maps_are_the_channel_mean_of_the_spatial_modulator(setup):
    model = setup['model']
    clip = torch.randn(FRAMES, 3, SIZE, SIZE)
    captured = []
    last = model.layers[2].blocks[-1].modulation.h
    handle = last.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        logits, maps = modulation_maps(model, clip)
    finally:
        handle.remove()
    assert len(maps) == 4 and all(m.shape == (FRAMES, SIZE, SIZE) for m in maps)
    assert all(0 <= m.min() and m.max() <= 1 and m.max() == 1 for m in maps)
    expected = F.interpolate(captured[0].abs().mean(1, keepdim=True), size=(SIZE, SIZE), mode='bilinear',
                             align_corners=False)[:, 0]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    torch.testing.assert_close(maps[2], expected)
    torch.testing.assert_close(logits, model(clip.unsqueeze(0))[0])
    assert _captures(model) == [None] * 4


@pytest.mark.slow
def test_command_line_from_a_csv_row(setup, tmp_path):
    out = tmp_path / 'vis' / 'row3'
    result = subprocess.run(
        [sys.executable, '-m', 'tools.visualize', '--cfg', setup['cfg'], '--checkpoint', setup['ckpt'],
         '--csv', setup['paths']['val_file'], '--row', '3', '--out', str(out),
         '--opts', 'DATA.DECODER', 'pyav'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'grow_00000.mp4' in result.stdout  # row 3 of val.csv: the grow clip
    assert 'wrote' in result.stdout and 'shrink' in result.stdout  # top-5 of 5 names every class
    frames = _gif_frames(str(out) + '.gif')
    assert len(frames) == FRAMES and frames[0].shape == (PANEL, 5 * PANEL, 3)
    assert (tmp_path / 'vis' / 'row3.png').is_file()


def test_bare_state_dict_loads_and_a_mismatched_checkpoint_fails(setup, tmp_path):
    bare = tmp_path / 'bare.pth'
    torch.save(setup['model'].state_dict(), bare)
    model = visualize.load_model(setup['config'], str(bare))
    assert not model.training
    torch.testing.assert_close(model.head.weight, setup['model'].head.weight)

    other = load_config_file(setup['cfg'], ['MODEL.NUM_CLASSES', '7'])
    with pytest.raises(CheckpointError, match='bare.pth'):
        visualize.load_model(other, str(bare))


def test_bad_row_is_reported(setup):
    with pytest.raises(UserError, match='--row 10 is out of range'):
        visualize.video_from_csv(setup['config'], setup['paths']['val_file'], 10)
    with pytest.raises(SystemExit):
        visualize.main(['--cfg', setup['cfg'], '--checkpoint', setup['ckpt'], '--csv',
                        setup['paths']['val_file'], '--out', 'x'])
