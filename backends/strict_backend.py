"""The fake accelerator: a test-only backend on ``array_api_strict`` arrays, faithful
to CuPy's hazards so that CPU CI catches the defects a real GPU would show.

Two fake devices, ``"fake"`` (``fake:0``, array_api_strict's ``device1``) and
``"fake:1"`` (``device2``). What it reproduces of CuPy:

- **Host round trips are trapped**: ``float()``, ``int()``, ``bool()``,
  ``operator.index`` and ``__dlpack__`` on a fake array raise ``HostSyncError``
  unless the call comes through this backend's own ``to_host`` (what
  ``Tensor.numpy()``/``.item()``/``.tolist()`` use: an explicit transfer).
- **A current device** (``current_device()``, ``FakeDevice(i)`` as a context
  manager, like ``cupy.cuda.Device``): every namespace function, array operator
  and creation call checks that its arrays (and ``device=``) are on the current
  fake device, and raises ``WrongDeviceError`` otherwise. On CuPy such a call
  silently allocates its result on the current device (or fails without peer
  access); here it fails the test.
- **Fused kernels refuse mixed dtypes** exactly as ``cupy.ElementwiseKernel``:
  all ``T`` arguments (inputs and outputs) must have one dtype, fixed-type
  arguments (``bool m``) their own, else ``TypeError('Type is mismatched. ...')``.
- **Broadcast views are writable** (CuPy has no read-only flag): writing into
  an expanded array writes through the shared memory.
- **Out-of-range integer indices wrap around** (CuPy's advanced indexing and
  ``cupyx.scatter_add``), so only gradkit's own bounds check can raise.
- **Library dtypes**: ``erf`` of the special-function library has no half loop
  (``cupyx.scipy.special.erf``: e->d), emulated by ``_library_erf``.
"""
import threading

import array_api_strict as xps
import numpy as np

from .base import Backend, HostSyncError, check_host_sync as _check_host_sync  # noqa: F401

_A = type(xps.asarray(0))
_DType = type(xps.float32)
_allowed = threading.local()
_DEVICES = (xps.Device("device1"), xps.Device("device2"))
_DEVICE = _DEVICES[0]
_CPU = xps.Device("CPU_DEVICE")
_patched = False


class WrongDeviceError(AssertionError):
    """A kernel ran for one fake device while another was current (on CuPy its
    result would land on the wrong GPU)."""


def current_device():
    """The index of the current fake device (0 unless a ``FakeDevice`` is entered)."""
    return getattr(_allowed, "current", 0)


def set_current_device(i):
    _allowed.current = i


class FakeDevice:
    """``with FakeDevice(1): ...`` makes fake:1 current, as ``cupy.cuda.Device``."""

    def __init__(self, index):
        self.index = index
        self._prev = threading.local()

    def __enter__(self):
        stack = getattr(self._prev, "stack", None)
        if stack is None:
            stack = self._prev.stack = []
        stack.append(current_device())
        set_current_device(self.index)
        return self

    def __exit__(self, *exc):
        set_current_device(self._prev.stack.pop())


def _check_device(what, arrays, device=None):
    cur = _DEVICES[current_device()]
    if device is not None and device != cur and device != _CPU and device in _DEVICES:
        raise WrongDeviceError(
            f"{what}: allocation for fake:{_DEVICES.index(device)} while fake:"
            f"{current_device()} is current (CuPy allocates on the current device)")
    for a in arrays:
        d = getattr(a, "device", None) if isinstance(a, _A) else None
        if d is not None and d != cur and d in _DEVICES:
            raise WrongDeviceError(
                f"{what}: a kernel on an array of fake:{_DEVICES.index(d)} ran while fake:"
                f"{current_device()} is current; the backend must make its device current "
                "for every call (CuPy would put the result on the wrong GPU)")


def _arrays_of(args):
    for a in args:
        if isinstance(a, _A):
            yield a
        elif isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, _A):
                    yield b


def _checked(name, f):
    def g(*args, **kwargs):
        _check_device(f"array_api_strict.{name}", _arrays_of(args), kwargs.get("device"))
        return f(*args, **kwargs)
    g.__name__ = name
    return g


class _Namespace:
    """array_api_strict, every function checking the current fake device."""

    def __init__(self):
        for name in dir(xps):
            if isinstance(getattr(xps, name), _DType):
                setattr(self, name, getattr(xps, name))

    def __getattr__(self, name):
        f = getattr(xps, name)
        if callable(f) and not isinstance(f, (type, _DType)):
            f = _checked(name, f)
        setattr(self, name, f)
        return f


_XP = _Namespace()


def _trap(name, orig):
    def method(self, *args, **kwargs):
        if self.device in _DEVICES and not getattr(_allowed, "ok", False):
            raise HostSyncError(
                f"{name}() of an array on the fake accelerator: a host round trip "
                "inside gradkit (the tape must stay on the device)")
        return orig(self, *args, **kwargs)
    method.__name__ = name
    return method


_OPERATORS = tuple(f"__{p}{n}__" for n in (
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
    "xor", "lshift", "rshift") for p in ("", "r", "i")) + (
    "__neg__", "__pos__", "__abs__", "__invert__", "__lt__", "__le__", "__gt__", "__ge__",
    "__eq__", "__ne__", "__getitem__", "__setitem__")


def _on_current(name, orig):
    def method(self, *args):
        if not getattr(_allowed, "ok", False):
            _check_device(f"Array.{name}", (self,) + tuple(_arrays_of(args)))
        return orig(self, *args)
    method.__name__ = name
    return method


def _install_traps():
    global _patched
    if _patched:
        return
    for name in ("__float__", "__int__", "__bool__", "__index__", "__complex__",
                 "__dlpack__"):
        orig = getattr(_A, name, None)
        if orig is not None:
            setattr(_A, name, _trap(name, orig))
    for name in _OPERATORS:
        orig = getattr(_A, name, None)
        if orig is not None:
            setattr(_A, name, _on_current(name, orig))
    _patched = True


def _mismatch(kernel, name, a, t):
    return TypeError(f"Type is mismatched. {name} {a} {t} T (fused kernel {kernel}: "
                     "cupy.ElementwiseKernel takes one dtype for all T arguments)")


def _fused(kernel, names, fixed=None):
    """Wrap a reference kernel with ElementwiseKernel's type rule: the arrays at
    ``names`` (positions) share one dtype; ``fixed`` maps positions to a dtype."""
    def deco(f):
        def g(self, *args, **kwargs):
            t = None
            for pos, pname in names:
                a = args[pos] if pos < len(args) else None
                if not isinstance(a, _A):
                    continue
                if t is None:
                    t = a.dtype
                elif a.dtype != t:
                    raise _mismatch(kernel, pname, a.dtype, t)
            for pos, (pname, dt) in (fixed or {}).items():
                a = args[pos]
                if isinstance(a, _A) and a.dtype != dt:
                    raise TypeError(f"Type is mismatched. {pname} {a.dtype} {dt} "
                                    f"(fused kernel {kernel})")
            return f(self, *args, **kwargs)
        g.__name__ = f.__name__
        return g
    return deco


_YG = ((0, "y"), (1, "g"))
_XG = ((0, "x"), (1, "g"))


class StrictBackend(Backend):
    type = "fake"

    def __init__(self, index=0):
        super().__init__(_XP, "fake" if index == 0 else f"fake:{index}")
        self.index = index
        self.xp_device = _DEVICES[index]
        _install_traps()
        self.rng = np.random.default_rng()
        self._enter_device_for_every_call(current_device, set_current_device, index)

    # host transfer: the only sanctioned way off the device
    def _raw_to_host(self, a):
        _allowed.ok = True
        try:
            try:
                return np.asarray(a.to_device(_CPU))
            except TypeError:  # array_api_strict on NumPy 1.26 (no np.asarray(copy=))
                return np.array(a._array, copy=True)
        finally:
            _allowed.ok = False

    def to_host(self, a):
        _check_host_sync(self.device_str)
        if self._pending:
            self.raise_pending()
        return self._raw_to_host(a)

    def synchronize(self):
        if self._pending:
            self.raise_pending()

    def from_host(self, a, dtype=None):
        a = np.asarray(a)
        if dtype is None:
            dtype = self.dtypes.get(str(a.dtype))
        return xps.asarray(a, dtype=dtype, device=self.xp_device)

    def asarray(self, obj, dtype=None):
        if isinstance(obj, _A):
            return xps.asarray(obj, dtype=dtype, device=self.xp_device) \
                if obj.device == self.xp_device else self.from_host(self._raw_to_host(obj), dtype)
        return self.from_host(np.asarray(obj), dtype)

    def to_device(self, src, a):
        """Device to device between fake devices (as CuPy's peer copy), through
        the host otherwise."""
        if src.type == self.type:
            try:
                return a.to_device(self.xp_device)
            except TypeError:  # array_api_strict on NumPy 1.26 (no np.asarray(copy=))
                return type(a)._new(a._array.copy(), device=self.xp_device)
        return self.from_host(src.to_host(a))

    def item(self, a):
        return self.to_host(a).item()

    def copy(self, a):
        try:
            return xps.asarray(a, copy=True, device=self.xp_device)
        except TypeError:  # array_api_strict on NumPy 1.26: no np.asarray(copy=)
            return xps.reshape(xps.concat([xps.reshape(a, (-1,))], axis=0), a.shape)

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def rand(self, shape, dtype):
        return self.from_host(self.rng.random(shape), dtype)

    def randn(self, shape, dtype):
        return self.from_host(self.rng.standard_normal(shape), dtype)

    def randint(self, low, high, shape, dtype):
        return self.from_host(self.rng.integers(low, high, size=shape), dtype)

    def arange(self, start, stop, step, dtype):
        return xps.arange(start, stop, step, dtype=dtype, device=self.xp_device)

    # -------------------------------------------- CuPy's library behaviours
    def expand(self, x, shape):
        """A *writable* broadcast view (CuPy has no read-only flag): elements
        share memory, so an in-place write through it is silently wrong unless
        gradkit refuses it."""
        b = np.broadcast_to(x._array, shape)
        base = x._array
        if not base.flags.writeable:
            return xps.broadcast_to(x, shape)
        v = np.lib.stride_tricks.as_strided(base, shape=b.shape, strides=b.strides,
                                            writeable=True)
        return _A._new(v, device=x.device)

    def strides(self, a):
        return a._array.strides

    def _library_erf(self, x):
        """cupyx.scipy.special.erf's loops ('e->d', 'f->f', 'd->d'): a float16
        input gives float64."""
        if x.dtype not in (xps.float32, xps.float64):
            x = xps.astype(x, xps.float64)
        return Backend.erf(self, x)

    def erf(self, x):
        return self._keep_dtype(self._library_erf(x), x)

    # fused kernels: ElementwiseKernel's type rule on the reference formulas
    tanh_backward = _fused("gk_tanh_bwd", _YG)(Backend.tanh_backward)
    sigmoid_backward = _fused("gk_sigmoid_bwd", _YG)(Backend.sigmoid_backward)
    relu_backward = _fused("gk_relu_bwd", _YG)(Backend.relu_backward)
    sqrt_backward = _fused("gk_sqrt_bwd", _YG)(Backend.sqrt_backward)
    gelu_backward = _fused("gk_gelu_bwd", _XG)(Backend.gelu_backward)
    mask_mul = _fused("gk_mask_mul", ((0, "g"),), {1: ("m", xps.bool)})(Backend.mask_mul)
    sgd_update = _fused("gk_sgd_update", ((0, "p"), (1, "g"), (2, "buf")))(Backend.sgd_update)
    adam_update = _fused("gk_adam_update", ((0, "p"), (1, "g"), (2, "m"), (3, "v"),
                                            (4, "vmax")))(Backend.adam_update)

    # ------------------------------------------------------------ indexing
    # array_api_strict implements only the array API's indexing; gradkit's tape
    # hands backends NumPy-style indices. Emulate them with namespace ops only
    # (no host round trip): normalize basic indices, and gather integer-array
    # indices through linear positions with ``take``.
    def _split(self, x, idx):
        if not isinstance(idx, tuple):
            idx = (idx,)
        A = _A
        n_explicit = sum(1 for k in idx if k is not None and k is not Ellipsis
                         and not (isinstance(k, A) and k.dtype == xps.bool and k.ndim > 1))
        n_explicit += sum(k.ndim for k in idx if isinstance(k, A) and k.dtype == xps.bool and k.ndim > 1)
        ell = [i for i, k in enumerate(idx) if k is Ellipsis]
        if ell:
            i = ell[0]
            idx = idx[:i] + (slice(None),) * (x.ndim - n_explicit) + idx[i + 1:]
        else:
            idx = idx + (slice(None),) * (x.ndim - n_explicit)
        arrays = [i for i, k in enumerate(idx) if isinstance(k, A) and k.dtype != xps.bool]
        return idx, arrays

    def getitem(self, x, idx):
        idx, arrays = self._split(x, idx)
        if not arrays:
            return x[idx]
        return self._gather(x, idx, arrays)

    def _gather(self, x, idx, arrays):
        # 1) basic part: keep every array-indexed dim whole
        basic = tuple(slice(None) if i in arrays else k for i, k in enumerate(idx))
        y = x[basic]
        # dims of y that the arrays index: count surviving dims before each
        pos, d = {}, 0
        for i, k in enumerate(idx):
            if k is None:
                d += 1
            elif isinstance(k, int):
                continue
            else:
                if i in arrays:
                    pos[i] = d
                d += 1
        adims = [pos[i] for i in arrays]
        bshape = xps.broadcast_arrays(*[idx[i] for i in arrays])[0].shape
        lin = None
        for i in arrays:
            size = y.shape[pos[i]]
            a = xps.broadcast_to(xps.astype(idx[i], xps.int64), bshape)
            a = a % size   # CuPy wraps out-of-range indices around (no error)
            lin = a if lin is None else lin * size + a
        rest = [k for k in range(y.ndim) if k not in adims]
        yp = xps.permute_dims(y, tuple(rest + adims))
        m = 1
        for k in adims:
            m *= y.shape[k]
        yp = xps.reshape(yp, tuple(y.shape[k] for k in rest) + (m,))
        out = xps.take(yp, xps.reshape(lin, (-1,)), axis=len(rest))
        out = xps.reshape(out, tuple(y.shape[k] for k in rest) + tuple(bshape))
        consecutive = adims == list(range(adims[0], adims[0] + len(adims)))
        at = adims[0] if consecutive else 0
        nr, nb = len(rest), len(bshape)
        order = list(range(at)) + list(range(nr, nr + nb)) + list(range(at, nr))
        return xps.permute_dims(out, tuple(order))

    def setitem(self, a, idx, v):
        idx, arrays = self._split(a, idx)
        if arrays:
            raise IndexError("the fake accelerator does not emulate integer-array assignment")
        if any(k is None for k in idx):
            idx = tuple(k for k in idx if k is not None)
            if isinstance(v, _A):
                target = a[idx].shape
                n = 1
                for s in target:
                    n *= s
                v = xps.reshape(v, target) if v.size == n else xps.broadcast_to(v, target)
        a[idx] = v

    def index_put(self, x, v, idx):
        out = self.copy(x)
        self.setitem(out, idx, v)
        return out

    def index_zero(self, g, idx):
        out = self.copy(g)
        self.setitem(out, idx, 0)
        return out

    def getitem_backward(self, g, shape, idx, advanced):
        out = self.zeros(shape, g.dtype)
        if not advanced:
            self.setitem(out, idx, g)
            return out
        return self.scatter_add(out, idx, g)

    def scatter_add(self, out, idx, g):
        # one-hot (wrapping as cupyx.scatter_add: positions come from getitem) reduction over the linear positions the index selects
        n = 1
        for s in out.shape:
            n *= s
        pos = xps.reshape(xps.arange(n, device=self.xp_device), out.shape)
        lin = xps.reshape(self.getitem(pos, idx), (-1,))
        gv = xps.reshape(xps.broadcast_to(g, self.getitem(pos, idx).shape), (-1,))
        onehot = xps.astype(xps.reshape(lin, (-1, 1)) == xps.reshape(xps.arange(n, device=self.xp_device), (1, -1)), g.dtype)
        add = xps.sum(onehot * xps.reshape(gv, (-1, 1)), axis=0)
        return out + xps.reshape(add, out.shape)
