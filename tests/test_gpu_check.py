"""scripts/gpu_check.sh's dry run (GPU_CHECK_DEVICE=cpu): the GPU check's stages and commands on the
CPU at tiny sizes, so the script a user runs first on a CUDA machine cannot rot unseen."""
import os
import subprocess
import sys

import pytest

from tests.helpers.runs import ROOT

pytestmark = pytest.mark.slow


def test_gpu_check_dry_run_passes_every_stage(tmp_path):
    env = dict(os.environ, GPU_CHECK_DEVICE='cpu', PY=sys.executable, WORK=str(tmp_path), OMP_NUM_THREADS='1',
               PYTHONWARNINGS='ignore')
    proc = subprocess.run(['bash', 'scripts/gpu_check.sh'], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and 'all stages passed' in out, out[-6000:]
    for stage in ('CUDA tests', 'generate data', 'float16 + GradScaler and bfloat16 training figures, input path',
                  'main.py (float16 + GradScaler) + tools.predict on cpu (VFL-Net)'):
        assert f'--- {stage}: ok' in out, stage
    # The recipe's precision ran, and both precisions were timed.
    assert 'AMP O1: autocast dtype torch.float16, GradScaler True' in out
    assert 'float16 + GradScaler batch    2:' in out and 'bfloat16 batch    2:' in out
    assert 'Test: 6 videos x 3 views' in out and out.count('(1 clips x 3 crops)') == 6
