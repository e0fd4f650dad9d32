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


def _skip_reason(report):
    """The reason of one skipped test, shortened for the summary line."""
    lr = report.longrepr
    reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
    reason = reason.removeprefix("Skipped: ").strip()
    if reason.startswith("CUDA is not usable here"):
        why = reason.partition(":")[2].strip()
        return "CUDA cases: no GPU" + (f" ({why.split(';')[0].split(' (')[0].strip()})" if why else "")
    if reason.startswith("could not import"):   # importorskip
        return reason.split(":")[0]
    return reason


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fuzzer's tally (tests/test_fuzz.py), when it ran; and one line saying why
    tests were skipped, e.g. '1003 skipped: 997 CUDA cases: no GPU (cupy is not
    installed); 6 could not import 'torch''."""
    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.STATS["calls"]:
        for line in fuzz.summary():
            terminalreporter.write_line(line)
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts = {}
    for rep in skipped:
        r = _skip_reason(rep)
        counts[r] = counts.get(r, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    shown = top if len(top) <= 5 else top[:4]
    parts = [f"{n} {r}" for r, n in shown]
    if len(shown) < len(top):
        rest = sum(n for _, n in top[len(shown):])
        parts.append(f"{rest} for {len(top) - len(shown)} other reasons (pytest -rs lists them)")
    terminalreporter.write_line(f"{len(skipped)} skipped: " + "; ".join(parts))
