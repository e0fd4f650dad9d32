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


class Backend:
    #: device type: "cpu", "cuda", "fake"
    type = "abstract"

    def __init__(self, xp, device_str):
        self.xp = xp
        self.device_str = device_str
        xp_ = xp
        # dtype table, by torch-style name
        self.dtypes = {}
        for name in ("float16", "float32", "float64", "int8", "int16", "int32",
                     "int64", "uint8", "bool"):
            dt = getattr(xp_, name, None)
            if dt is not None:
                self.dtypes[name] = dt
        # Elementwise kernels that are the namespace's own functions: bound once.
        self.add = xp_.add
        self.sub = xp_.subtract
        self.mul = xp_.multiply
        self.div = xp_.divide
        self.neg = xp_.negative
        self.pow = xp_.pow if hasattr(xp_, "pow") else xp_.power
        self.exp = xp_.exp
        self.log = xp_.log
        self.sqrt = xp_.sqrt
        self.abs = xp_.abs
        self.sin = xp_.sin
        self.cos = xp_.cos
        self.tanh = xp_.tanh
        self.sign = xp_.sign
        self.maximum = xp_.maximum
        self.minimum = xp_.minimum
        self.where = xp_.where
        self.matmul = xp_.matmul
        self.eq = xp_.equal
        self.ne = xp_.not_equal
        self.lt = xp_.less
        self.le = xp_.less_equal
        self.gt = xp_.greater
        self.ge = xp_.greater_equal
        self.logical_not = xp_.logical_not
        self.logical_and = xp_.logical_and
        self.logical_or = xp_.logical_or
        self.isfinite = xp_.isfinite
        self.log1p = xp_.log1p
        self.expm1 = xp_.expm1
        self.tan = xp_.tan
        self.floor = xp_.floor
        self._index_dtypes()

    def _index_dtypes(self):
        """Derived dtype sets, read on the hot path; call after ``dtypes`` is final."""
        self.float_dtypes = frozenset(self.dtypes[n] for n in ("float16", "float32", "float64")
                                      if n in self.dtypes)
        self.bool_dtype = self.dtypes["bool"]
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
        """A fresh, contiguous, writeable copy."""
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
        # Abramowitz-Stegun 7.1.26 is too coarse for float64 gradchecks; use a
        # series/continued fraction split written with xp (reference only).
        xp = self.xp
        a = xp.abs(x)
        # erf via erfc(x) = exp(-x^2) * rational approx (W. J. Cody). Backends
        # override this with their own erf where they have one.
        t = 1.0 / (1.0 + 0.5 * a)
        y = 1.0 - t * xp.exp(-a * a - 1.26551223 + t * (1.00002368 + t * (
            0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
                0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
                    -0.82215223 + t * 0.17087277)))))))))
        return xp.where(x >= 0, y, -y)

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
        xp = self.xp
        return xp.where(y > 0, g, xp.zeros_like(g))

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
        xp = self.xp
        idx = xp.argmax(x, axis=dim, keepdims=True)
        v = xp.take_along_axis(x, idx, axis=dim)
        if not keepdim:
            v = xp.squeeze(v, axis=dim)
            idx = xp.squeeze(idx, axis=dim)
        return v, xp.astype(idx, xp.int64)

    def min_dim(self, x, dim, keepdim):
        xp = self.xp
        idx = xp.argmin(x, axis=dim, keepdims=True)
        v = xp.take_along_axis(x, idx, axis=dim)
        if not keepdim:
            v = xp.squeeze(v, axis=dim)
            idx = xp.squeeze(idx, axis=dim)
        return v, xp.astype(idx, xp.int64)

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
