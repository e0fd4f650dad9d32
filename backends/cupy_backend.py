"""The "cuda[:N]" backend: CuPy, imported only when a CUDA device is asked for.

Fast paths are memoized ``cupy.ElementwiseKernel``s (one launch, no temporaries)
for the elementwise backward kernels (through ``cuda_vector``'s RawKernels when
every operand is C-contiguous with one shape: several elements per thread, vector
loads) and ``cupyx.scatter_add`` for indexing backward. Every kernel that is not
overridden here falls back to the reference in ``base.py``, written once against
the namespace.
"""
import functools

from . import cuda_vector
from .base import Backend, check_host_sync as _check_host_sync
from .conv_cupy import CupyConvKernels
from .cublas_capture import backend_matmul as _capturable_matmul
from .seq_kernels import CupySeqKernels
from .norm_cupy import CupyNormKernels, warm_raw_kernels


def _spec(in_params, out_params, operation, name, preamble=""):
    return {"in_params": in_params, "out_params": out_params, "operation": operation,
            "name": name, "preamble": preamble}


@functools.lru_cache(maxsize=None)
def _kernels():
    """Compile-on-first-use kernel table, shared by every CUDA device."""
    import cupy as cp  # optional dependency (CUDA): imported lazily

    # no FMA contraction: the same bits as the vector path (cuda_vector.OPTIONS)
    k = {n: cp.ElementwiseKernel(**kw, options=cuda_vector.OPTIONS)
         for n, kw in kernel_specs().items()}
    k["index_out_of_range"] = cp.ReductionKernel(**INDEX_CHECK)
    return k


@functools.lru_cache(maxsize=None)
def _vector_kernels():
    """``_kernels()`` with each elementwise kernel behind a ``cuda_vector.VectorKernel``
    (the same spec as a RawKernel for contiguous operands, the ElementwiseKernel else)."""
    import cupy as cp  # optional dependency (CUDA): imported lazily

    return cuda_vector.wrap(_kernels(), kernel_specs(), cp)


#: the bounds check of integer-array indices (Backend.check_index): one fused
#: reduction, its 0-d bool result stays on the device until a sync reads it
INDEX_CHECK = dict(
    in_params="T x, int64 lo, int64 hi, int64 ign, bool has_ign, int64 seq, int64 none",
    out_params="int64 y",
    map_expr="(x < lo || x >= hi) && !(has_ign && x == ign)", reduce_expr="a || b",
    post_map_expr="y = a ? seq : none", identity="false", name="gk_index_out_of_range",
    reduce_type="bool")


def kernel_specs():
    """Every fused kernel as ``cupy.ElementwiseKernel`` keyword arguments
    (in_params, out_params, operation, name, preamble), without importing CuPy:
    the NVRTC and host-compiler tests build the same kernels from this table."""
    ek = _spec
    return {
        "tanh_backward": ek("T y, T g", "T gx", "gx = g * ((T)1 - y * y)", "gk_tanh_bwd"),
        "sigmoid_backward": ek("T y, T g", "T gx", "gx = g * y * ((T)1 - y)", "gk_sigmoid_bwd"),
        "relu_backward": ek("T y, T g", "T gx", "gx = y <= (T)0 ? (T)0 : g", "gk_relu_bwd"),
        "sqrt_backward": ek("T y, T g", "T gx", "gx = g / (y + y)", "gk_sqrt_bwd"),
        "sigmoid": ek("T x", "T y",
                      "T e = exp(-fabs(x)); y = x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e)",
                      "gk_sigmoid"),
        "relu": ek("T x", "T y", "y = x < (T)0 ? (T)0 : x", "gk_relu"),   # NaN stays NaN
        "mask_mul": ek("T g, bool m", "T gx", "gx = m ? g : (T)0", "gk_mask_mul"),
        "exp_sub": ek("T x, T m", "T e", "e = exp(x - m)", "gk_exp_sub"),   # softmax
        "rsqrt": ek("T x", "T y", "y = rsqrt(x)", "gk_rsqrt"),
        "gelu_tanh": ek(
            "T x", "T y",
            "T u = (T)0.7978845608028654 * (x + (T)0.044715 * x * x * x);"
            "y = (T)0.5 * x * ((T)1 + tanh(u))", "gk_gelu_tanh"),
        # A: float for half (x^2 overflows float16 for |x| > 256), as torch's opmath
        "gelu_tanh_backward": ek(
            "T x, T g", "T gx",
            "typedef gk_acc<T>::type A; A xv = (A)x;"
            "A x2 = xv * xv; A t = tanh((A)0.7978845608028654 * xv * ((A)1 + (A)0.044715 * x2));"
            "A du = (A)0.7978845608028654 * ((A)1 + (A)0.134145 * x2);"
            "gx = (T)((A)g * ((A)0.5 * ((A)1 + t) + (A)0.5 * xv * ((A)1 - t * t) * du))",
            "gk_gelu_tanh_bwd", preamble=_ACC),
        "gelu_erf": ek("T x", "T y", "y = (T)0.5 * x * ((T)1 + erf(x * (T)0.7071067811865476))",
                       "gk_gelu_erf"),
        "gelu_erf_backward": ek(
            "T x, T g", "T gx",
            "T cdf = (T)0.5 * ((T)1 + erf(x * (T)0.7071067811865476));"
            "T pdf = exp((T)-0.5 * x * x) * (T)0.3989422804014327;"
            "gx = g * (cdf + x * pdf)", "gk_gelu_erf_bwd"),
        # optimizer steps: one fused kernel per parameter per step, in place on
        # the parameter and its state (outputs passed in), host scalars as float64
        "sgd_update": ek(
            "T g, float64 lr, float64 wd, bool maximize", "T p",
            "typedef gk_acc<T>::type A;" + _GRAD_TERM + "p = (T)(pv - (A)lr * d);",
            "gk_sgd_update", preamble=_ACC),
        "sgd_momentum_update": ek(
            "T g, float64 lr, float64 wd, float64 mom, float64 damp1, bool nesterov, "
            "bool maximize, bool first", "T p, T buf",
            "typedef gk_acc<T>::type A;" + _GRAD_TERM + """
            A b = first ? d : (A)buf * (A)mom + (A)damp1 * d;
            buf = (T)b;
            d = nesterov ? d + (A)mom * b : b;
            p = (T)(pv - (A)lr * d);""",
            "gk_sgd_momentum_update", preamble=_ACC),
        "adam_update": ek(
            _ADAM_IN, "T p, T m, T v",
            "typedef gk_acc<T>::type A;" + _ADAM_MOMENTS + """
            A den = sqrt(vv) / (A)bc2_sqrt + (A)eps;
            p = (T)(pv - (A)step_size * (mm / den));""",
            "gk_adam_update", preamble=_ACC),
        "adam_amsgrad_update": ek(
            _ADAM_IN, "T p, T m, T v, T vmax",
            "typedef gk_acc<T>::type A;" + _ADAM_MOMENTS + """
            A vo = (A)vmax;
            A vm = vo > vv ? vo : vv;
            vmax = (T)vm;
            A den = sqrt(vm) / (A)bc2_sqrt + (A)eps;
            p = (T)(pv - (A)step_size * (mm / den));""",
            "gk_adam_amsgrad_update", preamble=_ACC),
    }


# Optimizer kernels compute in float for float16/float32 and in double for float64.
_ACC = """
template <typename X> struct gk_acc { typedef float type; };
template <> struct gk_acc<double> { typedef double type; };
"""
# d = -g if maximize else g, plus wd * p (coupled weight decay); pv = p's value
_GRAD_TERM = """
A pv = (A)p;
A d = maximize ? -(A)g : (A)g;
if (wd != 0.0) d += (A)wd * pv;
"""
_ADAM_IN = ("T g, float64 decay, float64 wd, float64 w1, float64 beta2, "
            "float64 eps, float64 step_size, float64 bc2_sqrt, bool maximize")
# AdamW's decay first (decay = 1 - lr * wd, else 1), then the moments; torch's lerp
# for the first moment (two formulas, picked by the weight w1 = 1 - beta1)
_ADAM_MOMENTS = """
A pv = (A)p;
if (decay != 1.0) pv *= (A)decay;
A d = maximize ? -(A)g : (A)g;
if (wd != 0.0) d += (A)wd * pv;
A mo = (A)m;
A w = (A)w1;
A mm = w1 < 0.5 ? mo + w * (d - mo) : d - (d - mo) * ((A)1 - w);
A vv = (A)v * (A)beta2 + (A)(1.0 - beta2) * d * d;
m = (T)mm;
v = (T)vv;
"""


#: (name, dtypes) of every built-in kernel: ``python -m gradkit warmup`` compiles
#: these ahead of time into CUPY_CACHE_DIR.
KERNEL_NAMES = ("tanh_backward", "sigmoid_backward", "relu_backward", "sqrt_backward",
                "sigmoid", "relu", "mask_mul", "exp_sub", "rsqrt", "gelu_tanh",
                "gelu_tanh_backward",
                "gelu_erf", "gelu_erf_backward",
                "sgd_update", "sgd_momentum_update", "adam_update", "adam_amsgrad_update")


def warmup(dtypes=("float16", "float32", "float64"), device=0):
    """Compile every kernel of ``KERNEL_NAMES`` for ``dtypes`` on ``device`` (the
    binaries land in CuPy's kernel cache, CUPY_CACHE_DIR). Returns the names."""
    import cupy as cp  # optional dependency (CUDA): imported lazily

    k = _kernels()
    vec = _vector_kernels()
    with cp.cuda.Device(device):
        for dt in dtypes:
            x = cp.ones(4, dtype=dt)
            mask = cp.ones(4, dtype=cp.bool_)
            # each kernel twice: the ElementwiseKernel and the vector path (RawKernel)
            for name, kern in [(n, t[n]) for n in KERNEL_NAMES for t in (k, vec)]:
                if name == "mask_mul":
                    kern(x, mask)
                elif name == "sgd_update":
                    kern(x, 0.1, 0.0, False, x.copy())
                elif name == "sgd_momentum_update":
                    kern(x, 0.1, 0.0, 0.9, 1.0, False, False, True, x.copy(), x.copy())
                elif name.startswith("adam"):
                    outs = (x.copy(), x.copy(), x.copy()) + ((x.copy(),) if "amsgrad" in name else ())
                    kern(x, 1.0, 0.0, 0.1, 0.999, 1e-8, 1e-3, 1.0, False, *outs)
                elif kern.nin == 1:
                    kern(x)
                else:
                    kern(x, x)
        for it in ("int64", "int32"):   # the index check (Backend.check_index)
            k["index_out_of_range"](cp.zeros(4, dtype=it), 0, 4, 0, False, 1, 0)
        warm_raw_kernels(dtypes)        # layer/group/instance norm, forward and backward
        cp.cuda.Device(device).synchronize()
    return KERNEL_NAMES


def _weak(s, other):
    """A Python scalar meeting a 0-d array takes the array's dtype where that is
    a same-kind cast (NEP 50, as NumPy 2, CuPy 14 and torch): CuPy 13 promotes
    by value there (float32 0-d * 0.5 -> float64)."""
    if (s.__class__ is float or s.__class__ is int) and getattr(other, "ndim", 1) == 0:
        k = other.dtype.kind
        if (s.__class__ is float and k == "f") or (s.__class__ is int and k in "fiu"):
            return other.dtype.type(s)
    return s


def _weak2(f):
    def g(a, b, *args, **kwargs):
        return f(_weak(a, b), _weak(b, a), *args, **kwargs)
    g.__name__ = getattr(f, "__name__", "ufunc")
    return g


def weak_scalars(B):
    """On CuPy 13: every binary op of ``B`` keeps NEP 50 dtypes for Python scalars."""
    for name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt",
                 "le", "gt", "ge", "logical_and", "logical_or"):
        setattr(B, name, _weak2(getattr(B, name)))
    where = B.where
    B.where = lambda c, a, b: where(c, _weak(a, b), _weak(b, a))


def scatter_native(cupy_version):
    """The dtypes gradkit hands cupyx.scatter_add as they are (CUDA atomicAdd):
    those CuPy 13 and 14 both take. int64 (CuPy 14 only) always goes as uint64."""
    return frozenset({"float16", "float32", "float64", "int32", "uint32", "uint64"})


class CupyBackend(CupyConvKernels, CupySeqKernels, CupyNormKernels, Backend):
    type = "cuda"

    def __init__(self, index=0):
        import cupy as cp  # optional dependency (CUDA): imported lazily
        import cupyx  # optional dependency (CUDA): imported lazily

        super().__init__(cp, f"cuda:{index}")
        self.cp = cp
        self.index = index
        self.cuda_device = cp.cuda.Device(index)
        self.xp_device = None
        self.dtypes = {n: cp.dtype(n) for n in (
            "float16", "float32", "float64", "int8", "int16", "int32", "int64",
            "uint8", "bool")}
        self._index_dtypes()
        # CuPy 14 deprecates ndarray.scatter_add (cupyx.scatter_add's body) for
        # ``cupy.add.at`` (the same atomicAdd scatter); 720 warnings in the H200 run
        at = getattr(cp.add, "at", None)
        self._scatter_add = cupyx.scatter_add if at is None else at
        self._scatter_native = scatter_native(cp.__version__)
        import cupyx.scipy.special as sp  # optional dependency (CUDA): imported lazily
        self._sp_erf = sp.erf   # loops e->d (CuPy 14) / e->f (13), f->f, d->d
        k = _vector_kernels()
        self.tanh_backward = k["tanh_backward"]
        self.sigmoid_backward = k["sigmoid_backward"]
        self.relu_backward = k["relu_backward"]
        self.sqrt_backward = k["sqrt_backward"]
        self.sigmoid = k["sigmoid"]
        self.relu = k["relu"]
        self.mask_mul = k["mask_mul"]
        self._k_exp_sub = k["exp_sub"]
        self.rsqrt = k["rsqrt"]
        self._k_gelu = {"tanh": k["gelu_tanh"], "none": k["gelu_erf"]}
        self._k_gelu_bwd = {"tanh": k["gelu_tanh_backward"], "none": k["gelu_erf_backward"]}
        self._k_sgd = k["sgd_update"]
        self._k_sgd_m = k["sgd_momentum_update"]
        self._k_adam = k["adam_update"]
        self._k_adam_ams = k["adam_amsgrad_update"]
        self._k_oob = k["index_out_of_range"]
        self.sub = cp.subtract
        self.div = cp.true_divide
        self.pow = cp.power
        self.square = cp.square
        self.reciprocal = cp.reciprocal
        # matmul, linear, bmm, conv: cupy.matmul, or cuBLAS called directly while the
        # current stream captures a CUDA graph (CuPy refuses cuBLAS then): cublas_capture.py
        self.matmul = _capturable_matmul(cp, index)
        if int(cp.__version__.split(".")[0]) < 14:
            weak_scalars(self)
        with self.cuda_device:
            self.rng = cp.random.default_rng()
        rt = cp.cuda.runtime
        if rt.getDeviceCount() > 1:
            # every call runs with this backend's device current (CuPy allocates
            # on the current device); with one GPU it always is, so no wrapper
            self._enter_device_for_every_call(rt.getDevice, rt.setDevice, index)

    def strides(self, a):
        return a.strides

    def is_floating(self, dt):
        return dt.kind == "f"

    def is_integral(self, dt):
        return dt.kind in "iu"

    # host transfer
    def to_host(self, a):
        _check_host_sync(self.device_str)
        if self._pending:
            self.raise_pending()
        return self.cp.asnumpy(a)

    def _raw_to_host(self, a):
        return self.cp.asnumpy(a)

    def _out_of_range(self, idx, lo, hi, ignore):
        with self.cuda_device:
            r = self._k_oob(idx, lo, hi, 0 if ignore is None else ignore, ignore is not None,
                            1, 0)
            return r != 0

    def _record(self, j, seq, idx, lo, hi, ignore):
        # one fused reduction (seq if out of range, else NONE), one min into the slot
        with self.cuda_device:
            r = self._k_oob(idx, lo, hi, 0 if ignore is None else ignore, ignore is not None,
                            seq, self._NONE)
            f = self._flags[j:j + 1]
            self.cp.minimum(f, r, out=f)

    def to_device(self, src, a):
        """From another GPU: a device-to-device (peer) copy, no host round trip
        (ndarray.copy copies onto the current device)."""
        if src.type == "cuda":
            with self.cuda_device:
                return a.copy()
        return self.from_host(src.to_host(a))

    def synchronize(self):
        self.cuda_device.synchronize()
        if self._pending:
            self.raise_pending()

    def from_host(self, a, dtype=None):
        with self.cuda_device:
            return self.cp.asarray(a, dtype=dtype)

    def asarray(self, obj, dtype=None):
        with self.cuda_device:
            return self.cp.asarray(obj, dtype=dtype)

    def item(self, a):
        if self._pending:
            self.raise_pending()
        return a.item()

    def copy(self, a):
        with self.cuda_device:
            return self.cp.array(a, copy=True, order="K")

    def astype(self, a, dtype):
        return a.astype(dtype)

    # creation (on this device)
    def zeros(self, shape, dtype):
        with self.cuda_device:
            return self.cp.zeros(shape, dtype=dtype)

    def ones(self, shape, dtype):
        with self.cuda_device:
            return self.cp.ones(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        with self.cuda_device:
            return self.cp.full(shape, value, dtype=dtype)

    def empty(self, shape, dtype):
        with self.cuda_device:
            return self.cp.empty(shape, dtype=dtype)

    def arange(self, start, stop, step, dtype):
        with self.cuda_device:
            return self.cp.arange(start, stop, step, dtype=dtype)

    def linspace(self, start, stop, num, dtype):
        with self.cuda_device:
            return self.cp.linspace(start, stop, num, dtype=dtype)

    def eye(self, n, m, dtype):
        with self.cuda_device:
            return self.cp.eye(n, m, dtype=dtype)

    def seed(self, seed):
        with self.cuda_device:
            self.rng = self.cp.random.default_rng(seed)

    # cupy.random's Generator draws floats in float32/float64 only (float16
    # raises): draw float32 and cast, as the NumPy backend does
    def _draw_dtype(self, dtype):
        return dtype if dtype in (self.dtypes["float32"], self.dtypes["float64"]) \
            else self.dtypes["float32"]

    def rand(self, shape, dtype):
        with self.cuda_device:
            r = self.rng.random(shape, dtype=self._draw_dtype(dtype))
            return r if r.dtype == dtype else r.astype(dtype)

    def randn(self, shape, dtype):
        with self.cuda_device:
            r = self.rng.standard_normal(shape, dtype=self._draw_dtype(dtype))
            return r if r.dtype == dtype else r.astype(dtype)

    def randint(self, low, high, shape, dtype):
        with self.cuda_device:
            if dtype == self.dtypes["bool"]:   # integers() refuses bool: draw int, compare
                return self.rng.integers(low, high, size=shape, dtype=self.dtypes["int8"]) != 0
            return self.rng.integers(low, high, size=shape, dtype=dtype)

    def erf(self, x):
        """cupyx's erf has no half loop (float16 gives float64 on CuPy 14,
        float32 on 13): compute float16 in float32 and return the input dtype."""
        if x.dtype == self.dtypes["float16"]:
            return self._sp_erf(x.astype(self.dtypes["float32"])).astype(x.dtype)
        return self._keep_dtype(self._sp_erf(x), x)

    # shape (methods are cheaper than the namespace functions)
    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, dims):
        return x.transpose(dims)

    def mT(self, x):
        return x.swapaxes(-1, -2)

    def expand(self, x, shape):
        return self.cp.broadcast_to(x, shape)

    def cat(self, xs, dim):
        return self.cp.concatenate(xs, axis=dim)

    def sum(self, x, dim=None, keepdim=False):
        return x.sum(axis=dim, keepdims=keepdim)

    def argsort_stable(self, x, dim):
        return self.cp.argsort(x, axis=dim)   # CuPy's sort is always stable

    def softmax(self, x, dim):
        """Like the NumPy backend's: max, one fused exp(x - max), sum, and an
        in-place divide (two temporaries instead of the reference's four)."""
        e = self._k_exp_sub(x, x.max(axis=dim, keepdims=True))
        self.cp.divide(e, e.sum(axis=dim, keepdims=True), out=e)
        return e

    def gelu(self, x, approximate="none"):
        return self._k_gelu[approximate](x)

    def gelu_backward(self, x, g, approximate="none"):
        return self._k_gelu_bwd[approximate](x, g)

    def put_along_dim(self, shape, idx, g, dim, keepdim):
        cp = self.cp
        if not keepdim:
            idx = cp.expand_dims(idx, dim)
            g = cp.expand_dims(g, dim)
        with self.cuda_device:
            ar = cp.arange(shape[dim]).reshape(tuple(-1 if i == dim else 1 for i in range(len(shape))))
            return cp.where(ar == idx, g, cp.zeros((), dtype=g.dtype))

    def scatter_add(self, out, idx, g):
        """``out[idx] += g`` as NumPy's ``add.at``, for every dtype. cupyx.scatter_add
        takes float16/32/64, int32, uint32, uint64 (int64 only from CuPy 14 on):
        int64 adds as uint64 on every version (two's complement: the same bits);
        int8/int16/uint8 add in int32 and wrap back (as add.at wraps); bool adds
        in int32 and becomes ``!= 0`` (add.at on bool is a logical or)."""
        name = out.dtype.name
        if g.dtype != out.dtype:
            g = g.astype(out.dtype)
        if name in self._scatter_native:
            self._scatter_add(out, idx, g)
        elif name == "int64":
            u8 = self.cp.dtype("uint64")
            self._scatter_add(out.view(u8), idx, g.view(u8))
        else:
            i4 = self.cp.dtype("int32")
            wide = out.astype(i4)
            self._scatter_add(wide, idx, g.astype(i4))
            out[...] = (wide != 0) if name == "bool" else wide.astype(out.dtype)
        return out

    def iadd(self, a, b):
        self.cp.add(a, b, out=a)
        return a

    # optimizer updates: one fused ElementwiseKernel launch, no host sync
    def sgd_update(self, p, g, buf, lr, weight_decay=0.0, momentum=0.0, dampening=0.0,
                   nesterov=False, maximize=False, first=False):
        with self.cuda_device:
            if momentum != 0:
                self._k_sgd_m(g, lr, weight_decay, momentum, 1.0 - dampening,
                              bool(nesterov), bool(maximize), bool(first), p, buf)
            else:
                self._k_sgd(g, lr, weight_decay, bool(maximize), p)

    def adam_update(self, p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                    step_size, bc2_sqrt, decoupled=False, maximize=False):
        if decoupled:
            decay, wd = 1.0 - lr * weight_decay, 0.0
        else:
            decay, wd = 1.0, weight_decay
        with self.cuda_device:
            if vmax is None:
                self._k_adam(g, decay, wd, 1.0 - beta1, beta2, eps, step_size,
                             bc2_sqrt, bool(maximize), p, m, v)
            else:
                self._k_adam_ams(g, decay, wd, 1.0 - beta1, beta2, eps, step_size,
                                 bc2_sqrt, bool(maximize), p, m, v, vmax)
