"""Keep a steady-state training step from asking the OS for fresh pages (glibc only).

A training step allocates and frees the same large arrays (activations, gradients,
temporaries) every time. With glibc's defaults, an array over the mmap threshold
(128 KiB, raised dynamically up to 32 MiB as blocks are freed) gets its own mapping,
and the heap top is trimmed back to the OS once 2x that threshold lies free there; each
new mapping or regrown heap is then touched page by page, and every first touch is a
page fault (zeroed by the kernel). Hand-written NumPy suffers the same, but reuses
its buffers more. CuPy has its memory pool for this; on the CPU gradkit asks glibc to
keep freed memory for reuse instead:

    mallopt(M_MMAP_THRESHOLD, 256 MiB)   # blocks below this come from the heap
    mallopt(M_TRIM_THRESHOLD, 512 MiB)   # and up to this much free heap is kept

The cost is that up to ``M_TRIM_THRESHOLD`` of freed memory stays mapped in the
process (it is reused by the next allocation, not returned to the OS at once).

This runs once, when the NumPy backend loads, and only when it cannot surprise:
- not at all with ``GRADKIT_MALLOC_TUNE=0`` in the environment;
- not when the user set any ``MALLOC_*`` variable (their settings win);
- only on Linux with glibc (``gnu_get_libc_version`` present); elsewhere nothing.
``status()`` says what was done; ``python -m gradkit info`` prints it.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 512 << 20

_status = ["not run"]


def tune():
    """Apply the allocator settings above where allowed; returns the status line."""
    if os.environ.get("GRADKIT_MALLOC_TUNE", "1") == "0":
        _status[0] = "off (GRADKIT_MALLOC_TUNE=0)"
    elif any(k.startswith("MALLOC_") for k in os.environ):
        _status[0] = "off (the environment sets MALLOC_* variables; they are kept)"
    elif not sys.platform.startswith("linux"):
        _status[0] = f"off (not glibc: {sys.platform})"
    else:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.gnu_get_libc_version.restype = ctypes.c_char_p
            version = libc.gnu_get_libc_version().decode()
            libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and \
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        except (OSError, AttributeError) as e:
            _status[0] = f"off (no glibc mallopt: {e})"
        else:
            _status[0] = (f"on (glibc {version}: mmap threshold {MMAP_THRESHOLD >> 20} MiB, "
                          f"trim threshold {TRIM_THRESHOLD >> 20} MiB; GRADKIT_MALLOC_TUNE=0 "
                          "turns it off)") if ok else f"off (glibc {version} refused mallopt)"
    return _status[0]


def status():
    """What ``tune()`` did, in words."""
    return _status[0]
