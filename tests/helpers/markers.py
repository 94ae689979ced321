"""The `cuda` marker, enforced: `pytest -m cuda` (scripts/gpu_check.sh) selects every test that needs
a GPU only if each one carries it. A marked test skips where no GPU is; a test that skips for lack
of CUDA without the marker fails, naming itself, so a missing marker shows on any CPU run."""
import pytest
import torch

MISSING = ('{nodeid} skips for lack of CUDA ({reason}) but has no `cuda` marker, so `pytest -m cuda` '
           '(scripts/gpu_check.sh) would never run it: mark it with pytest.mark.cuda')


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker('cuda'):
            item.add_marker(pytest.mark.skip(reason='needs a CUDA device (cuda marker)'))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or item.get_closest_marker('cuda') or hasattr(report, 'wasxfail'):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if 'cuda' in reason.lower() or 'gpu' in reason.lower():
        report.outcome = 'failed'
        report.longrepr = MISSING.format(nodeid=item.nodeid, reason=reason)
