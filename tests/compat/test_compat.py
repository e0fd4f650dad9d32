"""The compatibility corpus: PyTorch programs that run on gradkit by their import lines.

Each program in ``programs/`` is written against torch's API and ported by
``port.py`` (import lines only). The test runs the port on gradkit in a fresh process;
it must finish and print its ``RESULT name value`` lines (each program also asserts
its own invariants: losses fall, shapes, semantics). When torch is installed, the
original runs on torch too and every RESULT must agree: data and initial weights come
from NumPy's generator, so both frameworks compute the same thing.

Real programs written by others are not committed here (their code stays in their
repositories); ``GRADKIT_COMPAT_CORPUS`` points the last test at a checkout of
PyTorch's examples to port and run a few of them the same way.
"""
import glob
import importlib.util
import os

import pytest

from port import results, run_program

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = sorted(glob.glob(os.path.join(HERE, "programs", "*.py")))
HAVE_TORCH = importlib.util.find_spec("torch") is not None

# float32 training over many steps: the frameworks' summation orders differ slightly
RTOL = {"default": 2e-3, "polynomial_optim": 5e-3, "tiny_gpt": 1e-2, "transformer_encoder": 1e-2,
        "super_resolution": 1e-2, "vae_mlp": 5e-3, "gru_tagger": 5e-3, "cnn_nll": 1e-2}


def _run(path, framework):
    rc, out, err = run_program(path, framework=framework)
    assert rc == 0, f"{os.path.basename(path)} failed on {framework}:\n{out[-2000:]}\n{err[-4000:]}"
    res = results(out)
    assert res, f"{os.path.basename(path)} printed no RESULT line on {framework}"
    return res


def test_corpus_is_not_empty():
    assert len(PROGRAMS) >= 12


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: os.path.basename(p)[:-3])
def test_program_runs_on_gradkit(path):
    ours = _run(path, "gradkit")
    if not HAVE_TORCH:
        return
    theirs = _run(path, "torch")
    assert ours.keys() == theirs.keys()
    rtol = RTOL.get(os.path.basename(path)[:-3], RTOL["default"])
    bad = {k: (ours[k], theirs[k]) for k in ours
           if abs(ours[k] - theirs[k]) > rtol * max(abs(theirs[k]), 1e-2)}
    assert not bad, f"gradkit vs torch differ (rtol {rtol}): {bad}"


# Real programs from PyTorch's examples repository (BSD-3-Clause), run from a checkout
# named by GRADKIT_COMPAT_CORPUS: (path, arguments, files to prepare first).
EXTERNAL = [
    ("regression/main.py", (), ()),
    ("time_sequence_prediction/train.py", ("--steps", "1"), ("time_sequence_prediction/generate_sine_wave.py",)),
]


@pytest.mark.skipif(not os.environ.get("GRADKIT_COMPAT_CORPUS"),
                    reason="GRADKIT_COMPAT_CORPUS (a checkout of PyTorch's examples) not set")
@pytest.mark.parametrize("rel,args,prep", EXTERNAL, ids=[e[0] for e in EXTERNAL])
def test_external_program(rel, args, prep, tmp_path):
    root = os.environ["GRADKIT_COMPAT_CORPUS"]
    for p in prep:
        rc, out, err = run_program(os.path.join(root, p), cwd=str(tmp_path))
        assert rc == 0, err[-3000:]
    rc, out, err = run_program(os.path.join(root, rel), args, cwd=str(tmp_path))
    assert rc == 0, err[-3000:]
