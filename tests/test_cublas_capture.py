"""The capturable cuBLAS path (backends/cublas_capture.py): gradkit's matmul,
linear, bmm and conv GEMMs while a CUDA stream captures a graph, where CuPy
refuses cuBLAS. Without a GPU: the argument mapping (row-major C = A @ B as
column-major C^T = B^T A^T, transposed views as op T, strided batches) runs the
real ``CaptureGemm.matmul`` against a NumPy emulation of cublasGemmEx /
cublasGemmStridedBatchedEx over flat buffers, and the dispatcher is driven by a
fake stream state. On a GPU (-k cuda): a linear + backward + SGD step captured
into a CUDA graph and replayed matches the same steps run eagerly."""
import ctypes
import shutil
import subprocess
import types

import numpy as np
import pytest

import gradkit as gk
from gradkit.backends import cublas_capture as cc

N_, T_ = cc.OP_N, cc.OP_T


# ------------------------------------------------ NumPy emulation of cuBLAS
class EmulatedGemm(cc.CaptureGemm):
    """CaptureGemm whose cuBLAS calls are emulated with NumPy: pointers are host
    addresses into registered owner buffers, read and written column-major with
    cuBLAS's own indexing (element (r, c) of batch i at ptr + i*stride + r + c*ld),
    every index bounds-checked, and cuBLAS's argument rules asserted."""

    def __init__(self):   # no CuPy: a NumPy stand-in for the few names used
        self.owners = []
        self.calls = []
        self.copies = 0
        emu = self

        def empty(shape, dtype):
            return emu.own(np.empty(shape, dtype=dtype))

        def ascontiguousarray(x):
            emu.copies += 1
            return emu.own(np.ascontiguousarray(x))

        self.cp = types.SimpleNamespace(
            result_type=np.result_type, matmul=np.matmul, broadcast_to=np.broadcast_to,
            empty=empty, ascontiguousarray=ascontiguousarray, dtype=np.dtype)
        self.workspaces = {1: 0}

    def own(self, x):
        assert x.flags.c_contiguous
        self.owners.append(x)
        return x

    def _ptr(self, x):
        return x.__array_interface__["data"][0]

    def _stream_ptr(self):
        return 1

    def _flat(self, ptr, dtype):
        for o in self.owners:
            start = o.__array_interface__["data"][0]
            if start <= ptr < start + max(o.nbytes, 1) and o.dtype == dtype:
                assert (ptr - start) % o.itemsize == 0
                return o.reshape(-1), (ptr - start) // o.itemsize
        raise AssertionError(f"pointer {ptr:#x} is in no {dtype} buffer")

    def gemm(self, ptr_a, ptr_b, ptr_c, dtype_name, stream_ptr, *, transa, transb, m, n, k,
             lda, ldb, ldc, stride_a, stride_b, stride_c, batch):
        self.calls.append(dict(transa=transa, transb=transb, m=m, n=n, k=k, lda=lda, ldb=ldb,
                               ldc=ldc, stride_a=stride_a, stride_b=stride_b, batch=batch))
        dt = np.dtype(dtype_name)
        acc = np.float64 if dt == np.float64 else np.float32    # the compute type
        assert min(m, n, k, batch) >= 1
        assert lda >= max(1, m if transa == N_ else k)           # cuBLAS's rules
        assert ldb >= max(1, k if transb == N_ else n)
        assert ldc >= max(1, m)
        A, oa = self._flat(ptr_a, dt)
        B, ob = self._flat(ptr_b, dt)
        C, oc = self._flat(ptr_c, dt)

        def stored(F, off, rows, cols, ld):
            idx = off + np.arange(rows)[:, None] + np.arange(cols)[None, :] * ld
            assert idx.min() >= 0 and idx.max() < F.size, "read outside the buffer"
            return F[idx].astype(acc)

        for i in range(batch):
            a = stored(A, oa + i * stride_a, *((m, k) if transa == N_ else (k, m)), lda)
            b = stored(B, ob + i * stride_b, *((k, n) if transb == N_ else (n, k)), ldb)
            c = (a if transa == N_ else a.T) @ (b if transb == N_ else b.T)
            idx = oc + i * stride_c + np.arange(m)[:, None] + np.arange(n)[None, :] * ldc
            assert idx.min() >= 0 and idx.max() < C.size, "write outside the buffer"
            C[idx] = c.astype(dt)


def _view(rng, shape, dtype, layout, emu):
    """An array of ``shape`` whose memory is an owned flat buffer, laid out as
    ``layout``: c (contiguous), t (a transposed view of the last two dims),
    pad (rows padded: a column slice), step (every other column: copied),
    flip (negative strides: copied), bcast (batch dims broadcast, stride 0)."""
    shape = tuple(shape)
    if layout == "c":
        return emu.own(rng.standard_normal(shape).astype(dtype))
    if layout == "t":
        base = emu.own(rng.standard_normal(shape[:-2] + shape[-2:][::-1]).astype(dtype))
        return np.swapaxes(base, -1, -2)
    if layout == "pad":
        base = emu.own(rng.standard_normal(shape[:-1] + (shape[-1] + 3,)).astype(dtype))
        return base[..., :shape[-1]]
    if layout == "step":
        base = emu.own(rng.standard_normal(shape[:-1] + (2 * shape[-1],)).astype(dtype))
        return base[..., ::2]
    if layout == "flip":
        return np.flip(emu.own(rng.standard_normal(shape).astype(dtype)), -1)
    if layout == "bcast":
        base = emu.own(rng.standard_normal(shape[-2:]).astype(dtype))
        return np.broadcast_to(base, shape)
    raise ValueError(layout)


TOL = {"float16": 2e-2, "float32": 1e-5, "float64": 1e-12}


def _check(emu, a, b):
    got = emu.matmul(a, b)
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape and got.dtype == np.result_type(a.dtype, b.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=TOL[got.dtype.name],
                               atol=TOL[got.dtype.name] * 4)
    return got


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("la", ["c", "t", "pad", "step", "flip"])
@pytest.mark.parametrize("lb", ["c", "t", "pad", "step", "flip"])
def test_emulated_gemm_every_2d_layout(dtype, la, lb):
    emu = EmulatedGemm()
    rng = np.random.default_rng(0)
    a = _view(rng, (5, 7), dtype, la, emu)
    b = _view(rng, (7, 4), dtype, lb, emu)
    _check(emu, a, b)
    assert len(emu.calls) == 1 and emu.calls[0]["batch"] == 1
    copies = (la in ("step", "flip")) + (lb in ("step", "flip"))
    assert emu.copies == copies      # contiguous, transposed and padded views: no copy
    want_a = T_ if lb == "t" else N_  # cuBLAS's A operand is b
    if lb not in ("step", "flip"):
        assert emu.calls[0]["transa"] == want_a
    if la not in ("step", "flip"):
        assert emu.calls[0]["transb"] == (T_ if la == "t" else N_)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("sa,sb,la,lb,copies", [
    ((3, 5, 7), (3, 7, 4), "c", "c", 0),          # bmm
    ((3, 5, 7), (3, 7, 4), "t", "t", 0),          # bmm of transposed views
    ((3, 5, 7), (7, 4), "c", "c", 0),             # b broadcast over the batch: stride 0
    ((5, 7), (3, 7, 4), "t", "c", 0),
    ((3, 5, 7), (3, 7, 4), "bcast", "c", 0),      # an explicitly broadcast batch
    ((2, 3, 5, 7), (2, 3, 7, 4), "c", "pad", 0),  # two batch dims collapse
    ((2, 1, 5, 7), (1, 3, 7, 4), "c", "c", 2),    # (2, 3) batch from (s, 0) and (0, s): copies
    ((3, 5, 7), (3, 7, 4), "step", "c", 1),
])
def test_emulated_gemm_batched(dtype, sa, sb, la, lb, copies):
    emu = EmulatedGemm()
    rng = np.random.default_rng(1)
    _check(emu, _view(rng, sa, dtype, la, emu), _view(rng, sb, dtype, lb, emu))
    assert emu.copies == copies
    batch = int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2])))
    assert emu.calls[0]["batch"] == batch
    if sb == (7, 4):
        assert emu.calls[0]["stride_a"] == 0     # b's matrix reused for every batch entry


@pytest.mark.parametrize("sa,sb", [((7,), (7, 4)), ((5, 7), (7,)), ((7,), (7,)),
                                   ((3, 5, 7), (7,)), ((7,), (3, 7, 4)),
                                   ((1, 7), (7, 1)), ((5, 1), (1, 4)), ((1, 1), (1, 1))])
def test_emulated_gemm_vectors_and_size_one_dims(sa, sb):
    emu = EmulatedGemm()
    rng = np.random.default_rng(2)
    _check(emu, _view(rng, sa, "float32", "c", emu), _view(rng, sb, "float32", "c", emu))
    assert emu.copies == 0


def test_emulated_gemm_size_one_dims_of_views_need_no_copy():
    emu = EmulatedGemm()
    rng = np.random.default_rng(3)
    a = _view(rng, (1, 7), "float32", "step", emu)     # one row with a column step of 2
    b = _view(rng, (7, 1), "float32", "t", emu)
    _check(emu, a, b)
    assert emu.copies == 0 and emu.calls[0]["transb"] == T_


def test_emulated_gemm_empty_and_zero_inner():
    emu = EmulatedGemm()
    a = emu.own(np.ones((0, 3), np.float32))
    b = emu.own(np.ones((3, 4), np.float32))
    assert emu.matmul(a, b).shape == (0, 4)
    z = emu.matmul(emu.own(np.ones((2, 0), np.float32)), emu.own(np.ones((0, 4), np.float32)))
    np.testing.assert_array_equal(z, np.zeros((2, 4), np.float32))
    assert emu.calls == []           # nothing for cuBLAS to do


def test_emulated_gemm_integers_take_cupy_matmul():
    emu = EmulatedGemm()
    a = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(emu.matmul(a, a.T), a @ a.T)
    assert emu.calls == []


def test_emulated_gemm_mismatched_inner_dims_raise():
    emu = EmulatedGemm()
    with pytest.raises(ValueError, match="inner dimensions are 3 and 4"):
        emu.matmul(emu.own(np.ones((2, 3))), emu.own(np.ones((4, 2))))
    with pytest.raises(ValueError, match="do not broadcast"):
        emu.matmul(emu.own(np.ones((2, 2, 3))), emu.own(np.ones((3, 3, 2))))


def test_plan_rejects_layouts_cublas_cannot_read():
    assert cc.matrix_layout(4, 5, 5, 1) == (N_, 5)
    assert cc.matrix_layout(4, 5, 1, 4) == (T_, 4)
    assert cc.matrix_layout(4, 5, 5, 2) is None     # column step
    assert cc.matrix_layout(4, 5, 0, 1) is None     # rows broadcast (ld 0)
    assert cc.matrix_layout(4, 5, -5, 1) is None
    assert cc.batch_stride((2, 3), (0, 0)) == 0
    assert cc.batch_stride((2, 3), (3, 1)) == 1 and cc.batch_stride((2, 3), (12, 4)) == 4
    assert cc.batch_stride((2, 3), (20, 0)) is None


# ------------------------------------------------------------- the dispatcher
class FakeStreams:
    """A fake current stream: its pointer and whether it is capturing."""

    def __init__(self):
        self.ptr, self.capturing, self.log = 0, set(), []

    def is_capturing(self, p):
        self.log.append(("query", p))
        return p in self.capturing


def _dispatcher(streams):
    return cc.make_matmul(lambda a, b: ("eager", a, b), lambda a, b: ("captured", a, b),
                          lambda: streams, streams.is_capturing,
                          lambda p: streams.log.append(("prepare", p)))


def test_dispatcher_takes_the_capture_path_only_while_capturing():
    s = FakeStreams()
    mm = _dispatcher(s)
    assert mm(1, 2) == ("eager", 1, 2)
    assert s.log == []                  # legacy default stream: not even a query
    s.ptr = 77
    assert mm(1, 2)[0] == "eager"       # a stream that is not capturing
    assert s.log == [("query", 77), ("prepare", 77)]   # its workspace, before any capture
    s.capturing.add(77)
    assert mm(3, 4) == ("captured", 3, 4)
    s.capturing.clear()
    assert mm(3, 4)[0] == "eager"       # after end_capture: CuPy's matmul again
    s.ptr = 0
    s.capturing.add(0)                  # (not possible on CUDA; never asked anyway)
    assert mm(5, 6)[0] == "eager"


def test_backend_matmul_outside_capture_is_cupy_matmul_and_survives_a_missing_cublas():
    calls = []

    class Stream:
        ptr = 5

    cuda = types.SimpleNamespace(
        get_current_stream=lambda: Stream,
        runtime=types.SimpleNamespace(streamIsCapturing=lambda p: False, is_hip=False),
        Device=None, device=None)       # CaptureGemm would fail: eager must not notice
    cp = types.SimpleNamespace(cuda=cuda, matmul=lambda a, b: calls.append((a, b)) or "mm")
    mm = cc.backend_matmul(cp, 0)
    assert mm(1, 2) == "mm" and mm(3, 4) == "mm" and calls == [(1, 2), (3, 4)]
    cuda.runtime.is_hip = True
    assert cc.backend_matmul(cp, 0) is cp.matmul


def test_dispatcher_overhead_outside_capture_is_small():
    """Outside capture the wrapper adds one stream-pointer read and, on a
    non-default stream, one capture query and one set lookup (fakes here: the
    figure for the real ones is in docs/gpus.md)."""
    import timeit
    mm = cc.make_matmul(lambda a, b: None, None, lambda: types.SimpleNamespace(ptr=0), None)
    bare = min(timeit.repeat(lambda: None, number=20000, repeat=3))
    wrapped = min(timeit.repeat(lambda: mm(1, 2), number=20000, repeat=3))
    assert wrapped - bare < 20000 * 5e-6       # well under 5 us a call even on a busy CPU


# ----------------------------------------------------------- on a real GPU
def _cuda():
    if not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    import cupy
    return cupy


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_cuda_capture_matmul_layouts_match_cupy(dtype, request):
    cp = _cuda()
    rng = np.random.default_rng(0)
    B = gk.zeros(1, device="cuda")._B
    pairs = [((64, 32), (32, 48), False, False), ((64, 32), (32, 48), True, True),
             ((4, 64, 32), (32, 48), False, True), ((4, 64, 32), (4, 32, 48), True, False),
             ((32,), (32, 48), False, False)]
    def make(shape, t):
        if not t or len(shape) < 2:
            return cp.asarray(rng.standard_normal(shape).astype(dtype))
        base = rng.standard_normal(shape[:-2] + (shape[-1], shape[-2])).astype(dtype)
        return cp.asarray(base).swapaxes(-1, -2)      # a transposed view

    ins = [(make(sa, ta), make(sb, tb)) for sa, sb, ta, tb in pairs]
    prev = cp.cuda.get_allocator()
    cp.cuda.set_allocator(cp.cuda.MemoryAsyncPool().malloc)   # capturable allocations
    request.addfinalizer(lambda: cp.cuda.set_allocator(prev))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        want = [cp.matmul(a, b) for a, b in ins]
        outs = [cp.empty_like(w) for w in want]
        stream.synchronize()
        stream.begin_capture()
        try:
            for (a, b), o in zip(ins, outs):
                r = B.matmul(a, b)
                o[...] = r
                del r
        finally:
            graph = stream.end_capture()
        graph.launch(stream)
        stream.synchronize()
    tol = TOL[dtype] * 50
    for o, w in zip(outs, want):
        np.testing.assert_allclose(cp.asnumpy(o).astype(np.float64),
                                   cp.asnumpy(w).astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.cuda
def test_cuda_graph_replays_a_linear_backward_sgd_step_like_eager(request):
    cp = _cuda()
    prev = cp.cuda.get_allocator()
    cp.cuda.set_allocator(cp.cuda.MemoryAsyncPool().malloc)   # capturable allocations
    request.addfinalizer(lambda: cp.cuda.set_allocator(prev))
    import gradkit.nn as nn
    import gradkit.nn.functional as F
    rng = np.random.default_rng(0)
    x = gk.tensor(rng.standard_normal((16, 12)).astype(np.float32), device="cuda")
    y = gk.tensor(rng.integers(0, 5, 16), device="cuda")

    def make():
        gk.manual_seed(0)
        m = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5)).to("cuda")
        return m, gk.optim.SGD(m.parameters(), lr=0.1)

    def step(m, opt, buf):
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        with gk.no_grad():
            buf.copy_(loss)
        del loss

    (em, eo), (cm, co) = make(), make()
    el, cl = gk.zeros((), device="cuda"), gk.zeros((), device="cuda")
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        for _ in range(2):
            step(em, eo, el)
            step(cm, co, cl)
        stream.synchronize()
        stream.begin_capture()
        try:
            with gk.no_host_sync():
                step(cm, co, cl)
        finally:
            graph = stream.end_capture()
        for _ in range(3):
            graph.launch(stream)
            step(em, eo, el)
        stream.synchronize()
    for (_, a), (_, b) in zip(cm.named_parameters(), em.named_parameters()):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(),
                                   rtol=1e-5, atol=1e-5)
    assert abs(cl.item() - el.item()) < 1e-5


def test_eager_workspace_preallocation_stops_after_a_few_streams(monkeypatch):
    """A program that makes a stream per batch must not pay 32 MiB per stream:
    past PREALLOCATE_STREAMS streams the workspace waits for a capture."""
    made = []

    class FakeGemm:
        def __init__(self, cp, index):
            self.workspaces = {}

        def prepare(self, ptr):
            made.append(ptr)

    monkeypatch.setattr(cc, "CaptureGemm", FakeGemm)
    stream = types.SimpleNamespace(ptr=0)
    cuda = types.SimpleNamespace(get_current_stream=lambda: stream,
                                 runtime=types.SimpleNamespace(
                                     streamIsCapturing=lambda p: False, is_hip=False))
    mm = cc.backend_matmul(types.SimpleNamespace(cuda=cuda, matmul=lambda a, b: None), 0)
    for p in range(1, 10):
        stream.ptr = p
        mm(0, 0)
        mm(0, 0)
    assert made == list(range(1, cc.PREALLOCATE_STREAMS + 1))


# ------------------------------------- the ctypes ABI against a C stand-in
# A C library with libcublas's entry points (the signatures of cublas_api.h)
# computing column-major GEMMs on host memory and recording the handle's state
# at each call: the real CaptureGemm.gemm (ctypes argtypes, argument order,
# alpha/beta as float or double, stream/workspace/pointer-mode set and
# restored) runs through it. Needs a C compiler; skips without one.
SHIM = r"""
#include <stdlib.h>
#include <stddef.h>
typedef struct { void *stream, *ws; size_t wsz; int mode;
                 void *g_stream, *g_ws; size_t g_wsz; int g_mode, calls; } H;
void *shim_create(void) { H *h = calloc(1, sizeof(H)); h->stream = (void *)0x77;
                          h->mode = 1; return h; }
int cublasSetStream_v2(H *h, void *s) { h->stream = s; h->ws = NULL; h->wsz = 0; return 0; }
int cublasGetStream_v2(H *h, void **s) { *s = h->stream; return 0; }
int cublasSetWorkspace_v2(H *h, void *w, size_t n) { h->ws = w; h->wsz = n; return 0; }
int cublasGetPointerMode_v2(H *h, int *m) { *m = h->mode; return 0; }
int cublasSetPointerMode_v2(H *h, int m) { h->mode = m; return 0; }
static double ld(int t, const void *p, long long i) {
    return t == 0 ? ((const float *)p)[i] : ((const double *)p)[i]; }
static void st(int t, void *p, long long i, double v) {
    if (t == 0) ((float *)p)[i] = (float)v; else ((double *)p)[i] = v; }
static int mx(int a) { return a > 1 ? a : 1; }
static int gemm1(H *h, int ta, int tb, int m, int n, int k, const void *alpha,
                 const char *A, int at, int lda, const char *B, int bt, int ldb,
                 const void *beta, char *C, int ct, int ldc, int compute, int algo) {
    if (h->mode != 0 || algo != -1 || at != bt || bt != ct) return 7;
    if (!((at == 0 && compute == 68) || (at == 1 && compute == 70))) return 7;
    if (lda < mx(ta == 0 ? m : k) || ldb < mx(tb == 0 ? k : n) || ldc < mx(m)) return 7;
    double al = compute == 70 ? *(const double *)alpha : *(const float *)alpha;
    double be = compute == 70 ? *(const double *)beta : *(const float *)beta;
    if (al != 1.0 || be != 0.0) return 7;
    for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) {
        double s = 0;
        for (int p = 0; p < k; p++)
            s += ld(at, A, ta == 0 ? i + (long long)p * lda : p + (long long)i * lda)
               * ld(bt, B, tb == 0 ? p + (long long)j * ldb : j + (long long)p * ldb);
        st(ct, C, i + (long long)j * ldc, al * s);
    }
    h->g_stream = h->stream; h->g_ws = h->ws; h->g_wsz = h->wsz; h->g_mode = h->mode;
    h->calls++;
    return 0;
}
int cublasGemmEx(H *h, int ta, int tb, int m, int n, int k, const void *alpha,
                 const void *A, int at, int lda, const void *B, int bt, int ldb,
                 const void *beta, void *C, int ct, int ldc, int compute, int algo) {
    return gemm1(h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc,
                 compute, algo); }
int cublasGemmStridedBatchedEx(H *h, int ta, int tb, int m, int n, int k,
        const void *alpha, const void *A, int at, int lda, long long sa,
        const void *B, int bt, int ldb, long long sb, const void *beta, void *C, int ct,
        int ldc, long long sc, int batch, int compute, int algo) {
    int size = at == 0 ? 4 : 8;
    for (int b = 0; b < batch; b++) {
        int r = gemm1(h, ta, tb, m, n, k, alpha, (const char *)A + b * sa * size, at, lda,
                      (const char *)B + b * sb * size, bt, ldb, beta,
                      (char *)C + b * sc * size, ct, ldc, compute, algo);
        if (r) return r;
    }
    return 0; }
"""


class ShimHandle(ctypes.Structure):
    """The stand-in's handle: its current state and the state seen by the last GEMM."""
    _fields_ = [("stream", ctypes.c_void_p), ("ws", ctypes.c_void_p), ("wsz", ctypes.c_size_t),
                ("mode", ctypes.c_int), ("g_stream", ctypes.c_void_p), ("g_ws", ctypes.c_void_p),
                ("g_wsz", ctypes.c_size_t), ("g_mode", ctypes.c_int), ("calls", ctypes.c_int)]


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc_ = shutil.which("cc") or shutil.which("gcc")
    if cc_ is None:
        pytest.skip("no C compiler for the libcublas stand-in")
    d = tmp_path_factory.mktemp("shim")
    (d / "shim.c").write_text(SHIM)
    r = subprocess.run([cc_, "-shared", "-fPIC", "-O1", "-o", str(d / "libshim.so"),
                        str(d / "shim.c")], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"the libcublas stand-in does not compile: {r.stderr[-300:]}")
    lib = ctypes.CDLL(str(d / "libshim.so"))
    lib.shim_create.restype = ctypes.c_void_p
    return lib


class ShimGemm(EmulatedGemm):
    """The real CaptureGemm.gemm, its cuBLAS calls going to the C stand-in."""
    gemm = cc.CaptureGemm.gemm

    def __init__(self, lib):
        super().__init__()
        self.fn = cc._bind(lib)
        self.h = lib.shim_create()
        self.cp.cuda = types.SimpleNamespace(
            device=types.SimpleNamespace(get_cublas_handle=lambda: self.h))
        self.workspaces = {1: 0xABC00}
        self.state = ShimHandle.from_address(self.h)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa,sb,la,lb", [
    ((5, 7), (7, 4), "c", "c"), ((5, 7), (7, 4), "t", "t"), ((5, 7), (7, 4), "pad", "t"),
    ((3, 5, 7), (7, 4), "c", "t"), ((3, 5, 7), (3, 7, 4), "t", "pad"), ((7,), (7, 4), "c", "c")])
def test_ctypes_calls_reach_cublas_with_the_right_abi(shim, dtype, sa, sb, la, lb):
    g = ShimGemm(shim)
    rng = np.random.default_rng(4)
    _check(g, _view(rng, sa, dtype, la, g), _view(rng, sb, dtype, lb, g))
    st = g.state
    assert st.calls == int(np.prod(np.broadcast_shapes(sa[:-2], sb[:-2])))   # one per matrix
    assert (st.g_stream, st.g_ws, st.g_wsz, st.g_mode) == (1, 0xABC00, cc.WORKSPACE_BYTES, 0)
    assert (st.stream, st.mode, st.ws) == (0x77, 1, None)    # the handle as CuPy left it


def test_ctypes_cublas_error_is_reported_and_the_handle_restored(shim, monkeypatch):
    g = ShimGemm(shim)
    monkeypatch.setattr(cc, "GEMM_DEFAULT", 5)       # an algo the stand-in refuses
    a = g.own(np.ones((2, 3), np.float32))
    with pytest.raises(RuntimeError, match="cublasGemmEx failed with "
                                           "CUBLAS_STATUS_INVALID_VALUE during CUDA graph"):
        g.matmul(a, g.own(np.ones((3, 2), np.float32)))
    assert (g.state.stream, g.state.mode) == (0x77, 1)


def test_a_missing_cublas_symbol_is_reported_when_used(shim):
    class Lib:                      # the stand-in without the batched entry point
        _name = "libcublas.so.99"

        def __getattr__(self, name):
            if name == "cublasGemmStridedBatchedEx":
                raise AttributeError(name)
            return getattr(shim, name)
    g = ShimGemm(shim)
    g.fn = cc._bind(Lib())
    a, b = g.own(np.ones((2, 3), np.float32)), g.own(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(g.matmul(a, b), np.full((2, 2), 3, np.float32))
    with pytest.raises(RuntimeError, match="libcublas.so.99 has no cublasGemmStridedBatchedEx"):
        g.matmul(g.own(np.ones((2, 2, 3), np.float32)), b)
