"""Reliability tools: the host-sync guard.

``with gk.no_host_sync():`` (or ``@gk.no_host_sync()`` on a function) raises a
:class:`HostSyncError` on anything that copies a *device* tensor to the host
or waits on the device: ``.item()``, ``float()``, ``int()``, ``bool()`` (so
``if t:``), ``operator.index`` (``range(t)``, ``x[t]`` as a Python index),
``.tolist()``, ``.numpy()``, ``np.asarray(t)``, ``.cpu()``/``.to("cpu")``, the
``repr`` of the tensor, ``gk.tensor([t0, t1])`` of device scalars, indexing with
a boolean mask (its result size is read back from the device) and
``gk.cuda.synchronize()``. The error names the op and the caller's
``file:line`` (the innermost frame outside gradkit). Tensors on the CPU are never
guarded: on the host these conversions cost nothing. The guard sees gradkit's
own conversion points; a synchronization hidden inside a CuPy call that gradkit
makes is not reported.

The guard is one per-thread flag (``gradkit.autograd.graph.mode``), so another
thread keeps working normally; the core reads it only at the conversion sites
above, so it costs nothing while off.

float16 (mixed precision): gradkit has no autocast and no master weights.
Gradients are produced and accumulated in each leaf's own dtype, so a float16
parameter gets a float16 ``.grad`` (as in PyTorch without AMP). To train with
float32 master gradients, keep the parameters in float32 and cast to float16
inside the forward (``w.half()``): the cast's VJP casts the gradient back to
float32 before it reaches the leaf.
"""
import functools

from .autograd.anomaly import creation_site
from .autograd.graph import mode


from .backends.base import HostSyncError  # noqa: E402,F401  (one class, shared with the fake device)


def host_sync_violation(what):
    """Called by the core, only while the guard is on and only for a non-cpu
    tensor: ``what`` names the conversion (``item``, ``float``, ``repr``...)."""
    site = creation_site()
    raise HostSyncError(
        f"gradkit.no_host_sync: {what} copies a device tensor to the host (a device "
        f"synchronization) at {site}. Keep the value on the device (use tensor ops such "
        f"as gk.where instead of Python control flow), or move the conversion outside "
        f"the `with gk.no_host_sync():` block")


class no_host_sync:
    """Context manager and decorator: in this thread, raise
    :class:`HostSyncError` on any device -> host copy (see the module docstring)."""

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)
        self._prev = []

    def __enter__(self):
        self._prev.append(mode.host_sync_guard)
        mode.host_sync_guard = self.enabled
        return self

    def __exit__(self, *exc):
        mode.host_sync_guard = self._prev.pop()
        return False

    def __call__(self, fn):
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = mode.host_sync_guard
            mode.host_sync_guard = enabled
            try:
                return fn(*args, **kwargs)
            finally:
                mode.host_sync_guard = prev
        return wrapper


def is_host_sync_guarded():
    """True while ``no_host_sync`` is active in this thread."""
    return mode.host_sync_guard
