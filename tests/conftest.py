"""The device fixture: cpu always, the fake accelerator always (array_api_strict
is a test dependency, so it is required, never skipped), cuda when usable."""
import sys

import numpy as np
import pytest

import gradkit as gk

DEVICES = ["cpu", "fake", "cuda"]


def _device_param(d):
    marks = [pytest.mark.cuda] if d == "cuda" else []
    return pytest.param(d, id=d, marks=marks)


@pytest.fixture(params=[_device_param(d) for d in DEVICES])
def device(request):
    d = request.param
    if d == "cuda" and not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: runs on a CUDA device (skipped without one)")


def pytest_terminal_summary(terminalreporter):
    """The fuzzer's tally (tests/test_fuzz.py), when it ran; and one line saying
    why the CUDA cases were skipped (shown even with -q)."""
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.STATS["calls"]:
        for line in fuzz.summary():
            terminalreporter.write_line(line)
    skipped = terminalreporter.stats.get("skipped", [])
    n = sum(1 for r in skipped if "cuda" in getattr(r, "keywords", ()))
    if n and not gk.cuda.is_available():
        terminalreporter.write_line(f"gradkit: {n} CUDA test cases skipped: "
                                    f"{gk.cuda.why_unavailable()}")
