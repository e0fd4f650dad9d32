"""cuBLAS GEMMs that CUDA stream capture accepts: gradkit's matmul, linear, bmm
(and conv on CUDA, which is a matmul) inside ``cupy.cuda.Stream.begin_capture``.

CuPy refuses every cuBLAS call while the current stream is capturing
(``cupy_backends.cuda.libs.cublas.setStream`` raises NotImplementedError "calling
cuBLAS API during stream capture is currently unsupported"), although cuBLAS
itself supports capture (NVIDIA cuBLAS docs, "CUDA Graphs support"; PyTorch
captures it). While the current stream is capturing, gradkit's CuPy backend
therefore calls cuBLAS itself, through ctypes, on CuPy's own handle:

- the library is the libcublas CuPy already loaded (``/proc/self/maps``, else
  ``cuda.pathfinder``, else ``ctypes.util.find_library``);
- the handle's stream is set to the capturing stream, its workspace to a buffer
  this module owns (32 MiB per device and stream, allocated with cudaMalloc on
  the first matmul run eagerly on that stream, i.e. before the capture, for the
  first ``PREALLOCATE_STREAMS`` streams, else at the capture itself, which
  CuPy's default relaxed capture mode allows; kept for the life of the process
  because captured graphs point into it), its
  pointer mode to host (alpha = 1, beta = 0 are captured by value);
- ``cublasGemmEx`` (one matrix) or ``cublasGemmStridedBatchedEx`` (a batch;
  broadcast batch dims are stride 0 when they collapse) computes row-major
  ``C = A @ B`` as column-major ``C^T = B^T A^T``; a transposed view is passed
  as it is (op T, its leading dimension from its strides); any other layout is
  copied to a contiguous array first (a kernel, capturable);
- afterwards the handle's pointer mode and stream are restored
  (``cublasSetStream`` also resets the workspace to cuBLAS's default pool), so
  CuPy's later calls are unaffected.

Dtypes: float16 (float32 compute, as CuPy), float32 (TF32 only when CuPy's
``CUPY_TF32`` asks for it, as CuPy), float64. Other dtypes take CuPy's own
matmul (it uses no cuBLAS for them). Outside a capture nothing changes: the
dispatcher (``make_matmul``) reads the current stream's pointer and, for a
non-default stream, asks ``cudaStreamIsCapturing`` (the legacy default stream
cannot be captured).

The argument mapping (``plan_gemm``) is pure Python and tested on the CPU
against a NumPy emulation of cuBLAS's column-major semantics
(tests/test_cublas_capture.py)."""
import ctypes
import ctypes.util
import os

from ..shapes import broadcast_shapes

OP_N, OP_T = 0, 1
POINTER_MODE_HOST = 0
GEMM_DEFAULT = -1
WORKSPACE_BYTES = 32 << 20          # cuBLAS docs: 32 MiB suits Hopper
PREALLOCATE_STREAMS = 4             # eager pre-allocation stops after this many streams
_INT_MAX = 2 ** 31 - 1
# dtype name -> (cudaDataType, cublasComputeType, ctypes scalar type for alpha/beta)
CUDA_R_16F, CUDA_R_32F, CUDA_R_64F = 2, 0, 1
COMPUTE_32F, COMPUTE_32F_FAST_TF32, COMPUTE_64F = 68, 77, 70
_TYPES = {"float16": (CUDA_R_16F, COMPUTE_32F, ctypes.c_float),
          "float32": (CUDA_R_32F, COMPUTE_32F, ctypes.c_float),
          "float64": (CUDA_R_64F, COMPUTE_64F, ctypes.c_double)}
_STATUS = {1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
           7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH",
           11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
           14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED"}


# ------------------------------------------------------- the argument mapping
def matrix_layout(rows, cols, srow, scol):
    """How a (rows, cols) matrix indexed ``[r, c] = base[r*srow + c*scol]``
    (strides in elements) reads as a column-major cuBLAS operand whose op
    yields its transpose (cols x rows): ``(OP_N, ld)`` when rows are contiguous
    (stored as the transpose, ld = srow), ``(OP_T, ld)`` when columns are
    (a transposed view: stored as itself, ld = scol); None when neither (copy
    it). The stride of a size-1 dim is free and chosen to fit."""
    if cols == 1:
        scol = 1
    if rows == 1:
        if scol == 1:
            srow = max(cols, 1)
        else:
            srow = 1
    if scol == 1 and srow >= max(1, cols) and srow <= _INT_MAX:
        return OP_N, srow
    if srow == 1 and scol >= max(1, rows) and scol <= _INT_MAX:
        return OP_T, scol
    return None


def batch_stride(shape, strides):
    """One stride (elements) that walks every batch dim in row-major order, or
    None when the dims do not collapse. Broadcast (all stride 0) gives 0."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        return 0
    for (n0, s0), (n1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * n1:
            return None
    return dims[-1][1]


def plan_gemm(a_shape, a_strides, b_shape, b_strides):
    """cuBLAS arguments for row-major ``C = a @ b`` into a new C-contiguous
    C of shape ``batch + (M, N)``. ``a`` is ``batch + (M, K)``, ``b`` is
    ``batch + (K, N)`` (batch dims already broadcast to the same shape),
    strides in elements; all of M, N, K, the batch are >= 1.

    Returns ``(plan, None)`` with the keyword arguments of ``gemm`` (cuBLAS's
    A operand is b, its B operand is a: C^T = b^T a^T), or ``(None, which)``
    with which in {"a", "b"}: the operand to copy to a contiguous array first."""
    M, K = a_shape[-2:]
    N = b_shape[-1]
    batch = a_shape[:-2]
    count = 1
    for n in batch:
        count *= n
    la = matrix_layout(M, K, a_strides[-2], a_strides[-1])
    sa = batch_stride(batch, a_strides[:-2])
    if la is None or sa is None:
        return None, "a"
    lb = matrix_layout(K, N, b_strides[-2], b_strides[-1])
    sb = batch_stride(batch, b_strides[:-2])
    if lb is None or sb is None:
        return None, "b"
    if max(M, N, K, count) > _INT_MAX:
        raise ValueError(f"matmul sizes {tuple(a_shape)} @ {tuple(b_shape)} exceed cuBLAS's "
                         "32-bit dimensions")
    return dict(transa=lb[0], transb=la[0], m=N, n=M, k=K, lda=lb[1], ldb=la[1], ldc=N,
                stride_a=sb, stride_b=sa, stride_c=M * N, batch=count), None


# ------------------------------------------------------------------ dispatch
def make_matmul(eager, captured, current_stream, is_capturing, prepare=None):
    """The backend's ``matmul(a, b)``: ``captured`` while the current stream
    (``current_stream().ptr``, 0 for the legacy default stream, which cannot be
    captured) is capturing, else ``eager``; ``prepare(ptr)`` runs on eager
    calls on a non-default stream (it allocates that stream's workspace before
    any capture). Injected callables keep it testable without a GPU."""
    def matmul(a, b):
        p = current_stream().ptr
        if p:
            if is_capturing(p):
                return captured(a, b)
            if prepare is not None:
                prepare(p)
        return eager(a, b)
    matmul.__doc__ = ("a @ b (cupy.matmul); while the current stream is capturing a CUDA "
                      "graph, cuBLAS through gradkit's capturable path (cublas_capture.py)")
    return matmul


# ---------------------------------------------------------------- the library
def find_libcublas():
    """Path of the libcublas.so this process loaded (CuPy's), else where
    cuda.pathfinder or ctypes finds it; None when none is found."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(" ")[-1]
                if os.path.basename(path).startswith("libcublas.so"):
                    return path
    except OSError:
        pass
    try:
        from cuda import pathfinder  # optional (CuPy 14's loader): imported lazily
        return pathfinder.load_nvidia_dynamic_lib("cublas").abs_path
    except Exception:
        pass
    return ctypes.util.find_library("cublas")


def _bind(lib):
    P, I, LL = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
    sig = {
        "cublasSetStream_v2": (P, P),
        "cublasGetStream_v2": (P, ctypes.POINTER(P)),
        "cublasSetWorkspace_v2": (P, P, ctypes.c_size_t),
        "cublasGetPointerMode_v2": (P, ctypes.POINTER(I)),
        "cublasSetPointerMode_v2": (P, I),
        "cublasGemmEx": (P, I, I, I, I, I, P, P, I, I, P, I, I, P, P, I, I, I, I),
        "cublasGemmStridedBatchedEx": (P, I, I, I, I, I, P, P, I, I, LL, P, I, I, LL, P, P,
                                       I, I, LL, I, I, I),
    }
    fns = {}
    for name, args in sig.items():
        f = getattr(lib, name, None)
        if f is None:   # reported when called: a 2-D capture needs no batched GEMM
            fns[name] = _missing(name, lib)
            continue
        f.argtypes = list(args)
        f.restype = ctypes.c_int
        fns[name] = f
    return fns


def _missing(name, lib):
    def call(*args):
        raise RuntimeError(f"{lib._name} has no {name}: gradkit's capturable cuBLAS path "
                           "cannot run this GEMM inside a CUDA graph capture")
    return call


class CaptureGemm:
    """The capturable GEMM of one CuPy backend (one device). Built lazily, on
    the first matmul on a non-default stream."""

    def __init__(self, cp, device_index):
        self.cp = cp
        self.device_index = device_index
        with cp.cuda.Device(device_index):
            cp.cuda.device.get_cublas_handle()   # CuPy loads libcublas and makes its handle
        path = find_libcublas()
        if path is None:
            raise RuntimeError("libcublas is not loaded and not found: CUDA graph capture of "
                               "matmul needs CuPy's cuBLAS")
        self.path = path
        self.fn = _bind(ctypes.CDLL(path))
        self.workspaces = {}   # stream ptr -> device pointer (kept: graphs point into it)

    # ---- workspace
    def prepare(self, stream_ptr):
        """Allocate the stream's workspace now (outside a capture)."""
        if stream_ptr not in self.workspaces:
            with self.cp.cuda.Device(self.device_index):
                self.workspaces[stream_ptr] = self.cp.cuda.runtime.malloc(WORKSPACE_BYTES)

    # ---- cuBLAS
    def _check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what} failed with {_STATUS.get(status, status)} during CUDA "
                               "graph capture (gradkit's capturable cuBLAS path)")

    def gemm(self, ptr_a, ptr_b, ptr_c, dtype_name, stream_ptr, *, transa, transb, m, n, k,
             lda, ldb, ldc, stride_a, stride_b, stride_c, batch):
        """Column-major ``C = op(A) op(B)`` (alpha 1, beta 0) on ``stream_ptr``
        with CuPy's handle; restores the handle's pointer mode and stream."""
        f = self.fn
        dt, compute, scalar = _TYPES[dtype_name]
        if dtype_name == "float32" and _tf32():
            compute = COMPUTE_32F_FAST_TF32
        alpha, beta = scalar(1.0), scalar(0.0)
        if stream_ptr not in self.workspaces:   # not warmed up: cudaMalloc (relaxed capture)
            self.prepare(stream_ptr)
        h = ctypes.c_void_p(self.cp.cuda.device.get_cublas_handle())
        old_stream, old_mode = ctypes.c_void_p(), ctypes.c_int()
        self._check(f["cublasGetStream_v2"](h, ctypes.byref(old_stream)), "cublasGetStream")
        self._check(f["cublasGetPointerMode_v2"](h, ctypes.byref(old_mode)),
                    "cublasGetPointerMode")
        try:
            self._check(f["cublasSetStream_v2"](h, ctypes.c_void_p(stream_ptr)), "cublasSetStream")
            self._check(f["cublasSetWorkspace_v2"](h, ctypes.c_void_p(self.workspaces[stream_ptr]),
                                                   WORKSPACE_BYTES), "cublasSetWorkspace")
            self._check(f["cublasSetPointerMode_v2"](h, POINTER_MODE_HOST),
                        "cublasSetPointerMode")
            A, B, C = ctypes.c_void_p(ptr_a), ctypes.c_void_p(ptr_b), ctypes.c_void_p(ptr_c)
            if batch == 1:
                st = f["cublasGemmEx"](h, transa, transb, m, n, k, ctypes.byref(alpha),
                                       A, dt, lda, B, dt, ldb, ctypes.byref(beta),
                                       C, dt, ldc, compute, GEMM_DEFAULT)
                self._check(st, "cublasGemmEx")
            else:
                st = f["cublasGemmStridedBatchedEx"](
                    h, transa, transb, m, n, k, ctypes.byref(alpha), A, dt, lda, stride_a,
                    B, dt, ldb, stride_b, ctypes.byref(beta), C, dt, ldc, stride_c, batch,
                    compute, GEMM_DEFAULT)
                self._check(st, "cublasGemmStridedBatchedEx")
        finally:
            f["cublasSetPointerMode_v2"](h, old_mode.value)
            f["cublasSetStream_v2"](h, old_stream)   # also resets the workspace to the default

    # ---- numpy-style matmul
    def _ptr(self, x):
        return x.data.ptr

    def _stream_ptr(self):
        return self.cp.cuda.get_current_stream().ptr

    def matmul(self, a, b):
        """``cupy.matmul(a, b)`` for floating arrays, through cuBLAS on the
        current (capturing) stream."""
        cp = self.cp
        dt = cp.result_type(a.dtype, b.dtype)
        if dt.name not in _TYPES or a.ndim == 0 or b.ndim == 0:
            return cp.matmul(a, b)     # integers, bool, complex: CuPy's own kernels (no cuBLAS)
        a = a if a.dtype == dt else a.astype(dt)
        b = b if b.dtype == dt else b.astype(dt)
        va, vb = a.ndim == 1, b.ndim == 1
        if va:
            a = a.reshape(1, -1)
        if vb:
            b = b.reshape(-1, 1)
        M, K = a.shape[-2:]
        K2, N = b.shape[-2:]
        if K != K2:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match: "
                             f"the inner dimensions are {K} and {K2}")
        batch = broadcast_batch(a.shape[:-2], b.shape[:-2])
        a = cp.broadcast_to(a, batch + (M, K))
        b = cp.broadcast_to(b, batch + (K, N))
        out = cp.empty(batch + (M, N), dtype=dt)
        if out.size and K == 0:
            out.fill(0)
        elif out.size:
            isz = dt.itemsize
            for _ in range(3):
                plan, which = plan_gemm(a.shape, _elems(a.strides, isz),
                                        b.shape, _elems(b.strides, isz))
                if plan is not None:
                    break
                if which == "a":
                    a = cp.ascontiguousarray(a)
                else:
                    b = cp.ascontiguousarray(b)
            self.gemm(self._ptr(b), self._ptr(a), self._ptr(out), dt.name, self._stream_ptr(),
                      **plan)
        if va and vb:
            return out.reshape(batch)
        if va:
            return out.reshape(batch + (N,))
        if vb:
            return out.reshape(batch + (M,))
        return out


def _elems(strides, itemsize):
    """Byte strides as element strides; a stride that is not a whole number of
    elements becomes -1 (never a valid layout: the operand gets copied)."""
    return tuple(s // itemsize if s % itemsize == 0 else -1 for s in strides)


def broadcast_batch(s, t):
    """NumPy's broadcast of two batch shapes (matmul's leading dims)."""
    out = broadcast_shapes(s, t)
    if out is None:
        raise ValueError(f"matmul: batch dimensions {tuple(s)} and {tuple(t)} do not broadcast")
    return out


def _tf32():
    """CuPy's rule for float32 GEMMs (its get_compute_type): TF32 when the
    CUPY_TF32 environment variable is a positive integer."""
    try:
        return int(os.getenv("CUPY_TF32", "0")) > 0
    except ValueError:
        return False


def backend_matmul(cp, device_index):
    """The CuPy backend's matmul kernel: CuPy's own outside capture, this
    module's cuBLAS path while the current stream captures a CUDA graph."""
    if getattr(cp.cuda.runtime, "is_hip", False):
        return cp.matmul                  # ROCm: no stream capture path here
    state = {}

    def gemm():
        g = state.get("g")
        if g is None:
            g = state["g"] = CaptureGemm(cp, device_index)
        return g

    def captured(a, b):
        return gemm().matmul(a, b)

    seen = set()

    def prepare(ptr):
        if ptr in seen or len(seen) >= PREALLOCATE_STREAMS:   # a program making streams
            return      # by the hundred must not pay 32 MiB each (capture allocates), nor
        seen.add(ptr)   # grow this set
        try:
            gemm().prepare(ptr)
        except Exception:   # never break eager matmul: the capture path retries and reports
            pass

    return make_matmul(cp.matmul, captured, cp.cuda.get_current_stream,
                       cp.cuda.runtime.streamIsCapturing, prepare)
