"""The model benchmark runs as a user types it (at a toy size) and prints the figures it promises."""
import re

import pytest

from tests.helpers.runs import run


@pytest.mark.slow
def test_bench_model_prints_ratios_memory_and_every_stage_block():
    _, out = run(['-m', 'benchmarks.bench_model', '--size', '32', '--frames', '2', '--batch', '1',
                  '--reps', '1', '--threads', '1', '--blocks'], timeout=300)
    diff = float(re.search(r'logits max abs diff \(eval\): (\S+)', out).group(1))
    assert diff < 1e-5
    for label in ('forward', 'train step'):
        assert re.search(rf'{label}: reference +[\d.]+ ms +model +[\d.]+ ms +ratio [\d.]+ .*page faults \d+ / \d+', out), out
    assert re.search(r'activation memory per training clip: .* ratio [\d.]+', out), out
    stages = re.findall(r'stage (\d) block \((\d+)x\d+x(\d+)\): train step ratio [\d.]+ .* forward ratio [\d.]+', out)
    assert stages == [('1', '8', '96'), ('2', '4', '192'), ('3', '2', '384'), ('4', '1', '768')], out
