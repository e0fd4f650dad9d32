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
    A = xps.Array
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
            return np.asarray(a.to_device(_CPU))
        finally:
            _allowed.ok = False

    def from_host(self, a, dtype=None):
        a = np.asarray(a)
        if dtype is None:
            dtype = self.dtypes.get(str(a.dtype))
        return xps.asarray(a, dtype=dtype, device=_DEVICE)

    def asarray(self, obj, dtype=None):
        if isinstance(obj, xps.Array):
            return xps.asarray(obj, dtype=dtype, device=_DEVICE) if obj.device == _DEVICE \
                else self.from_host(self.to_host(obj), dtype)
        return self.from_host(np.asarray(obj), dtype)

    def item(self, a):
        return self.to_host(a).item()

    def copy(self, a):
        return xps.asarray(a, copy=True, device=_DEVICE)

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
