"""The "cuda[:N]" backend: CuPy, imported only when a CUDA device is asked for.

Fast paths are memoized ``cupy.ElementwiseKernel``s (one launch, no temporaries)
for the elementwise backward kernels and ``cupyx.scatter_add`` for indexing
backward. Every kernel that is not overridden here falls back to the reference
in ``base.py``, written once against the namespace.
"""
import functools

from .base import Backend
from .seq_kernels import CupySeqKernels


@functools.lru_cache(maxsize=None)
def _kernels():
    """Compile-on-first-use kernel table, shared by every CUDA device."""
    import cupy as cp  # optional dependency (CUDA): imported lazily

    ek = cp.ElementwiseKernel
    return {
        "tanh_backward": ek("T y, T g", "T gx", "gx = g * ((T)1 - y * y)", "gk_tanh_bwd"),
        "sigmoid_backward": ek("T y, T g", "T gx", "gx = g * y * ((T)1 - y)", "gk_sigmoid_bwd"),
        "relu_backward": ek("T y, T g", "T gx", "gx = y > (T)0 ? g : (T)0", "gk_relu_bwd"),
        "sqrt_backward": ek("T y, T g", "T gx", "gx = g / (y + y)", "gk_sqrt_bwd"),
        "sigmoid": ek("T x", "T y",
                      "T e = exp(-fabs(x)); y = x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e)",
                      "gk_sigmoid"),
        "relu": ek("T x", "T y", "y = x > (T)0 ? x : (T)0", "gk_relu"),
        "mask_mul": ek("T g, bool m", "T gx", "gx = m ? g : (T)0", "gk_mask_mul"),
        "rsqrt": ek("T x", "T y", "y = rsqrt(x)", "gk_rsqrt"),
        "gelu_tanh": ek(
            "T x", "T y",
            "T u = (T)0.7978845608028654 * (x + (T)0.044715 * x * x * x);"
            "y = (T)0.5 * x * ((T)1 + tanh(u))", "gk_gelu_tanh"),
        "gelu_tanh_backward": ek(
            "T x, T g", "T gx",
            "T x2 = x * x; T t = tanh((T)0.7978845608028654 * x * ((T)1 + (T)0.044715 * x2));"
            "T du = (T)0.7978845608028654 * ((T)1 + (T)0.134145 * x2);"
            "gx = g * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du)",
            "gk_gelu_tanh_bwd"),
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
                "sigmoid", "relu", "mask_mul", "rsqrt", "gelu_tanh", "gelu_tanh_backward",
                "gelu_erf", "gelu_erf_backward",
                "sgd_update", "sgd_momentum_update", "adam_update", "adam_amsgrad_update")


def warmup(dtypes=("float32", "float64"), device=0):
    """Compile every kernel of ``KERNEL_NAMES`` for ``dtypes`` on ``device`` (the
    binaries land in CuPy's kernel cache, CUPY_CACHE_DIR). Returns the names."""
    import cupy as cp  # optional dependency (CUDA): imported lazily

    k = _kernels()
    with cp.cuda.Device(device):
        for dt in dtypes:
            x = cp.ones(4, dtype=dt)
            mask = cp.ones(4, dtype=cp.bool_)
            for name in KERNEL_NAMES:
                kern = k[name]
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
        cp.cuda.Device(device).synchronize()
    return KERNEL_NAMES


class CupyBackend(CupySeqKernels, Backend):
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
        self._scatter_add = cupyx.scatter_add
        k = _kernels()
        self.tanh_backward = k["tanh_backward"]
        self.sigmoid_backward = k["sigmoid_backward"]
        self.relu_backward = k["relu_backward"]
        self.sqrt_backward = k["sqrt_backward"]
        self.sigmoid = k["sigmoid"]
        self.relu = k["relu"]
        self.mask_mul = k["mask_mul"]
        self.rsqrt = k["rsqrt"]
        self._k_gelu = {"tanh": k["gelu_tanh"], "none": k["gelu_erf"]}
        self._k_gelu_bwd = {"tanh": k["gelu_tanh_backward"], "none": k["gelu_erf_backward"]}
        self._k_sgd = k["sgd_update"]
        self._k_sgd_m = k["sgd_momentum_update"]
        self._k_adam = k["adam_update"]
        self._k_adam_ams = k["adam_amsgrad_update"]
        self.sub = cp.subtract
        self.div = cp.true_divide
        self.pow = cp.power
        self.square = cp.square
        self.reciprocal = cp.reciprocal
        with self.cuda_device:
            self.rng = cp.random.default_rng()

    def is_floating(self, dt):
        return dt.kind == "f"

    def is_integral(self, dt):
        return dt.kind in "iu"

    # host transfer
    def to_host(self, a):
        return self.cp.asnumpy(a)

    def from_host(self, a, dtype=None):
        with self.cuda_device:
            return self.cp.asarray(a, dtype=dtype)

    def asarray(self, obj, dtype=None):
        with self.cuda_device:
            return self.cp.asarray(obj, dtype=dtype)

    def item(self, a):
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

    def rand(self, shape, dtype):
        with self.cuda_device:
            return self.rng.random(shape, dtype=dtype)

    def randn(self, shape, dtype):
        with self.cuda_device:
            return self.rng.standard_normal(shape, dtype=dtype)

    def randint(self, low, high, shape, dtype):
        with self.cuda_device:
            return self.rng.integers(low, high, size=shape, dtype=dtype)

    def erf(self, x):
        import cupyx.scipy.special as sp  # optional dependency (CUDA): imported lazily
        return sp.erf(x)

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
        self._scatter_add(out, idx, g)
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
