"""The fake accelerator: a test-only backend on ``array_api_strict`` arrays placed
on its fake device ``device1``.

It runs only the reference kernels of ``base.py`` (no NumPy fast path), so any
stray NumPy call in the tape fails (``array_api_strict`` refuses NumPy on
``device1``). Host round trips are trapped too: ``float()``, ``int()``,
``bool()``, ``operator.index`` and ``__dlpack__`` on a ``device1`` array raise
``HostSyncError`` unless the call comes through this backend's own ``to_host``
(which is what ``Tensor.numpy()``/``.item()``/``.tolist()`` use: an explicit,
user-requested transfer). CI has no GPU; this is how it shows that forward,
backward and gradient accumulation never leave the device.
"""
import threading

import array_api_strict as xps
import numpy as np

from .base import Backend


class HostSyncError(RuntimeError):
    """A device array was converted to a host value inside gradkit."""


_allowed = threading.local()
_DEVICE = xps.Device("device1")
_CPU = xps.Device("CPU_DEVICE")
_patched = False


def _trap(name, orig):
    def method(self, *args, **kwargs):
        if self.device == _DEVICE and not getattr(_allowed, "ok", False):
            raise HostSyncError(
                f"{name}() of an array on the fake accelerator: a host round trip "
                "inside gradkit (the tape must stay on the device)")
        return orig(self, *args, **kwargs)
    method.__name__ = name
    return method


def _install_traps():
    global _patched
    if _patched:
        return
    A = type(xps.asarray(0))
    for name in ("__float__", "__int__", "__bool__", "__index__", "__complex__",
                 "__dlpack__"):
        orig = getattr(A, name, None)
        if orig is not None:
            setattr(A, name, _trap(name, orig))
    _patched = True


class StrictBackend(Backend):
    type = "fake"

    def __init__(self):
        super().__init__(xps, "fake")
        self.xp_device = _DEVICE
        _install_traps()
        self.rng = np.random.default_rng()

    # host transfer: the only sanctioned way off the device
    def to_host(self, a):
        _allowed.ok = True
        try:
            try:
                return np.asarray(a.to_device(_CPU))
            except TypeError:  # array_api_strict on NumPy 1.26 (no np.asarray(copy=))
                return np.array(a._array, copy=True)
        finally:
            _allowed.ok = False

    def from_host(self, a, dtype=None):
        a = np.asarray(a)
        if dtype is None:
            dtype = self.dtypes.get(str(a.dtype))
        return xps.asarray(a, dtype=dtype, device=_DEVICE)

    def asarray(self, obj, dtype=None):
        if isinstance(obj, type(xps.asarray(0))):
            return xps.asarray(obj, dtype=dtype, device=_DEVICE) if obj.device == _DEVICE \
                else self.from_host(self.to_host(obj), dtype)
        return self.from_host(np.asarray(obj), dtype)

    def item(self, a):
        return self.to_host(a).item()

    def copy(self, a):
        try:
            return xps.asarray(a, copy=True, device=_DEVICE)
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
        return xps.arange(start, stop, step, dtype=dtype, device=_DEVICE)

    # ------------------------------------------------------------ indexing
    # array_api_strict implements only the array API's indexing; gradkit's tape
    # hands backends NumPy-style indices. Emulate them with namespace ops only
    # (no host round trip): normalize basic indices, and gather integer-array
    # indices through linear positions with ``take``.
    def _split(self, x, idx):
        if not isinstance(idx, tuple):
            idx = (idx,)
        A = type(xps.asarray(0))
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
            a = xps.where(a < 0, a + size, a)
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
            A = type(xps.asarray(0))
            if isinstance(v, A):
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
        # one-hot reduction over the linear positions the index selects
        n = 1
        for s in out.shape:
            n *= s
        pos = xps.reshape(xps.arange(n, device=_DEVICE), out.shape)
        lin = xps.reshape(self.getitem(pos, idx), (-1,))
        gv = xps.reshape(xps.broadcast_to(g, self.getitem(pos, idx).shape), (-1,))
        onehot = xps.astype(xps.reshape(lin, (-1, 1)) == xps.reshape(xps.arange(n, device=_DEVICE), (1, -1)), g.dtype)
        add = xps.sum(onehot * xps.reshape(gv, (-1, 1)), axis=0)
        return out + xps.reshape(add, out.shape)
