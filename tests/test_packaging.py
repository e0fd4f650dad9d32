"""Packaging invariants: every package folder is listed (setuptools drops an
unlisted subpackage silently), the tape imports neither numpy nor cupy, and the
README's test command is what CI runs."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None


def _pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        return tomllib.loads(text)
    import json  # crude fallback for 3.10: packages list only
    m = re.search(r"packages = \[(.*?)\]", text, re.S)
    return {"tool": {"setuptools": {"packages": json.loads("[" + m.group(1).rstrip().rstrip(",") + "]"),
                                    "package-dir": {"gradkit.backends": "backends"}}}}


def test_every_package_folder_is_listed():
    cfg = _pyproject()["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg.get("package-dir", {})
    found = set()
    for init in (ROOT / "gradkit").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        found.add(".".join(rel.parts))
    for init in (ROOT / "backends").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT / "backends")
        found.add(".".join(("gradkit.backends",) + rel.parts))
    missing = found - listed
    assert not missing, f"package folders missing from pyproject's packages list: {sorted(missing)}"
    assert mapping.get("gradkit.backends") == "backends"
    # folders with .py files but no __init__.py would be dropped too
    for d in list((ROOT / "gradkit").rglob("*")) + list((ROOT / "backends").rglob("*")):
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")):
            assert (d / "__init__.py").exists(), f"{d} has modules but no __init__.py"


def test_tape_layer_imports_neither_numpy_nor_cupy():
    bad = []
    for f in (ROOT / "gradkit").rglob("*.py"):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.match(r"^\s*(import|from)\s+(numpy|cupy|cupyx)\b", line):
                bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "gradkit/ must not import numpy/cupy (docs/ARCHITECTURE.md):\n" + "\n".join(bad)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "README must open with two set-up commands"
    ci = (ROOT / ".ci" / "run").read_text()
    for cmd in blocks[:2]:
        assert cmd.strip() in ci, f"CI does not run the README command: {cmd!r}"


def test_extras_declared():
    extras = _pyproject()["project"]["optional-dependencies"] if tomllib else None
    if extras is None:
        return
    assert any("cupy-cuda12x" in d for d in extras["cuda12"])
    assert any("cupy-cuda13x" in d for d in extras["cuda13"])
    assert {"pytest", "hypothesis", "array-api-strict"} <= {re.split(r"[<>=\[]", d)[0] for d in extras["test"]}
