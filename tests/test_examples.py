"""Each example runs end to end with a few steps (the full runs take seconds to a
minute; their figures are stated in the README)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_example(name, *args, cwd, env=None):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=e,
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def check_plot(out, path):
    if _has("matplotlib"):
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
    else:
        assert "pip install matplotlib" in out and not path.exists()


def test_computation_graph(tmp_path):
    out = run_example("computation_graph.py", "--graph", str(tmp_path / "graph.svg"),
                      cwd=tmp_path)
    assert "x1" in out and "60" in out
    assert (tmp_path / "graph.svg").exists() or (tmp_path / "graph.dot").exists()


def test_train_mlp_quick(tmp_path):
    out = run_example("train_mlp.py", "--steps", "20", "--eval-every", "10",
                      "--out-dir", str(tmp_path), cwd=tmp_path)
    assert re.search(r"loss \d+\.\d+", out)
    assert "test accuracy" in out and "reloaded model's test accuracy matches" in out
    assert (tmp_path / "mlp_digits.npz").exists()
    check_plot(out, tmp_path / "mlp_loss.png")


def test_train_cnn_quick(tmp_path):
    out = run_example("train_cnn.py", "--steps", "12", "--eval-every", "6", "--batch-size", "16",
                      "--out-dir", str(tmp_path), cwd=tmp_path)
    assert re.search(r"loss \d+\.\d+", out)
    assert "test accuracy" in out and "reloaded model's test accuracy matches" in out
    assert (tmp_path / "cnn_digits.npz").exists()
    check_plot(out, tmp_path / "cnn_loss.png")


def test_train_cnn_bad_arguments(tmp_path):
    import gradkit as gk
    e = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, str(EXAMPLES / "train_cnn.py")]
    r = subprocess.run(cmd + ["--steps", "0"], cwd=tmp_path, env=e, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "argument --steps: must be a positive integer" in r.stderr
    r = subprocess.run(cmd + ["--lr", "0"], cwd=tmp_path, env=e, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "argument --lr: must be positive" in r.stderr
    if not gk.cuda.is_available():   # CUDA asked for but not usable: one line, exit 2
        r = subprocess.run(cmd + ["--device", "cuda"], cwd=tmp_path, env=e, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "CUDA is not usable" in lines[0]


def test_char_transformer_quick(tmp_path):
    out = run_example("char_transformer.py", "--steps", "6", "--context", "16", "--dim", "16",
                      "--layers", "1", "--sample", "20", "--out-dir", str(tmp_path),
                      cwd=tmp_path)
    assert re.search(r"loss \d+\.\d+", out)
    assert "validation loss" in out and "sample:" in out
    check_plot(out, tmp_path / "char_transformer_loss.png")


def test_plain_progress_bar_without_tqdm(monkeypatch, capsys):
    sys.path.insert(0, str(EXAMPLES))
    try:
        import _common
    finally:
        sys.path.remove(str(EXAMPLES))
    monkeypatch.setattr(_common, "_tqdm", None)
    p = _common.Progress(20, "train")
    for i in range(20):
        p.update(1.0 / (i + 1))
    p.close()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train")]
    assert 2 <= len(lines) <= 12                     # a pipe gets about ten lines, not twenty
    assert lines[-1].startswith("train 20/20") and "100%" in lines[-1] and "loss" in lines[-1]
    assert p.running < 1.0


@pytest.mark.parametrize("name", ["train_mlp.py", "char_transformer.py",
                                  "computation_graph.py", "train_cnn.py"])
def test_examples_take_device_flag(name):
    assert "--device" in (EXAMPLES / name).read_text()
