"""``gk.cuda``: availability (lazy, never raises), device count, synchronize."""
from . import backends as _backends
from .device import backend_of
from .graph import mode
from .reliability import host_sync_violation


def is_available():
    return _backends.cuda_status()[0]


def device_count():
    return _backends.cuda_status()[2] if is_available() else 0


def why_unavailable():
    """A sentence on why CUDA is not usable ('ok' when it is)."""
    return _backends.cuda_status()[1]


def synchronize(device=None):
    """Wait for every kernel queued on the device (a no-op without CUDA)."""
    if not is_available():
        return
    if mode.host_sync_guard:  # waiting on the device is what no_host_sync() forbids
        host_sync_violation("gk.cuda.synchronize()")
    B = backend_of(device if device is not None else "cuda")
    B.cuda_device.synchronize()
