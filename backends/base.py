"""The Backend interface and the reference kernels, written once against an
array-API namespace ``xp``.

A backend is: an array namespace resolved once, a device, dtype objects, host
transfer, and a table of named kernels (the methods below). The tape layer
(``gradkit/``) calls nothing else. A concrete backend overrides a kernel only for
speed; everything it does not override falls back to the reference here.

Kernel names double as the raw "F namespace" that VJP formulas are written
against (``F.mul(g, y)``): on the fast path the engine passes the backend itself,
under ``create_graph`` it passes gradkit's differentiable namespace, which has the
same names.
"""
from .conv import ConvKernels

from ..errors import HostSyncError  # noqa: F401  (re-exported: the fake device raises it)
from ..graph import host_sync_violation, mode
from .device_mixin import DeviceMixin
from .seq_kernels import SeqKernels
from .norm_kernels import NormKernels


def _horner(c, t):
    """Polynomial with coefficients ``c`` (highest degree first) at ``t``."""
    r = t * c[0] + c[1]
    for v in c[2:]:
        r = r * t + v
    return r


# erf coefficients (Backend.erf), highest degree first. Chebyshev fits made with
# mpmath.chebyfit at 50 digits:
#   ERF_A: erf(x)/x as a function of t = 2 x^2 - 1, |x| < 1 (error 7e-18);
#   ERF_B: x exp(x^2) erfc(x), t = (1/x - 0.4) / 0.3 - 1, 1 <= x < 2.5 (2e-16);
#   ERF_C: the same for 2.5 <= x < 6, t = (1/x - 1/6) * 12/1.4 - 1 (4e-14,
#          i.e. < 2e-17 absolute on erf there).
ERF_A = (-3.80659122412214e-13, 9.21125018742823e-12, -2.035231956483527e-10,
         4.115751500265885e-09, -7.51156925108609e-08, 1.2233827638093572e-06,
         -1.75371694412802e-05, 0.00021751715603563488, -0.0022854855611440855,
         0.019852496688984218, -0.1405360890227171, 0.9654687386698673)
ERF_B = (-8.385225816217079e-11, 3.380646965136224e-10, -7.053996547498776e-10,
         9.914521559196413e-10, 1.924319306912319e-09, -2.5722278543397526e-08,
         1.359378628213609e-07, -5.089803206517933e-07, 1.3424856898898644e-06,
         -1.2275630030654566e-06, -1.2641848261512005e-05, 0.00010463879438717077,
         -0.0004905699492873948, 0.0013870915797156115, 0.0011248289054613288,
         -0.051206136436543544, 0.47667664648780045)
ERF_C = (-5.548022532625631e-10, 4.268289269878961e-09, -1.1163273082723079e-08,
         -6.843411182616536e-08, 9.343765157137427e-07, -4.194801966652901e-06,
         -1.2389592463243985e-05, 0.0003382937348432279, -0.0019887963615739966,
         -0.015155783092224196, 0.5438379217736194)


_SQRT_2_OVER_PI = 0.7978845608028654   # sqrt(2 / pi)
_INV_SQRT2 = 0.7071067811865476        # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327     # 1 / sqrt(2 pi)


def check_host_sync(device_str):
    """Called by a device backend's ``to_host``: inside ``gk.no_host_sync()`` every
    device -> host copy raises HostSyncError, whichever gradkit path asked for it
    (``gk.tensor(t, device="cpu")``, ``Module.to("cpu")``, ``gk.save``...)."""
    if mode.host_sync_guard:
        host_sync_violation(f"a copy from {device_str} to the host")


class Backend(ConvKernels, SeqKernels, NormKernels, DeviceMixin):  # kernels: conv, seq, norm
    #: device type: "cpu", "cuda", "fake"
    type = "abstract"
    #: the smallest gradient (elements) for which the engine hands this backend's
    #: donating VJPs arrays to overwrite (``gradkit.ops.core.donating``); inf: never.
    #: The NumPy backend only: on CuPy a fresh output costs no extra DRAM traffic
    #: and the memory pool makes it cheap.
    donate_min = float("inf")

    #: kernels that are the array namespace's own functions, bound once per
    #: backend in ``__init__``: kernel name -> namespace names (first found wins)
    XP_KERNELS = {
        "add": ("add",), "sub": ("subtract",), "mul": ("multiply",), "div": ("divide",),
        "neg": ("negative",), "pow": ("pow", "power"), "exp": ("exp",), "log": ("log",),
        "sqrt": ("sqrt",), "abs": ("abs",), "sin": ("sin",), "cos": ("cos",),
        "tanh": ("tanh",), "sign": ("sign",), "maximum": ("maximum",),
        "minimum": ("minimum",), "where": ("where",), "matmul": ("matmul",),
        "eq": ("equal",), "ne": ("not_equal",), "lt": ("less",), "le": ("less_equal",),
        "gt": ("greater",), "ge": ("greater_equal",), "logical_not": ("logical_not",),
        "logical_and": ("logical_and",), "logical_or": ("logical_or",),
        "bitwise_and": ("bitwise_and",), "bitwise_or": ("bitwise_or",),
        "isfinite": ("isfinite",), "log1p": ("log1p",), "expm1": ("expm1",), "tan": ("tan",),
        "floor": ("floor",),
    }

    @classmethod
    def kernel_names(cls):
        """Every kernel a backend of this class has: its methods and the
        namespace-bound ones (readable from the class, without an instance)."""
        return set(cls.XP_KERNELS) | {n for n in dir(cls) if not n.startswith("__")
                                      and callable(getattr(cls, n))}

    def __init__(self, xp, device_str):
        self.xp = xp
        self.device_str = device_str
        xp_ = xp
        # dtype table, by torch-style name
        self.dtypes = {}
        for name in ("float16", "float32", "float64", "int8", "int16", "int32",
                     "int64", "uint8", "bool"):
            dt = vars(xp_).get(name)  # no module __getattr__: NumPy 1.26 warns on np.bool
            if dt is not None:
                self.dtypes[name] = dt
        # Elementwise kernels that are the namespace's own functions: bound once.
        for name, xp_names in self.XP_KERNELS.items():
            for n in xp_names:
                f = getattr(xp_, n, None)
                if f is not None:
                    setattr(self, name, f)
                    break
        self._index_dtypes()
        self._pending = False   # deferred index checks armed (see check_index)
        # a subclass's own method wins over the namespace function bound above
        for name in list(vars(self)):
            if callable(getattr(type(self), name, None)) and name in vars(type(self)):
                del self.__dict__[name]

    def _index_dtypes(self):
        """Derived dtype sets, read on the hot path; call after ``dtypes`` is final."""
        self.float_dtypes = frozenset(self.dtypes[n] for n in ("float16", "float32", "float64")
                                      if n in self.dtypes)
        self.bool_dtype = self.dtypes.get("bool")
        self._dtype_set = frozenset(self.dtypes.values())
        self._names = {v: k for k, v in self.dtypes.items()}

    # ------------------------------------------------------------------ meta
    def __repr__(self):
        return f"<gradkit backend {self.device_str}>"

    def dtype_name(self, dt):
        n = self._names.get(dt)
        return n if n is not None else str(dt)

    def is_floating(self, dt):
        return self.xp.isdtype(dt, "real floating")

    def is_integral(self, dt):
        return self.xp.isdtype(dt, "integral")

    # ------------------------------------------------------- host transfer
    def to_host(self, a):
        """The array as a numpy.ndarray (a copy where the device is not the host)."""
        raise NotImplementedError

    def from_host(self, a, dtype=None):
        raise NotImplementedError

    def item(self, a):
        return self.to_host(a).item()

    def to_device(self, src, a):
        """Copy ``a`` from backend ``src`` onto this backend's device."""
        return self.from_host(src.to_host(a))

    def asarray(self, obj, dtype=None):
        return self.xp.asarray(obj, dtype=dtype, device=self.xp_device)

    xp_device = None

    # ----------------------------------------------------------- creation
    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype, device=self.xp_device)

    def ones(self, shape, dtype):
        return self.xp.ones(shape, dtype=dtype, device=self.xp_device)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype, device=self.xp_device)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype, device=self.xp_device)

    def arange(self, start, stop, step, dtype):
        return self.xp.arange(start, stop, step, dtype=dtype, device=self.xp_device)

    def linspace(self, start, stop, num, dtype):
        return self.xp.linspace(start, stop, num, dtype=dtype, device=self.xp_device)

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=dtype, device=self.xp_device)

    def zeros_like(self, a):
        return self.xp.zeros_like(a)

    def copy(self, a):
        """A fresh, writeable copy, contiguous in the input's own memory order
        (a transposed gradient copies as fast as a plain one)."""
        return self.xp.asarray(a, copy=True)

    def astype(self, a, dtype):
        return self.xp.astype(a, dtype)

    # ------------------------------------------------------------ random
    # The reference RNG draws on the host (numpy) and moves the result: fine for
    # tests; real backends override with a device generator.
    def seed(self, seed):
        raise NotImplementedError

    # -------------------------------------------------------- elementwise
    def square(self, x):
        return self.xp.multiply(x, x)

    def reciprocal(self, x):
        return self.xp.divide(1.0, x)

    def rsqrt(self, x):
        return self.xp.divide(1.0, self.xp.sqrt(x))

    def sigmoid(self, x):
        xp = self.xp
        # stable for large |x|: exp of a non-positive number only
        e = xp.exp(xp.negative(xp.abs(x)))
        return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def relu(self, x):
        return self.xp.maximum(x, self.xp.zeros_like(x))

    def clamp(self, x, lo, hi):
        return self.xp.clip(x, lo, hi)

    def erf(self, x):
        """Accurate to ~3e-16 relative in float64 (as good as libm's erf),
        written with namespace ops only so every backend gets it right:
        erf(x) = x P(x^2) for |x| < 1; 1 - exp(-x^2) R(1/|x|) / |x| for
        1 <= |x| < 6 (two pieces); 1 beyond (erfc(6) < 2^-53). The
        coefficients are Chebyshev fits (mpmath, 50 digits) in a variable
        mapped to [-1, 1] (ERF_A, ERF_B, ERF_C above)."""
        xp = self.xp
        a = xp.abs(x)
        s = a * a
        y0 = a * _horner(ERF_A, s * 2.0 - 1.0)
        u = 1.0 / xp.where(a > 1.0, a, xp.ones_like(a))      # 1/|x|, safe for |x| < 1
        e = xp.exp(-s) * u
        y1 = 1.0 - e * _horner(ERF_B, (u - 0.4) * (1.0 / 0.3) - 1.0)
        y2 = 1.0 - e * _horner(ERF_C, (u - 1.0 / 6.0) * (12.0 / 1.4) - 1.0)
        y = xp.where(a < 1.0, y0, xp.where(a < 2.5, y1, xp.where(
            a < 6.0, y2, xp.where(a >= 6.0, xp.ones_like(a), a))))   # NaN stays NaN
        return xp.copysign(y, x)

    def softmax(self, x, dim):
        xp = self.xp
        e = xp.exp(x - xp.max(x, axis=dim, keepdims=True))
        return e / xp.sum(e, axis=dim, keepdims=True)

    def gelu(self, x, approximate="none"):
        xp = self.xp
        if approximate == "tanh":
            return 0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
        return 0.5 * x * (1.0 + self.erf(x * _INV_SQRT2))

    def gelu_backward(self, x, g, approximate="none"):
        xp = self.xp
        h = self.dtypes.get("float16")
        if h is not None and x.dtype == h:  # x^2 overflows float16 for |x| > 256: as torch
            f = self.dtypes["float32"]
            return xp.astype(self.gelu_backward(xp.astype(x, f), xp.astype(g, f), approximate), h)
        if approximate == "tanh":
            x2 = x * x
            t = xp.tanh(_SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x2))
            du = _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x2)
            return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
        pdf = xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return g * (0.5 * (1.0 + self.erf(x * _INV_SQRT2)) + x * pdf)

    # ------------------------------------------------ fused backward kernels
    # Each is a primitive of its own in gradkit.ops with its own VJP, so the
    # fast path and double backward share one formula.
    def tanh_backward(self, y, g):
        xp = self.xp
        return xp.multiply(g, 1.0 - xp.multiply(y, y))

    def sigmoid_backward(self, y, g):
        xp = self.xp
        return xp.multiply(g, xp.multiply(y, 1.0 - y))

    def relu_backward(self, y, g):
        xp = self.xp   # torch's threshold_backward: 0 where y <= 0, g elsewhere (NaN y too)
        return xp.where(y <= 0, xp.zeros_like(g), g)

    def sqrt_backward(self, y, g):
        return self.xp.divide(g, self.xp.multiply(y, 2.0))

    def mask_mul(self, g, m):
        """g where m else 0 (m boolean)."""
        xp = self.xp
        return xp.where(m, g, xp.zeros_like(g))

    # ------------------------------------------------------------ reductions
    def sum(self, x, dim=None, keepdim=False):
        return self.xp.sum(x, axis=dim, keepdims=keepdim)

    def amax(self, x, dim=None, keepdim=False):
        return self.xp.max(x, axis=dim, keepdims=keepdim)

    def amin(self, x, dim=None, keepdim=False):
        return self.xp.min(x, axis=dim, keepdims=keepdim)

    def argmax(self, x, dim=None, keepdim=False):
        return self.xp.argmax(x, axis=dim, keepdims=keepdim)

    def argmin(self, x, dim=None, keepdim=False):
        return self.xp.argmin(x, axis=dim, keepdims=keepdim)

    def max_dim(self, x, dim, keepdim):
        """(values, indices) along ``dim``; indices are int64."""
        return self._select_dim(self.xp.argmax, x, dim, keepdim)

    def min_dim(self, x, dim, keepdim):
        return self._select_dim(self.xp.argmin, x, dim, keepdim)

    def _select_dim(self, arg, x, dim, keepdim):
        xp = self.xp
        idx = arg(x, axis=dim, keepdims=True)
        v = xp.take_along_axis(x, idx, axis=dim)
        if not keepdim:
            v = xp.squeeze(v, axis=dim)
            idx = xp.squeeze(idx, axis=dim)
        i64 = self.dtypes["int64"]
        return v, (idx if idx.dtype == i64 else self.astype(idx, i64))

    def put_along_dim(self, shape, idx, g, dim, keepdim):
        """Zeros of ``shape`` with ``g`` written at ``idx`` along ``dim`` (the
        VJP of max/min with a dim). ``idx`` holds one index per reduced row."""
        xp = self.xp
        if not keepdim:
            idx = xp.expand_dims(idx, axis=dim)
            g = xp.expand_dims(g, axis=dim)
        n = shape[dim]
        ar = xp.arange(n, device=self.xp_device)
        ar = xp.reshape(ar, tuple(n if i == dim else 1 for i in range(len(shape))))
        return xp.where(ar == idx, g, xp.zeros((), dtype=g.dtype, device=self.xp_device))

    def cross_entropy_index(self, x, t, keep, reduction):
        """``-(log_softmax(x)[i, t_i] * keep_i)`` for ``x`` (N, C), then
        ``reduction``: 'none', 'sum' or 'mean' (the sum over ``sum(keep)``), with
        log_softmax's arithmetic (z = x - max, z - log(sum(exp(z))))."""
        xp = self.xp
        z = x - xp.max(x, axis=1, keepdims=True)
        lse = xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
        lp = xp.take_along_axis(z, xp.reshape(t, (-1, 1)), axis=1) - lse
        loss = -(xp.reshape(lp, (-1,)) * keep)
        if reduction == "none":
            return loss
        total = xp.sum(loss)
        return total if reduction == "sum" else total / xp.sum(keep)

    def take_along_dim(self, x, idx, dim, keepdim):
        """x's values at ``idx`` along ``dim`` (one index per reduced row)."""
        xp = self.xp
        if not keepdim:
            idx = xp.expand_dims(idx, axis=dim)
        v = xp.take_along_axis(x, idx, axis=dim)
        return v if keepdim else xp.squeeze(v, axis=dim)

    def all(self, x, dim=None, keepdim=False):
        return self.xp.all(x, axis=dim, keepdims=keepdim)

    def any(self, x, dim=None, keepdim=False):
        return self.xp.any(x, axis=dim, keepdims=keepdim)

    def prod(self, x, dim=None, keepdim=False):
        return self.xp.prod(x, axis=dim, keepdims=keepdim)

    def cumsum(self, x, dim):
        f = getattr(self.xp, "cumulative_sum", None)
        return f(x, axis=dim) if f is not None else self.xp.cumsum(x, axis=dim)

    def cumprod(self, x, dim):
        f = getattr(self.xp, "cumulative_prod", None)
        return f(x, axis=dim) if f is not None else self.xp.cumprod(x, axis=dim)

    def argsort_stable(self, x, dim):
        """Ascending, stable argsort along ``dim`` (NaN last, as NumPy/CuPy)."""
        return self.xp.argsort(x, axis=dim, stable=True)

    def argsort(self, x, dim, descending=False):
        """Stable argsort (int64); descending keeps equal values in index order and
        puts NaN first, as torch: the ascending sort of the reversed row, reversed."""
        xp = self.xp
        if not descending:
            return self.astype(self.argsort_stable(x, dim), self.dtypes["int64"])
        r = xp.flip(self.argsort_stable(xp.flip(x, axis=dim), dim), axis=dim)
        return self.astype((x.shape[dim] - 1) - r, self.dtypes["int64"])

    # --------------------------------------------------------------- shape
    def reshape(self, x, shape):
        return self.xp.reshape(x, shape)

    def permute(self, x, dims):
        return self.xp.permute_dims(x, dims)

    def mT(self, x):
        return self.xp.matrix_transpose(x)

    def unsqueeze(self, x, dim):
        return self.xp.expand_dims(x, axis=dim)

    def expand(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    def sum_to(self, g, shape):
        """Sum ``g`` down to ``shape`` (undo broadcasting): the one place where
        broadcasting is undone."""
        lead = g.ndim - len(shape)
        gs = g.shape
        inner = tuple(i + lead for i, s in enumerate(shape) if s == 1 and gs[i + lead] != 1)
        if not inner:  # only leading dims: one reduction, no reshape (no view)
            return self.sum(g, dim=tuple(range(lead))) if lead else g
        axes = tuple(range(lead)) + inner
        if axes:
            g = self.sum(g, dim=axes, keepdim=True)
        if lead or g.shape != shape:
            g = self.xp.reshape(g, shape)
        return g

    def cat(self, xs, dim):
        return self.xp.concat(xs, axis=dim)

    def flip(self, x, dims):
        return self.xp.flip(x, axis=dims)

    def repeat(self, x, sizes):
        """torch's ``x.repeat(*sizes)`` (NumPy's tile); ``x`` already has
        ``len(sizes)`` dims."""
        return self.xp.tile(x, sizes)

    # ------------------------------------------------------------ indexing
    def getitem(self, x, idx):
        return x[idx]

    def index_put(self, x, v, idx):
        out = self.copy(x)
        out[idx] = v
        return out

    def index_zero(self, g, idx):
        """``g`` with ``g[idx]`` set to zero (a copy)."""
        out = self.copy(g)
        out[idx] = 0
        return out

    def getitem_backward(self, g, shape, idx, advanced):
        """Zeros of ``shape`` with ``g`` added at ``idx``; repeated indices
        accumulate (the VJP of ``x[idx]``)."""
        out = self.zeros(shape, g.dtype)
        if not advanced:
            out[idx] = g
            return out
        return self.scatter_add(out, idx, g)

    def scatter_add(self, out, idx, g):
        """``out[idx] += g`` with repeated indices accumulating. Reference: map
        every selected element to its linear position and add with a one-hot
        reduction (namespace-only, O(n*k); real backends override)."""
        xp = self.xp
        n = 1
        for s in out.shape:
            n *= s
        pos = xp.reshape(xp.arange(n, device=self.xp_device), out.shape)
        lin = xp.reshape(pos[idx], (-1,))
        gv = xp.reshape(xp.broadcast_to(g, pos[idx].shape), (-1,))
        onehot = xp.astype(lin[:, None] == xp.arange(n, device=self.xp_device)[None, :], g.dtype)
        add = xp.sum(onehot * gv[:, None], axis=0)
        return out + xp.reshape(add, out.shape)

    # -------------------------------------------------------- accumulation
    def iadd(self, a, b):
        """a += b in place; returns a."""
        a += b
        return a

    def isub(self, a, b):
        a -= b
        return a

    def imul(self, a, b):
        a *= b
        return a

    def idiv(self, a, b):
        a /= b
        return a

    # ------------------------------------------------------------- layers
    def linear(self, x, w):
        """``x @ w.T`` with ``w`` (out_features, in_features): nn.Linear's
        forward (its VJP computes the weight's gradient in w's own layout)."""
        return self.matmul(x, self.mT(w))

    # ---------------------------------------------------- optimizer updates
    # torch.optim's single-tensor formulas, in place on the parameter array and
    # its state arrays. Scalars are host Python floats: the step counter and the
    # bias corrections stay on the host, so an update never waits on the device.
    def sgd_update(self, p, g, buf, lr, weight_decay=0.0, momentum=0.0, dampening=0.0,
                   nesterov=False, maximize=False, first=False):
        """One SGD step of ``p`` (``buf``: the momentum buffer, None without
        momentum; ``first``: the buffer is new and takes the gradient as is)."""
        d = self.xp.negative(g) if maximize else g
        if weight_decay != 0:
            d = d + weight_decay * p
        if momentum != 0:
            b = self.copy(d) if first else buf * momentum + (1 - dampening) * d
            self.setitem(buf, Ellipsis, b)
            d = d + momentum * b if nesterov else b
        self.setitem(p, Ellipsis, p - lr * d)

    def adam_update(self, p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                    step_size, bc2_sqrt, decoupled=False, maximize=False):
        """One Adam (``decoupled=False``) or AdamW step of ``p``. ``m``, ``v``:
        the moments; ``vmax``: the running max of ``v`` (amsgrad) or None.
        ``step_size = lr / (1 - beta1**t)`` and ``bc2_sqrt = sqrt(1 - beta2**t)``
        come from the host."""
        xp = self.xp
        d = xp.negative(g) if maximize else g
        pv = p
        if weight_decay != 0:
            if decoupled:
                pv = p * (1 - lr * weight_decay)
            else:
                d = d + weight_decay * p
        w = 1 - beta1  # torch's lerp: two formulas, picked by the weight
        m_new = m + w * (d - m) if w < 0.5 else d - (d - m) * (1 - w)
        v_new = v * beta2 + (1 - beta2) * d * d
        self.setitem(m, Ellipsis, m_new)
        self.setitem(v, Ellipsis, v_new)
        if vmax is not None:
            v_new = xp.maximum(vmax, v_new)
            self.setitem(vmax, Ellipsis, v_new)
        denom = xp.sqrt(v_new) / bc2_sqrt + eps
        self.setitem(p, Ellipsis, pv - step_size * (m_new / denom))

    def setitem(self, a, idx, v):
        a[idx] = v
