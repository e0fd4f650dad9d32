"""Ordinary mistakes on the command line (issue 11, items 18-19): one clear line,
exit status 2, no traceback, nothing computed; outputs go where the README says."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gradkit as gk
from gradkit import cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _cli(capsys, *argv):
    try:
        rc = cli.main(list(argv))
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("argv, expect", [
    (("demo", "--steps", "-5"), "--steps: must be a positive integer"),
    (("demo", "--steps", "0"), "--steps: must be a positive integer"),
    (("demo", "--steps", "ten"), "--steps: expected an integer"),
    (("demo", "--device", "tpu"), "unknown device 'tpu'"),
    (("graph", "--out", "graph.jpg"), "must end in one of .svg, .png, .pdf, .dot"),
    (("graph", "--out", "/nonexistent-folder/graph.svg"), "does not exist"),
])
def test_cli_refuses_bad_arguments(capsys, argv, expect):
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and expect in err, err
    assert "Traceback" not in err and "loss" not in out


def test_cli_demo_on_cuda_without_a_gpu(capsys):
    if gk.cuda.is_available():
        pytest.skip("CUDA is usable here")
    rc, out, err = _cli(capsys, "demo", "--device", "cuda")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "CUDA is not usable" in err


def test_cli_graph_unwritable_target(capsys, tmp_path):
    target = tmp_path / "graph.svg"
    target.mkdir()                     # a folder where the file should go
    rc, out, err = _cli(capsys, "graph", "--out", str(target))
    assert rc == 2 and "is a folder" in err
    blocker = tmp_path / "graph.dot"   # without Graphviz the .dot beside it is written
    blocker.mkdir()
    rc, out, err = _cli(capsys, "graph", "--out", str(tmp_path / "graph.png"))
    assert rc in (0, 1) and "Traceback" not in err
    if rc == 1:
        assert "could not write" in err


def _example(name, *args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("name, args, expect", [
    ("train_mlp.py", ("--steps", "0"), "--steps: must be a positive integer"),
    ("train_mlp.py", ("--batch-size", "0"), "--batch-size: must be a positive integer"),
    ("char_transformer.py", ("--heads", "3"), "--heads 3 must divide --dim 64"),
    ("char_transformer.py", ("--steps", "-1"), "--steps: must be a positive integer"),
    ("computation_graph.py", ("--graph", "g.jpg"), "must end in one of"),
])
def test_examples_refuse_bad_arguments(tmp_path, name, args, expect):
    rc, out, err = _example(name, *args, cwd=tmp_path)
    assert rc == 2 and expect in err, err
    assert "Traceback" not in err and not os.listdir(tmp_path)


@pytest.mark.parametrize("name", ["train_mlp.py", "char_transformer.py", "computation_graph.py"])
def test_examples_on_cuda_without_a_gpu(tmp_path, name):
    if gk.cuda.is_available():
        pytest.skip("CUDA is usable here")
    rc, out, err = _example(name, "--device", "cuda", cwd=tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "CUDA is not usable" in err, err


def test_train_mlp_writes_to_its_out_dir_and_says_so(tmp_path):
    out_dir = tmp_path / "results"
    rc, out, err = _example("train_mlp.py", "--steps", "2", "--eval-every", "1", "--no-plot",
                            "--out-dir", str(out_dir), cwd=tmp_path)
    assert rc == 0, err
    assert os.listdir(tmp_path) == ["results"]           # nothing in the working folder
    weights = out_dir / "mlp_digits.npz"
    assert weights.exists() and str(weights) in out and f"outputs go to {out_dir}" in out
