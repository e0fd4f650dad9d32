"""The CUDA backend's fused kernels, bodies and Python glue, run on the host
(g++ over the same bodies, tests/kernel_host.py) against the NumPy backend,
NaN, +-inf and +-0 included. Needs a C++ compiler, not CuPy or a GPU: every CI
run checks what the kernels compute (issue 9 item 5: relu turned NaN into 0)."""
import numpy as np
import pytest

import kernel_host as kh
from gradkit.backends.numpy_backend import NumpyBackend

pytestmark = [pytest.mark.nvrtc,
              pytest.mark.skipif(kh.compiler() is None, reason="no C++ compiler (g++) here")]

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 0.25, -0.25, 0.5, -0.5, 1.0,
           -1.0, 2.5, -2.5, 6.0, -6.0, 20.0, -20.0, 1e30, -1e30]
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=2e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-15)}


@pytest.fixture(scope="module")
def kernels():
    return kh.build(DTYPES)


@pytest.fixture(scope="module")
def NB():
    return NumpyBackend()


def _close(got, ref, dt, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.dtype == ref.dtype == np.dtype(dt), (what, got.dtype, ref.dtype)
    bad_nan = np.isnan(got) != np.isnan(ref)
    assert not bad_nan.any(), f"{what}: NaN where the NumPy backend has none (or the reverse)"
    np.testing.assert_allclose(got, ref, equal_nan=True, err_msg=what, **TOL[dt])


def _special(dt):
    with np.errstate(over="ignore"):
        return np.array(SPECIAL, dtype=dt)


def _pairs(dt):
    s = _special(dt)
    y, g = np.meshgrid(s, s, indexing="ij")
    return y.ravel().copy(), g.ravel().copy()


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", ["sigmoid", "relu", "rsqrt", "gelu_tanh", "gelu_erf"])
def test_unary_kernels_match_numpy(kernels, NB, dt, op):
    HB = kh.host_cupy_backend(kernels, dt)
    x = _special(dt)
    with np.errstate(all="ignore"):
        if op.startswith("gelu"):
            a = "tanh" if op == "gelu_tanh" else "none"
            got, ref = HB.gelu(x, a), NB.gelu(x, a)
        else:
            got, ref = getattr(HB, op)(x), getattr(NB, op)(x)
    _close(got, ref, dt, f"{op}({x})")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", ["tanh_backward", "sigmoid_backward", "relu_backward",
                                "sqrt_backward", "gelu_tanh_backward", "gelu_erf_backward"])
def test_backward_kernels_match_numpy(kernels, NB, dt, op):
    HB = kh.host_cupy_backend(kernels, dt)
    y, g = _pairs(dt)
    # y is the forward's output: keep it in that op's range (NaN included)
    lo, hi = {"tanh_backward": (-1, 1), "sigmoid_backward": (0, 1), "relu_backward": (0, np.inf),
              "sqrt_backward": (0, np.inf)}.get(op, (-np.inf, np.inf))
    y = np.where(np.isnan(y), y, np.clip(y, lo, hi)).astype(dt)
    with np.errstate(all="ignore"):
        if op.startswith("gelu"):
            a = "tanh" if op == "gelu_tanh_backward" else "none"
            got, ref = HB.gelu_backward(y, g, a), NB.gelu_backward(y, g, a)
        else:
            got, ref = getattr(HB, op)(y, g), getattr(NB, op)(y, g)
    _close(got, ref, dt, op)


@pytest.mark.parametrize("dt", DTYPES)
def test_mask_mul_matches_numpy(kernels, NB, dt):
    HB = kh.host_cupy_backend(kernels, dt)
    g = _special(dt)
    m = np.arange(g.size) % 2 == 0
    with np.errstate(all="ignore"):
        _close(HB.mask_mul(g, m), NB.mask_mul(g, m), dt, "mask_mul")


def _state(dt, seed):
    r = np.random.default_rng(seed)
    p = r.standard_normal(64).astype(dt)
    g = r.standard_normal(64).astype(dt)
    g[:len(SPECIAL)] = _special(dt)
    p[-6:] = _special(dt)[:6]
    return p, g, np.abs(r.standard_normal(64)).astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("cfg", [dict(momentum=0.0, weight_decay=0.0, maximize=False),
                                 dict(momentum=0.0, weight_decay=0.1, maximize=True),
                                 dict(momentum=0.9, dampening=0.1, weight_decay=0.01),
                                 dict(momentum=0.9, nesterov=True, maximize=True)])
def test_sgd_kernels_match_numpy(kernels, NB, dt, cfg):
    HB = kh.host_cupy_backend(kernels, dt)
    outs = []
    for B in (HB, NB):
        p, g, b = _state(dt, 0)
        buf = b if cfg["momentum"] else None
        with np.errstate(all="ignore"):
            for first in (True, False):
                B.sgd_update(p, g, buf, 0.1, first=first, **cfg)
        outs.append((p, buf))
    _close(outs[0][0], outs[1][0], dt, f"sgd p {cfg}")
    if cfg["momentum"]:
        _close(outs[0][1], outs[1][1], dt, f"sgd buf {cfg}")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("cfg", [dict(decoupled=False, weight_decay=0.0, amsgrad=False),
                                 dict(decoupled=False, weight_decay=0.1, amsgrad=True,
                                      maximize=True),
                                 dict(decoupled=True, weight_decay=0.01, amsgrad=False),
                                 dict(decoupled=True, weight_decay=0.01, amsgrad=True,
                                      beta1=0.3)])
def test_adam_kernels_match_numpy(kernels, NB, dt, cfg):
    HB = kh.host_cupy_backend(kernels, dt)
    cfg = dict(cfg)
    amsgrad, beta1 = cfg.pop("amsgrad"), cfg.pop("beta1", 0.9)
    outs = []
    for B in (HB, NB):
        p, g, v = _state(dt, 1)
        m = (g * 0.5).astype(dt)
        vmax = v.copy() if amsgrad else None
        with np.errstate(all="ignore"):
            for t in (1, 2):
                B.adam_update(p, g, m, v, vmax, 1e-2, beta1, 0.999, 1e-8,
                              step_size=1e-2 / (1 - beta1 ** t),
                              bc2_sqrt=(1 - 0.999 ** t) ** 0.5, **cfg)
        outs.append((p, m, v, vmax))
    for i, what in enumerate(("p", "m", "v", "vmax")):
        if outs[0][i] is not None:
            _close(outs[0][i], outs[1][i], dt, f"adam {what} {cfg}")


@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_fused_path_matches_numpy(kernels, NB, dt):
    HB = kh.host_cupy_backend(kernels, dt)
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(dt) * 30
    x[0, :3] = [np.inf, -np.inf, 0.0]
    x[1, 2] = np.nan
    x[2, :] = -np.inf
    for dim in (0, 1):
        with np.errstate(all="ignore"):
            _close(HB.softmax(x, dim), NB.softmax(x, dim), dt, f"softmax dim {dim}")


def test_the_host_kernels_refuse_mixed_dtypes_as_cupy(kernels):
    HB = kh.host_cupy_backend(kernels, "float32")
    with pytest.raises(TypeError, match="Type is mismatched"):
        HB.tanh_backward(np.ones(3, np.float32), np.ones(3, np.float64))


@pytest.mark.parametrize("dt", DTYPES)
def test_batch_norm_elementwise_kernels_match_numpy(dt):
    """Batch norm's fused passes (backends/norm_cupy.py) with per-channel values
    broadcast, with and without the affine parameters, NaN included."""
    from gradkit.backends import norm_cupy as nc
    acc = dt
    ks = kh.build((dt,), specs=nc.elementwise_specs(acc))
    apply_, bwd = ks[(f"norm_apply_{acc}", dt)], ks[(f"norm_bn_backward_{acc}", dt)]
    r = np.random.default_rng(0)
    x, g = r.standard_normal((4, 3, 5)).astype(dt), r.standard_normal((4, 3, 5)).astype(dt)
    x[0, 0, 0] = np.nan
    m, rs, w, b, k, c1, c2 = (r.standard_normal((1, 3, 1)).astype(dt) for _ in range(7))
    for hw in (0, 1):
        for hb in (0, 1):
            want = (x - m) * rs * (w if hw else 1) + (b if hb else 0)
            _close(apply_(x, m, rs, np.broadcast_to(w, x.shape) if hw else x,
                          np.broadcast_to(b, x.shape) if hb else x, hw, hb), want, dt,
                   f"norm_apply hw={hw} hb={hb}")
    _close(bwd(x, g, m, rs, k, c1, c2), k * (g - c1 - (x - m) * rs * c2), dt, "norm_bn_backward")


# ------------------------------------------------ the normalization RawKernels
_RAW_PRELUDE = """
#include <math.h>
struct gk_dim3 { unsigned x; };
static gk_dim3 threadIdx = {0}, blockIdx = {0}, blockDim = {1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() {}
template <class V> static inline V __shfl_down_sync(unsigned, V, int) { return V(0); }
static inline float rsqrt(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
"""


def _raw_host_lib(dt):
    """The forward and backward RawKernels of backends/norm_cupy.py compiled by
    g++ as one-thread blocks (the block sum then adds one value), with a driver
    that runs block r = 0..R-1: the index math, the two-pass statistics, the
    affine and the closed-form backward run on the host."""
    import ctypes
    import os
    import subprocess
    import tempfile
    from gradkit.backends import norm_cupy as nc
    src = _RAW_PRELUDE
    for kind in ("fwd", "bwd"):
        body = nc.raw_source(kind, dt)
        src += f"namespace k_{kind} {{\n{body}\n}}\n"
    T = nc.CTYPES[dt][0]
    U = nc.CTYPES[dt][1]
    ll = "long long"
    geo = f"{ll} A, {ll} R, {ll} Bd, {ll} G, {ll} cpg, {ll} S"
    src += f"""
extern "C" void host_fwd(const {T}* x, const {T}* w, const {T}* b, {T}* y, {U}* m, {U}* rs,
                         {U}* v, {geo}, double eps, int hw, int hb) {{
  for ({ll} r = 0; r < R; r++) {{ blockIdx.x = (unsigned)r;
    k_fwd::gk_norm_fwd_{dt}(x, w, b, y, m, rs, v, A, R, Bd, G, cpg, S, eps, hw, hb); }}
}}
extern "C" void host_bwd(const {T}* x, const {T}* w, const {T}* g, const {U}* m,
                         const {U}* rs, {T}* gx, {geo}, int hw) {{
  for ({ll} r = 0; r < R; r++) {{ blockIdx.x = (unsigned)r;
    k_bwd::gk_norm_bwd_{dt}(x, w, g, m, rs, gx, A, R, Bd, G, cpg, S, hw); }}
}}
"""
    d = tempfile.mkdtemp(prefix="gk_norm_host_")
    cpp, so = os.path.join(d, "k.cpp"), os.path.join(d, "k.so")
    with open(cpp, "w") as f:
        f.write(src)
    r = subprocess.run([kh.compiler(), "-O1", "-shared", "-fPIC", "-o", so, cpp],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    return ctypes.CDLL(so)


def _norm_geoms():
    """(shape, geom) for each layout the layers use (as gradkit/nn/normalization.py)."""
    out = []
    for R, D in ((5, 7), (3, 40)):                                   # layer norm
        out.append(((R, D), ((R, D), (1,), (1, D), (1, R, D, 1, D, 1), (D,), "ln")))
    N, C, S = 4, 3, 6
    out.append(((N, C, S), ((N, C, S), (0, 2), (1, C, 1), (N, C, S, C, 1, S), (C,), "bn")))
    out.append(((N, C, S), ((N, C, S), (2,), (1, C, 1), (1, N * C, S, C, 1, S), (C,), "in")))
    G, cpg = 2, 3
    out.append(((N, G * cpg, S), ((N, G, cpg, S), (2, 3), (1, G, cpg, 1),
                                  (1, N * G, cpg * S, G, cpg, S), (G * cpg,), "gn")))
    return out


@pytest.mark.parametrize("dt", DTYPES)
def test_norm_raw_kernels_match_numpy(NB, dt):
    import ctypes
    lib = _raw_host_lib(dt)
    r = np.random.default_rng(0)
    P = ctypes.c_void_p
    tol = dict(rtol=2e-5, atol=2e-5) if dt == "float32" else TOL[dt]
    for shape, geom in _norm_geoms():
        for aff in (True, False):
            x = (r.standard_normal(shape) * 3 + 2).astype(dt)
            g = r.standard_normal(shape).astype(dt)
            w = (r.standard_normal(geom[4]) + 1).astype(dt)
            b = r.standard_normal(geom[4]).astype(dt)
            R = geom[3][1]
            y = np.empty_like(x)
            m, rs, v = (np.empty(R, dt) for _ in range(3))
            ints = [ctypes.c_longlong(int(n)) for n in geom[3]]
            lib.host_fwd(P(x.ctypes.data), P(w.ctypes.data), P(b.ctypes.data), P(y.ctypes.data),
                         P(m.ctypes.data), P(rs.ctypes.data), P(v.ctypes.data), *ints,
                         ctypes.c_double(1e-5), ctypes.c_int(aff), ctypes.c_int(aff))
            ww, bb = (w, b) if aff else (None, None)
            yn, (mn, rn, vn) = NB.fused_norm(x, ww, bb, geom, 1e-5)
            what = f"{geom[5]} {shape} affine={aff}"
            np.testing.assert_allclose(y, yn, err_msg=what, **tol)
            for got, ref in ((m, mn), (rs, rn), (v, vn)):
                np.testing.assert_allclose(got, ref.reshape(-1), err_msg=what, **tol)
            gx = np.empty_like(x)
            lib.host_bwd(P(x.ctypes.data), P(w.ctypes.data), P(g.ctypes.data), P(m.ctypes.data),
                         P(rs.ctypes.data), P(gx.ctypes.data), *ints, ctypes.c_int(aff))
            gxn = NB.fused_norm_backward(x, ww, g, mn, rn, geom, (True, False, False))[0]
            np.testing.assert_allclose(gx, gxn, err_msg="backward " + what, **tol)


# ------------------------------------------- the vector path (backends/cuda_vector.py)
import vector_host as vh  # noqa: E402  (after the ElementwiseKernel tests it extends)
from gradkit.backends import cuda_vector as cv  # noqa: E402
from gradkit.backends.cupy_backend import kernel_specs  # noqa: E402


@pytest.fixture(scope="module")
def vector_kernels(kernels):
    """{(name, dtype): VectorKernel} over the host builds: the generated CUDA
    source under g++ with emulated threads, the per-element body as fallback."""
    specs = kernel_specs()
    cp = vh.fake_cupy(vh.compile_sources(vh.default_sources(specs, DTYPES)))
    return {(n, dt): cv.VectorKernel(s, kernels[(n, dt)], cp)
            for dt in DTYPES for n, s in specs.items()}


def _aligned_empty(n, dt, offset):
    """n elements starting ``offset`` elements after a 64-byte boundary, with
    sentinel guards around them (returns the view and the whole buffer)."""
    it = np.dtype(dt).itemsize
    raw = np.empty(n * it + 256, np.uint8)
    start = 64 + (-raw.ctypes.data) % 64 + offset * it
    full = raw[start - 32:start + n * it + 64]
    return full[32:32 + n * it].view(dt).view(vh.FakeArray), full


def _operands(name, spec, dt, n, offset, rng):
    """Inputs and outputs for one call in gradkit's argument kinds."""
    vals = np.concatenate([_special(dt), rng.standard_normal(max(n, 1)).astype(dt)])
    ins, bufs = [], []
    for t, pn in cv.params(spec["in_params"]):
        if t == "T" or (t == "bool" and name not in kh.SCALAR_KERNELS):
            a, full = _aligned_empty(n, dt if t == "T" else t, offset)
            src = rng.permutation(vals)[:n] if t == "T" else rng.random(n) < 0.5
            a[...] = src
            ins.append(a)
        else:
            ins.append({"bool": True, "float64": 0.375}[t] if pn != "w1" else 0.1)
    outs = []
    if not all(cv.write_only(spec, o) for _, o in cv.params(spec["out_params"])):
        for _ in cv.params(spec["out_params"]):
            a, full = _aligned_empty(n, dt, offset)
            a[...] = np.abs(rng.permutation(vals)[:n])
            outs.append(a)
            bufs.append(full)
    return ins, outs, bufs


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("grid", [(32, 2), (256, 1 << 16)])   # (BLOCK, MAX_BLOCKS)
def test_vector_kernels_match_the_elementwise_bodies_bit_for_bit(vector_kernels, kernels,
                                                                 monkeypatch, dt, grid):
    """Every kernel, sizes around the per-thread width (tails of 0..E-1), aligned
    (16-byte vector loads) and misaligned (element loads) operands, a grid-stride
    loop (2 blocks of 32 threads) and one pass: the same bits as the per-element
    body, and nothing written outside the output."""
    monkeypatch.setattr(cv, "BLOCK", grid[0])
    monkeypatch.setattr(cv, "MAX_BLOCKS", grid[1])
    E = cv.elems(dt)
    rng = np.random.default_rng(7)
    sizes = [1, 3, E - 1, E, E + 1, 4 * E - 1, 4 * E + 1, 1000, 4099]
    for name, spec in kernel_specs().items():
        vk, ek = vector_kernels[(name, dt)], kernels[(name, dt)]
        for n in sizes:
            for offset in (0, 1, 3):
                ins, outs, bufs = _operands(name, spec, dt, n, offset, rng)
                ref_outs = [np.array(o) for o in outs]
                ptrs = [(a.data.ptr, a.itemsize) for a in ins + outs if hasattr(a, "data")]
                assert cv.aligned(ptrs, E) == (offset == 0)
                before = vk.launches
                guards = [(b[:32].copy(), b[-64:].copy()) for b in bufs]
                with np.errstate(all="ignore"):
                    got = vk(*ins, *outs)
                    ref = ek(*[np.asarray(a) if isinstance(a, np.ndarray) else a for a in ins],
                             *ref_outs)
                assert vk.launches == before + 1, f"{name} n={n}: not the vector path"
                got = got if isinstance(got, tuple) else (got,)
                ref = ref if isinstance(ref, tuple) else (ref,)
                for i, (g, r) in enumerate(zip(got, ref)):
                    assert np.array_equal(_bits(g), _bits(r)), \
                        f"{name}[{dt}] n={n} offset={offset} output {i}"
                for b, (lo, hi) in zip(bufs, guards):
                    assert np.array_equal(b[:32], lo) and np.array_equal(b[-64:], hi), \
                        f"{name}[{dt}] n={n} offset={offset}: wrote outside the output"


def test_vector_path_writes_each_output_element_exactly_once():
    """The emulated launch itself, without the glue: n = 0 touches nothing; every
    index is written once (an identity kernel over indices), misaligned or not."""
    spec = dict(in_params="T x", out_params="T y", operation="y = x + (T)i * (T)0",
                name="gk_probe")
    src = cv.source(spec, "float32", (True,))[1]
    launch = vh.compile_sources([src])[src]
    for n in (0, 1, 7, 8, 9, 257, 2049):
        for vec in (True, False):
            x = np.arange(n, dtype=np.float32)
            y = np.full(n + 4, -1.0, np.float32)
            blocks, threads = cv.launch_plan(n, cv.elems("float32"), 4, 3)
            launch((blocks,), (threads,), (x, y, np.int64(n), np.bool_(vec)))
            assert np.array_equal(y[:n], x) and (y[n:] == -1).all(), (n, vec)


def test_vector_path_falls_back_to_the_elementwise_kernel(vector_kernels):
    """Broadcast, strided, 0-size, a Python scalar for T, and mixed dtypes take
    ElementwiseKernel's path (and its errors); results stay right."""
    vk = vector_kernels[("tanh_backward", "float32")]
    y = vh.as_fake(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
    g = vh.as_fake(np.ones((3, 4), np.float32))
    before = vk.launches
    ref = np.asarray(g) * (1 - np.asarray(y) ** 2)
    np.testing.assert_allclose(vk(y, g[:1]), ref, rtol=1e-6)                # broadcast
    np.testing.assert_allclose(vk(y.T, g.T), ref.T, rtol=1e-6)              # not C-contiguous
    assert vk(y[:0], g[:0]).shape == (0, 4)                                 # empty
    np.testing.assert_allclose(vk(y, 1.0), 1 - np.asarray(y) ** 2, rtol=1e-6)  # scalar T
    with pytest.raises(TypeError, match="Type is mismatched"):
        vk(y, vh.as_fake(np.ones((3, 4), np.float64)))
    assert vk.launches == before
    np.testing.assert_allclose(vk(y, g), ref, rtol=1e-6)                    # the vector path
    assert vk.launches == before + 1


def test_launch_plan_covers_every_element_with_64_bit_sizes():
    for n in (0, 1, 15, 16, 17, 1 << 20, (1 << 33) + 5):
        for E in (2, 4, 8, 16):
            blocks, threads = cv.launch_plan(n, E)
            assert 1 <= blocks <= cv.MAX_BLOCKS and threads == cv.BLOCK
            assert threads >= E          # the tail (< E elements) has a thread each
            assert blocks * threads >= min(n // E, cv.MAX_BLOCKS * threads) or n // E == 0
    src = cv.source(kernel_specs()["adam_update"], "float32", (True,) + (False,) * 8)[1]
    assert "long long _gk_n" in src and "int _gk_c" not in src
