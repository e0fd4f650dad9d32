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


# ---- torch.cuda names PyTorch programs call (issue 12)
from .device import backend_of as _backend_of  # noqa: E402


def manual_seed(seed):
    """Seed the generator of the current CUDA device (device 0 in gradkit);
    silently does nothing without CUDA, as torch.cuda.manual_seed."""
    _seed_devices(seed, all_devices=False)


def manual_seed_all(seed):
    """Seed the generators of every CUDA device; does nothing without CUDA
    (as torch.cuda.manual_seed_all). ``gk.manual_seed`` seeds them too."""
    _seed_devices(seed, all_devices=True)


def _seed_devices(seed, all_devices):
    seed = int(seed)
    if not is_available():
        return
    for i in range(device_count() if all_devices else 1):
        B = _backend_of(f"cuda:{i}")
        B.seed(seed)
        B._seeded = True  # creation._backend must not reseed it with the global seed


def current_device():
    """The index of the current CUDA device (0: gradkit addresses devices by name)."""
    return 0


def empty_cache():
    """Release the cached, unused blocks of CuPy's memory pools (as torch.cuda.empty_cache)."""
    if not is_available():
        return
    _backends.cuda.empty_cache()
