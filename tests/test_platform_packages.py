"""Packages the platform must have: a missing one fails here instead of silently narrowing the suite."""
import platform

import pytest


@pytest.mark.skipif((platform.system(), platform.machine()) != ('Linux', 'x86_64'),
                    reason='decord has wheels for Linux x86_64 only; elsewhere PyAV decodes')
def test_decord_is_importable_on_linux_x86_64():
    from datasets import decode
    assert decode.decord is not None, 'decord cannot be imported: pip install -r requirements.txt'
