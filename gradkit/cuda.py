"""``gk.cuda``: availability (lazy, never raises), device count, synchronize."""
import sys

from . import backends as _backends
from . import device as _device_module  # noqa: F401  (imported; looked up late below)
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
    """Wait for every kernel queued on ``device`` (None: cuda:0; an int N or
    'cuda:N'), then raise any deferred out-of-range index error found on it
    (``gk.set_index_checks``). A no-op without CUDA. Mirrors torch.cuda.synchronize."""
    if not is_available():
        return
    if mode.host_sync_guard:  # waiting on the device is what no_host_sync() forbids
        host_sync_violation("gk.cuda.synchronize()")
    if device is None:
        device = "cuda"
    elif isinstance(device, int) and not isinstance(device, bool):
        device = f"cuda:{device}"
    B = sys.modules["gradkit.device"].backend_of(device)   # looked up late: tests patch it
    B.synchronize()
