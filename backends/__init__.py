"""Backends: the only part of gradkit that imports numpy or cupy.

``get(type, index)`` returns the backend for a device, created once and cached.
CUDA is detected lazily and never raises: see ``cuda_status``.
"""
import os
import threading

import numpy

from ..errors import GradkitError
from .base import check_host_sync  # noqa: F401
from .device_mixin import index_check_mode, set_index_check_mode  # noqa: F401
from .cupy_backend import CupyBackend   # imports cupy itself only when made
from .numpy_backend import NumpyBackend

_lock = threading.Lock()
_cache = {}


_cuda_status = None


def cuda_status():
    """(usable, reason, device_count). Cached; never raises.

    Usable means: cupy imports, a device exists, and a tiny kernel runs.
    ``GRADKIT_DEVICE=cpu`` forces the CPU.
    """
    global _cuda_status
    if _cuda_status is not None:
        return _cuda_status
    if os.environ.get("GRADKIT_DEVICE", "").lower() == "cpu":
        _cuda_status = (False, "GRADKIT_DEVICE=cpu forces the CPU", 0)
        return _cuda_status
    try:
        import cupy as cp  # optional dependency: imported only when CUDA is asked about
    except Exception as e:  # ImportError, or a broken install
        _cuda_status = (False, f"cupy is not installed ({type(e).__name__}: {e}); "
                        "install it with: pip install 'gradkit[cuda12]' (CUDA 12) "
                        "or 'gradkit[cuda13]' (CUDA 13)", 0)
        return _cuda_status
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as e:
        _cuda_status = (False, f"no usable CUDA driver or device ({type(e).__name__}: {e}); "
                        "check nvidia-smi and the NVIDIA driver", 0)
        return _cuda_status
    if n < 1:
        _cuda_status = (False, "the CUDA driver reports no GPU", 0)
        return _cuda_status
    step = "making device 0 current"
    try:
        with cp.cuda.Device(0):
            step = "allocating memory on the GPU"
            x = cp.empty(4, dtype=cp.float32)
            step = "compiling a test kernel (NVRTC)"
            x = cp.arange(4, dtype=cp.float32)   # CuPy compiles every kernel at run time
            step = "running a test kernel"
            if float((x * 2).sum()) != 12.0:
                raise RuntimeError("wrong result from a test kernel")
    except Exception as e:
        _cuda_status = (False, f"{step} failed ({type(e).__name__}: {str(e)[:300]}); "
                        + _STEP_FIX[step], n)
        return _cuda_status
    _cuda_status = (True, "ok", n)
    return _cuda_status




_STEP_FIX = {
    "making device 0 current": "check nvidia-smi, CUDA_VISIBLE_DEVICES and the NVIDIA driver",
    "allocating memory on the GPU": "the GPU may be full or in use (nvidia-smi shows its "
                                    "memory and processes)",
    "compiling a test kernel (NVRTC)": "CuPy compiles kernels at run time with NVRTC and the "
                                       "CUDA headers: install them with pip install "
                                       "'cupy-cuda12x[ctk]' (or 'cupy-cuda13x[ctk]'), or the "
                                       "nvidia-cuda-nvrtc-cu12 and nvidia-cuda-runtime-cu12 "
                                       "wheels, or point CUDA_PATH at a CUDA toolkit",
    "running a test kernel": "the kernel compiled but failed or gave a wrong result: check the "
                             "driver supports this CUDA version (python -m gradkit info)",
}


def host_xp():
    """NumPy, for host-side tools (gradcheck's float64 bookkeeping, I/O): the tape
    layer reaches it only through here."""
    return numpy


def _make(type_, index):
    if type_ == "cpu":
        return NumpyBackend()
    if type_ == "cuda":
        ok, why, n = cuda_status()
        if not ok:
            raise GradkitError(f"gradkit: CUDA device requested but CUDA is not usable: {why}")
        if index >= n:
            raise GradkitError(f"gradkit: cuda:{index} requested but only {n} CUDA device(s) exist")
        return CupyBackend(index)
    if type_ == "fake":
        if index > 1:
            raise GradkitError(f"gradkit: fake:{index} requested but the fake accelerator has "
                           "2 devices (fake, fake:1)")
        # lazy: it imports array_api_strict, a test dependency
        from .strict_backend import StrictBackend
        return StrictBackend(index)
    raise GradkitError(f"gradkit: no backend for device type {type_!r}")


def get(type_, index=0):
    key = (type_, index)
    b = _cache.get(key)
    if b is None:
        with _lock:
            b = _cache.get(key)
            if b is None:
                b = _cache[key] = _make(type_, index)
    return b


# torch.backends' flag modules (gk.backends.mps.is_available(), gk.backends.cudnn.benchmark,
# gk.backends.cuda.matmul.allow_tf32): plain attributes of this package
from . import mps, cudnn, cuda  # noqa: E402,F401
