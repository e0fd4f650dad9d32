"""The "cpu" backend: NumPy, with fast paths (ufuncs with ``out=``, ``np.add.at``)."""
import threading

import numpy as np

from .base import Backend, ERF_A, ERF_B, ERF_C, _horner
from .conv_numpy import NumpyConvKernels
from .seq_kernels import NumpySeqKernels
from .norm_kernels import NumpyNormKernels
from .optim_numpy import NumpyOptimKernels
from . import cpu_memory

# A steady-state step reuses freed heap instead of taking fresh pages from the OS
# (glibc mallopt; see cpu_memory for when it is skipped and how to turn it off).
cpu_memory.tune()

# ufuncs turn 0-d results into NumPy scalars; ``out=...`` (NumPy >= 2) keeps them
# arrays at no cost. On NumPy 1.26 the wrapper converts.
try:
    np.negative(np.float64(0.0), out=...)
    _ELLIPSIS_OUT = True
except TypeError:  # pragma: no cover - numpy < 2
    _ELLIPSIS_OUT = False

_ndarray = np.ndarray
_asarray = np.asarray
_add_reduce = np.add.reduce


def _u1(uf):
    if _ELLIPSIS_OUT:
        def f(a):
            return uf(a, out=...)
    else:  # pragma: no cover
        def f(a):
            r = uf(a)
            return r if r.__class__ is _ndarray else _asarray(r)
    f.__name__ = uf.__name__
    return f


def _weak(s, other):
    """NumPy < 2 promotes a 0-d array with a Python scalar by value (float32 * 0.5
    -> float64); NumPy 2 (NEP 50) and torch keep float32. Give the scalar the
    array's dtype where that is a same-kind cast."""
    if other.__class__ is _ndarray and other.ndim == 0:
        k = other.dtype.kind
        if (s.__class__ is float and k == "f") or (s.__class__ is int and k in "fiu"):
            return other.dtype.type(s)
    return s


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_S32, _S64 = {}, {}   # {Python number: 0-d array} of float32 and of float64
_Z32, _Z64 = np.zeros((), _F32), np.zeros((), _F64)
_Z32.flags.writeable = _Z64.flags.writeable = False
_F32_MAX = float(np.finfo(np.float32).max)


def _scalar(s, arr):
    """The Python number ``s`` as a cached 0-d array of ``arr``'s dtype when that
    is float32/float64 (else ``s`` itself). NumPy converts a Python scalar operand
    on every call (NEP 50, ~3x a 16-element multiply); the cast is the same one
    NEP 50 makes, so results are bit-identical. Values the cast would overflow
    (or NaN) are not cached: NumPy keeps its own handling and warnings."""
    dt = arr.dtype
    cache = _S32 if dt is _F32 else (_S64 if dt is _F64 else None)
    if cache is None:
        return s
    if not s:    # 0.0 and -0.0 are equal keys: float zeros keep NumPy's own
        # conversion; the int 0 (no sign) has its own constant
        return (_Z32 if cache is _S32 else _Z64) if s.__class__ is int else s
    z = cache.get(s)
    if z is None:
        if not -_F32_MAX <= s <= _F32_MAX:
            return s
        if len(cache) > 256:   # a loop over many constants: start over
            cache.clear()
        z = cache[s] = np.array(s, dtype=dt)
        z.flags.writeable = False
    return z


def _u2s(uf):
    """``_u2`` for the arithmetic ufuncs: a Python scalar operand of a float
    array becomes a cached 0-d array first (``_scalar``)."""
    if not _ELLIPSIS_OUT:  # pragma: no cover - numpy < 2
        return _u2(uf)

    def f(a, b):
        c = b.__class__
        if c is float or c is int:
            if a.__class__ is _ndarray:
                # _scalar's cache hit inlined (one call less per op on the W1 path)
                dt = a.dtype
                z = _S32.get(b) if dt is _F32 else (_S64.get(b) if dt is _F64 else None)
                b = _scalar(b, a) if z is None or not b else z
        else:
            c = a.__class__
            if (c is float or c is int) and b.__class__ is _ndarray:
                a = _scalar(a, b)
        return uf(a, b, out=...)
    f.__name__ = uf.__name__
    return f


def _u2(uf):
    if _ELLIPSIS_OUT:
        def f(a, b):
            return uf(a, b, out=...)
    else:  # pragma: no cover
        def f(a, b):
            if b.__class__ is float or b.__class__ is int:
                b = _weak(b, a)
            elif a.__class__ is float or a.__class__ is int:
                a = _weak(a, b)
            r = uf(a, b)
            return r if r.__class__ is _ndarray else _asarray(r)
    f.__name__ = uf.__name__
    return f


def _arr(r):
    return r if r.__class__ is _ndarray else _asarray(r)


if _ELLIPSIS_OUT:
    def _fresh(uf, a, b):
        """uf(a, b) as a new ndarray (also for 0-d inputs), safe as ``out=``."""
        return uf(a, b, out=...)
else:  # pragma: no cover
    def _fresh(uf, a, b):
        if b.__class__ is float or b.__class__ is int:
            b = _weak(b, a)
        elif a.__class__ is float or a.__class__ is int:
            a = _weak(a, b)
        return _arr(uf(a, b))


_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _select(keep, g, out=None):
    """``g`` where ``keep`` (a bool array that broadcasts to ``g``), +0 elsewhere,
    bit-exact (inf and NaN in ``g`` are dropped, not multiplied): ``g``'s bits
    times 0 or 1 in the unsigned integer type of its size, ~1.1x a float
    multiply where ``np.where`` costs ~4x. ``out=g`` writes into ``g``."""
    u = _UINT.get(g.dtype.itemsize) if g.dtype.kind == "f" else None
    if u is None:
        r = _arr(np.where(keep, g, np.zeros((), g.dtype)))
        if out is None:
            return r
        out[...] = r
        return out
    gu = g.view(u)
    r = np.multiply(gu, np.asarray(keep).view(np.uint8), dtype=u,
                    out=None if out is None else gu)
    return _arr(r).view(g.dtype)


def _relu_keep(y):
    """Where torch's threshold_backward keeps the gradient: not ``y <= 0`` (NaN
    ``y`` included)."""
    m = _arr(np.less_equal(y, _scalar(0, y)))
    return np.logical_not(m, out=m)


def _extreme(uf, x, axis, keepdims=False):
    """``uf.reduce`` (np.maximum or np.minimum) of ``x`` over ``axis`` (None,
    an int or a tuple). NumPy reduces each short contiguous row in an inner
    loop of its own (~80 ns a row: 20 us for 256 rows of 10, a classifier's
    logits), so over the last axis of at most 32 elements of a C-contiguous
    array of many rows it reduces the transposed copy instead, one vectorised
    pass per column. Max and min are exact in any order: the same result."""
    if axis.__class__ is tuple and len(axis) == 1:
        axis = axis[0]
    if axis.__class__ is int and x.ndim >= 2 and (axis == -1 or axis == x.ndim - 1):
        n = x.shape[-1]
        if 2 <= n <= 32 and x.size >= 32 * n and x.flags.c_contiguous:
            r = uf.reduce(np.ascontiguousarray(x.reshape(-1, n).T), axis=0)
            return r.reshape(x.shape[:-1] + ((1,) if keepdims else ()))
    return _arr(uf.reduce(x, axis=axis, keepdims=keepdims))


class NumpyBackend(NumpyConvKernels, NumpySeqKernels, NumpyNormKernels, NumpyOptimKernels,
                   Backend):
    type = "cpu"
    # donation (base.Backend.donate_min) from 32K elements (128 KiB in float32):
    # smaller arrays come from the allocator's hot bins, and W1's small ops skip
    # the checks
    donate_min = 1 << 15

    def __init__(self):
        super().__init__(np, "cpu")
        self.xp_device = None
        for name, uf in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                         ("div", np.true_divide)):
            setattr(self, name, _u2s(uf))
        for name, uf in (("pow", np.power),
                         ("maximum", np.maximum), ("minimum", np.minimum),
                         ("eq", np.equal), ("ne", np.not_equal), ("lt", np.less),
                         ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                         ("logical_and", np.logical_and), ("logical_or", np.logical_or)):
            setattr(self, name, _u2(uf))
        for name, uf in (("neg", np.negative), ("exp", np.exp), ("log", np.log),
                         ("sqrt", np.sqrt), ("abs", np.abs), ("sin", np.sin),
                         ("cos", np.cos), ("tanh", np.tanh), ("sign", np.sign),
                         ("log1p", np.log1p), ("expm1", np.expm1), ("tan", np.tan),
                         ("square", np.square), ("reciprocal", np.reciprocal),
                         ("logical_not", np.logical_not), ("isfinite", np.isfinite),
                         ("floor", np.floor)):
            setattr(self, name, _u1(uf))
        self.dtypes = {n: np.dtype(n) for n in (
            "float16", "float32", "float64", "int8", "int16", "int32", "int64",
            "uint8", "bool")}
        self._index_dtypes()
        if not _ELLIPSIS_OUT:  # pragma: no cover - NumPy < 2: keep 0-d dtypes (NEP 50)
            def where(c, a, b):
                if a.__class__ in (float, int):
                    a = _weak(a, b)
                if b.__class__ in (float, int):
                    b = _weak(b, a)
                return _arr(np.where(c, a, b))
            self.where = where
        self.rng = np.random.default_rng()
        self._tls = threading.local()

    # meta
    def strides(self, a):
        return a.strides

    def is_floating(self, dt):
        return dt.kind == "f"

    def is_integral(self, dt):
        return dt.kind in "iu"

    # host transfer
    def to_host(self, a):
        return np.asarray(a)

    def from_host(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def check_index(self, idx, lo, hi, op, ignore=None):
        """On the host the check is free: raise at once."""
        if idx.size:
            bad = (idx < lo) | (idx >= hi)
            if ignore is not None:
                bad &= idx != ignore
            if bad.any():
                raise IndexError(self._index_msg(idx, lo, hi, op, ignore))

    def asarray(self, obj, dtype=None):
        return np.asarray(obj, dtype=dtype)

    def item(self, a):
        return a.item()

    def copy(self, a):
        return np.array(a, copy=True, order="K")

    def astype(self, a, dtype):
        return a.astype(dtype)

    # creation without the array-API ``device=`` keyword (NumPy 1.26 lacks it)
    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        return np.ones(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def arange(self, start, stop, step, dtype):
        return np.arange(start, stop, step, dtype=dtype)

    def linspace(self, start, stop, num, dtype):
        return np.linspace(start, stop, num, dtype=dtype)

    def eye(self, n, m, dtype):
        return np.eye(n, m, dtype=dtype)

    # random
    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def rand(self, shape, dtype):
        return self.rng.random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64).astype(dtype, copy=False)

    def randn(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64).astype(dtype, copy=False)

    def randint(self, low, high, shape, dtype):
        return self.rng.integers(low, high, size=shape, dtype=dtype)

    # elementwise fast paths
    def rsqrt(self, x):
        r = _arr(np.sqrt(x))
        return np.divide(_scalar(1, r), r, out=r)

    def sigmoid(self, x):
        # stable: 1/(1+exp(-x)) for x>=0, exp(x)/(1+exp(x)) for x<0, via one exp
        e = _arr(np.exp(-np.abs(x)))
        out = _arr(np.where(x >= _scalar(0, x), _scalar(1.0, e), e)).astype(x.dtype, copy=False)
        np.divide(out, np.add(_scalar(1.0, e), e, out=e), out=out)
        return out

    def relu(self, x):
        return np.maximum(x, _scalar(0, x), out=...) if _ELLIPSIS_OUT else _arr(np.maximum(x, 0))

    def clamp(self, x, lo, hi):
        return _arr(np.clip(x, lo, hi))

    def softmax(self, x, dim):
        e = _fresh(np.subtract, x, _extreme(np.maximum, x, dim, True))
        np.exp(e, out=e)
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def gelu(self, x, approximate="none"):
        if x.dtype == np.float16:  # x^3 overflows float16: compute in float32, as torch
            return self.gelu(x.astype(np.float32), approximate).astype(np.float16)
        if approximate == "tanh":
            t = _fresh(np.multiply, x, x)                  # tanh(c x (1 + k x^2))
            t *= 0.044715
            t += 1
            t *= x
            t *= 0.7978845608028654
            np.tanh(t, out=t)
        else:
            t = self.erf(_fresh(np.multiply, x, 0.7071067811865476))
        t += 1
        t *= x
        t *= 0.5
        return t

    def gelu_backward(self, x, g, approximate="none"):
        if x.dtype == np.float16:  # x^2 overflows float16 for |x| > 256: float32 as torch
            return self.gelu_backward(x.astype(np.float32), g.astype(np.float32),
                                      approximate).astype(np.float16)
        if approximate == "tanh":
            t = _fresh(np.multiply, x, x)
            du = t * (3 * 0.044715 * 0.7978845608028654)   # c (1 + 3 k x^2)
            du += 0.7978845608028654
            t *= 0.044715
            t += 1
            t *= x
            t *= 0.7978845608028654
            np.tanh(t, out=t)                              # t = tanh(u)
            r = t * t
            np.subtract(1, r, out=r)
            r *= du
            r *= x                                         # x (1 - t^2) du
            t += 1
            t += r
            t *= 0.5
        else:
            p = _fresh(np.multiply, x, x)
            p *= -0.5
            np.exp(p, out=p)
            p *= 0.3989422804014327 * 1.0
            p *= x                                         # x pdf(x)
            t = self.erf(_fresh(np.multiply, x, 0.7071067811865476))
            t += 1
            t *= 0.5
            t += p
        t *= g
        return t

    def tanh_backward(self, y, g):
        t = _fresh(np.multiply, y, y)
        if t.size == 1:   # in place on one element costs NumPy ~2x a fresh result
            return _fresh(np.multiply, _fresh(np.subtract, _scalar(1, t), t), g)
        np.subtract(_scalar(1, t), t, out=t)   # a cached constant: ~300 ns less per call
        np.multiply(t, g, out=t)
        return t

    # donating forms (gradkit.ops.core.donating): the same ufunc calls, in the
    # order the forms above make them, into a buffer the engine gave up
    def tanh_backward_into_y(self, y, g):
        """``tanh_backward(y, g)`` computed in ``y``'s own buffer."""
        if y.shape != g.shape or y.dtype != g.dtype:
            return self.tanh_backward(y, g)
        np.multiply(y, y, out=y)
        np.subtract(_scalar(1, y), y, out=y)
        np.multiply(y, g, out=y)
        return y

    def relu_backward_into_g(self, y, g):
        """``relu_backward(y, g)`` computed in ``g``'s own buffer."""
        if y.shape != g.shape:
            return self.relu_backward(y, g)
        return _select(_relu_keep(y), g, out=g)

    def into(self, uf, a, b):
        """``uf(a, b)`` (multiply or divide) written into ``a``, when the result has
        ``a``'s shape and dtype without a cast; else None (the caller computes it
        fresh). ``b``: a Python number (for a float/complex ``a``) or an array of
        ``a``'s dtype that broadcasts to ``a``."""
        c = b.__class__
        if c is float or c is int:
            if a.dtype.kind not in "fc":
                return None
        elif c is not _ndarray or b.dtype != a.dtype or (
                b.shape != a.shape and (b.ndim > a.ndim
                                        or np.broadcast_shapes(a.shape, b.shape) != a.shape)):
            return None
        return uf(a, b, out=a)

    def sigmoid_backward(self, y, g):
        t = _fresh(np.subtract, _scalar(1, y), y)
        np.multiply(t, y, out=t)
        np.multiply(t, g, out=t)
        return t

    def relu_backward(self, y, g):
        # as torch's threshold_backward: 0 where y <= 0 (also for an inf or NaN g,
        # where a multiply by the mask gives NaN), g elsewhere (NaN y included)
        return _select(_relu_keep(y), g)

    def sqrt_backward(self, y, g):
        t = _fresh(np.multiply, y, _scalar(2, y))
        np.divide(g, t, out=t)
        return t

    def mask_mul(self, g, m):
        # a select, not a multiply: an inf or NaN g where m is False gives 0
        return _select(m, g)

    def erf(self, x):
        # Backend.erf's pieces, each evaluated only on the elements it covers
        # (scipy is not a dependency; its erf agrees with this to ~3e-16)
        a = np.abs(x)
        y = np.ones_like(a)
        m = a < 1.0
        if m.any():
            am = a[m]
            y[m] = am * _horner(ERF_A, am * am * 2.0 - 1.0)
        for lo, hi, c, t in ((1.0, 2.5, ERF_B, lambda u: (u - 0.4) * (1.0 / 0.3) - 1.0),
                             (2.5, 6.0, ERF_C, lambda u: (u - 1.0 / 6.0) * (12.0 / 1.4) - 1.0)):
            m = (a >= lo) & (a < hi)
            if m.any():
                am = a[m]
                u = 1.0 / am
                y[m] = 1.0 - np.exp(-am * am) * u * _horner(c, t(u))
        y[np.isnan(a)] = np.nan
        return np.copysign(y, x, out=y)

    # reductions: NumPy returns scalars for full reductions; keep arrays
    def sum(self, x, dim=None, keepdim=False):
        # np.add.reduce is np.sum without its Python wrapper (~2 us a call): the
        # same dtype rules (small integers and bool to the platform integer)
        return _arr(_add_reduce(x, axis=dim, keepdims=keepdim))

    def amax(self, x, dim=None, keepdim=False):
        return _extreme(np.maximum, x, dim, keepdim)

    def amin(self, x, dim=None, keepdim=False):
        return _extreme(np.minimum, x, dim, keepdim)

    def argmax(self, x, dim=None, keepdim=False):
        return _arr(np.argmax(x, axis=dim, keepdims=keepdim))

    def argmin(self, x, dim=None, keepdim=False):
        return _arr(np.argmin(x, axis=dim, keepdims=keepdim))

    def all(self, x, dim=None, keepdim=False):
        return _arr(np.all(x, axis=dim, keepdims=keepdim))

    def any(self, x, dim=None, keepdim=False):
        return _arr(np.any(x, axis=dim, keepdims=keepdim))

    def prod(self, x, dim=None, keepdim=False):
        return _arr(np.prod(x, axis=dim, keepdims=keepdim))

    def cumsum(self, x, dim):
        return np.cumsum(x, axis=dim)

    def argsort_stable(self, x, dim):
        return np.argsort(x, axis=dim, kind="stable")   # NumPy 1.26 has no stable=

    def cross_entropy_index(self, x, t, keep, reduction):
        z = _fresh(np.subtract, x, _extreme(np.maximum, x, 1, True))
        lse = np.exp(z).sum(axis=1, keepdims=True)
        np.log(lse, out=lse)
        lp = z[np.arange(z.shape[0]), t]   # take_along_axis costs ~25 us of Python here
        np.subtract(lp, lse.reshape(-1), out=lp)
        loss = np.multiply(lp, keep)
        np.negative(loss, out=loss)
        if reduction == "none":
            return loss
        total = _asarray(loss.sum())
        return total if reduction == "sum" else _arr(total / keep.sum())

    def put_along_dim(self, shape, idx, g, dim, keepdim):
        out = np.zeros(shape, dtype=g.dtype)
        if len(shape) == 2 and (dim == 1 or dim == -1):
            # one index per row: plain fancy indexing (put_along_axis costs ~25 us of Python)
            out[np.arange(shape[0]), idx.reshape(-1)] = g.reshape(-1)
            return out
        if not keepdim:
            idx = np.expand_dims(idx, dim)
            g = np.expand_dims(g, dim)
        np.put_along_axis(out, idx, g, axis=dim)
        return out

    # shape
    def reshape(self, x, shape):
        return x.reshape(shape)

    def unsqueeze(self, x, dim):
        # a reshape (always a view) instead of np.expand_dims's Python (~3 us)
        n = x.ndim
        d = dim + n + 1 if dim < 0 else dim
        if not 0 <= d <= n:
            return np.expand_dims(x, dim)   # its error
        s = x.shape
        return x.reshape(s[:d] + (1,) + s[d:])

    def permute(self, x, dims):
        return x.transpose(dims)

    def mT(self, x):
        return x.swapaxes(-1, -2)

    def expand(self, x, shape):
        return np.broadcast_to(x, shape)

    def cat(self, xs, dim):
        return np.concatenate(xs, axis=dim)

    def flip(self, x, dims):
        return np.flip(x, axis=dims)

    def matmul(self, a, b):
        # numpy 1.26 skips BLAS for stride-0 (broadcast) operands: 100x slower
        if not a.flags.c_contiguous and not a.flags.f_contiguous:
            a = np.ascontiguousarray(a)
        if not b.flags.c_contiguous and not b.flags.f_contiguous:
            b = np.ascontiguousarray(b)
        if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
            # (..., m, k) @ (k, n): one GEMM over the folded batch
            rows = 1   # not -1: a reshape can't infer it when k = 0
            for d in a.shape[:-1]:
                rows *= d
            return np.matmul(a.reshape(rows, a.shape[-1]), b).reshape(a.shape[:-1] + (b.shape[1],))
        return _arr(np.matmul(a, b))

    def scatter_add(self, out, idx, g):
        np.add.at(out, idx, g)
        return out

    def getitem(self, x, idx):
        return _arr(x[idx])

    def iadd(self, a, b):
        np.add(a, b, out=a)
        return a
