"""The fused CUDA step kernels of the recurrent layers, checked without a GPU:
each ``CUDA_STEP_KERNELS`` body (the exact text CuPy compiles) is wrapped in a
host loop over ``i`` with ElementwiseKernel's conventions (an elementwise
parameter is element i, a raw one the whole flat array), compiled with g++ for
T = float and double, run through ctypes, and compared with the NumPy steps."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from gradkit.backends.numpy_backend import NumpyBackend
from gradkit.backends.seq_kernels import CUDA_STEP_KERNELS

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

_CTYPES = {"T": None, "int32": ctypes.c_int}


def _params(spec):
    out = []
    for p in spec.split(","):
        words = p.split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        out.append((raw, words[0], words[1]))
    return out


def _source(name, spec, ctype):
    ins, outs, body, _ = spec
    args = ["long n_elems"]
    prelude = []
    for raw, typ, pname in _params(ins) + _params(outs):
        if typ == "int32":
            args.append(f"int {pname}")
        elif raw:
            args.append(f"{ctype}* {pname}")
        else:
            args.append(f"{ctype}* {pname}_arr")
            prelude.append(f"T& {pname} = {pname}_arr[i];")
    return (f'extern "C" void {name}_{ctype}({", ".join(args)}) {{\n'
            f"  typedef {ctype} T;\n"
            f"  for (long i = 0; i < n_elems; ++i) {{\n    {' '.join(prelude)}\n"
            f"    {body}\n  }}\n}}\n")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda_bodies")
    src = "#include <cmath>\nusing std::exp; using std::tanh;\n" + "".join(
        _source(k, spec, ct) for k, spec in CUDA_STEP_KERNELS.items()
        for ct in ("float", "double"))
    (d / "k.cpp").write_text(src)
    so = d / "k.so"
    r = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(so), str(d / "k.cpp")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(so))


def _call(lib, kernel, dtype, n, *args):
    ct = "float" if dtype == np.float32 else "double"
    fn = getattr(lib, f"{kernel}_{ct}")
    cargs = [ctypes.c_long(n)]
    for a in args:
        if isinstance(a, int):
            cargs.append(ctypes.c_int(a))
        else:
            assert a.dtype == dtype and a.flags.c_contiguous
            cargs.append(a.ctypes.data_as(ctypes.c_void_p))
    fn(*cargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_step_bodies_match_numpy(lib, dtype):
    B = NumpyBackend()
    rng = np.random.default_rng(0)
    N, H = 3, 5
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    gates = (rng.standard_normal((N, 4 * H)) * 3).astype(dtype)
    gates[0, :3] = [-100.0, 100.0, 0.0]          # saturated gates stay finite
    c = rng.standard_normal((N, H)).astype(dtype)
    acts, hs, cs, tcs = (np.zeros((1, N, k * H), dtype) for k in (4, 1, 1, 1))
    B.lstm_step(gates.copy(), c, 0, acts, hs, cs, tcs)
    out = [np.zeros((N, 4 * H), dtype)] + [np.zeros((N, H), dtype) for _ in range(3)]
    _call(lib, "lstm", dtype, N * H, gates, c, H, *out)
    for got, want in zip(out, (acts[0], cs[0], tcs[0], hs[0])):
        np.testing.assert_allclose(got, want, **tol)
    dh, dc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    dG = np.zeros((1, N, 4 * H), dtype)
    want_dc = B.lstm_step_backward(dh, dc, 0, acts, c, tcs, dG)
    got_dG, got_dc = np.zeros((N, 4 * H), dtype), np.zeros((N, H), dtype)
    _call(lib, "lstm_bwd", dtype, N * H, dh, dc, acts[0], c, tcs[0], H, got_dG, got_dc)
    np.testing.assert_allclose(got_dG, dG[0], **tol)
    np.testing.assert_allclose(got_dc, want_dc, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_step_bodies_match_numpy(lib, dtype):
    B = NumpyBackend()
    rng = np.random.default_rng(1)
    N, H = 4, 3
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    x, gh = (rng.standard_normal((N, 3 * H)).astype(dtype) for _ in range(2))
    h = rng.standard_normal((N, H)).astype(dtype)
    acts, ghn, hs = np.zeros((1, N, 3 * H), dtype), np.zeros((1, N, H), dtype), np.zeros(
        (1, N, H), dtype)
    B.gru_step(x, gh, h, 0, acts, ghn, hs)
    out = [np.zeros((N, 3 * H), dtype), np.zeros((N, H), dtype), np.zeros((N, H), dtype)]
    _call(lib, "gru", dtype, N * H, x, gh, h, H, *out)
    for got, want in zip(out, (acts[0], ghn[0], hs[0])):
        np.testing.assert_allclose(got, want, **tol)
    dh = rng.standard_normal((N, H)).astype(dtype)
    dX, dGh = np.zeros((1, N, 3 * H), dtype), np.zeros((1, N, 3 * H), dtype)
    want = B.gru_step_backward(dh, 0, acts, ghn, h, dX, dGh)
    got = [np.zeros((N, 3 * H), dtype), np.zeros((N, 3 * H), dtype), np.zeros((N, H), dtype)]
    _call(lib, "gru_bwd", dtype, N * H, dh, acts[0], ghn[0], h, H, *got)
    for g, w in zip(got, (dX[0], dGh[0], want)):
        np.testing.assert_allclose(g, w, **tol)
