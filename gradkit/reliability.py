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

The guard is one per-thread flag (``gradkit.graph.mode``), so another
thread keeps working normally; the core reads it only at the conversion sites
above, so it costs nothing while off.

float16 (mixed precision): gradkit has no autocast and no master weights.
Gradients are produced and accumulated in each leaf's own dtype, so a float16
parameter gets a float16 ``.grad`` (as in PyTorch without AMP). To train with
float32 master gradients, keep the parameters in float32 and cast to float16
inside the forward (``w.half()``): the cast's VJP casts the gradient back to
float32 before it reaches the leaf.
"""
from .errors import HostSyncError  # noqa: F401  (one class, shared with the fake device)
from .graph import FlagContext, host_sync_violation, mode  # noqa: F401


class no_host_sync(FlagContext):
    """Context manager and decorator: in this thread, raise
    :class:`HostSyncError` on any device -> host copy (see the module docstring)."""
    flag = "host_sync_guard"

    def __init__(self, enabled=True):
        super().__init__(bool(enabled))
        self.enabled = self.value


def is_host_sync_guarded():
    """True while ``no_host_sync`` is active in this thread."""
    return mode.host_sync_guard
