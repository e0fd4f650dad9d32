"""The documentation works as written (issue 11, items 16, 17, 20): every
```python block of README.md and docs/*.md runs as pasted, every documented
pytest command shows pytest's closing summary, and a test run ends with a line
saying why tests were skipped.

A block that needs something optional starts with a visible marker comment,
``# needs: cuda`` or ``# needs: <module>`` (torch, mpi4py ...), and is skipped
(with that reason) where it is missing."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import gradkit as gk

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _blocks(lang):
    out = []
    for doc in DOCS:
        if not doc.exists():
            continue
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) == lang:
                line = text.count("\n", 0, m.start()) + 1
                out.append(pytest.param(m.group(2), id=f"{doc.relative_to(REPO)}:{line}"))
    return out


def _missing(need):
    if need == "cuda":
        return None if gk.cuda.is_available() else f"needs CUDA ({gk.cuda.why_unavailable()})"
    try:
        __import__(need)
    except ImportError:
        return f"needs {need}, which is not installed"
    return None


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run_as_pasted(code, tmp_path, monkeypatch):
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    m = re.match(r"#\s*needs:\s*(\w+)", first)
    if m and _missing(m.group(1)):
        pytest.skip(f"marked '# needs: {m.group(1)}': {_missing(m.group(1))}")
    monkeypatch.chdir(tmp_path)              # a snippet may write files (gk.save)
    exec(compile(code, "<README block>", "exec"), {"__name__": "__readme__"})


def test_the_readme_has_python_blocks():
    assert len(_blocks("python")) >= 2


# ------------------------------------------------ documented pytest commands (item 17)
SH_DOCS = [REPO / "README.md", REPO / "docker" / "README.md", REPO / "benchmarks" / "README.md"]


def _pytest_commands():
    cmds = []
    for doc in SH_DOCS:
        for m in FENCE.finditer(doc.read_text(encoding="utf-8")):
            if m.group(1) not in ("sh", "bash", ""):
                continue
            for line in m.group(2).replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if "pytest" in words:
                        cmds.append(pytest.param(words[words.index("pytest") + 1:],
                                                 id=f"{doc.relative_to(REPO)}: {part.strip()}"))
    return cmds


@pytest.mark.parametrize("flags", _pytest_commands())
def test_documented_pytest_commands_show_the_summary(flags):
    # the documented flags, on one small test file instead of the whole suite
    flags = [f for f in flags if not f.endswith("/tests") and f != "tests"]
    target = "tests/test_float16_overflow.py::test_max_nan_gradient_goes_to_the_nan_only"
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *flags, target],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert re.search(r"\d+ (passed|skipped|deselected)", out), (flags, out)


def test_run_ends_with_why_tests_were_skipped():
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    target = "tests/test_float16_overflow.py"
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", target, "-k",
                        "silu or max_nan"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    lines = r.stdout.splitlines()
    skips = [ln for ln in lines if re.match(r"\d+ skipped: ", ln)]
    assert len(skips) == 1, r.stdout
    assert "array_api_strict has no float16" in skips[0]
    if not gk.cuda.is_available():
        assert re.search(r"\d+ CUDA cases: no GPU", skips[0]), skips[0]
    assert "warning" not in r.stdout.lower(), r.stdout
