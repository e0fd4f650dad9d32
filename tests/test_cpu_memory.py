"""The glibc allocator settings the NumPy backend applies (backends/cpu_memory.py):
on by default on glibc, off when the user opts out or set MALLOC_* themselves."""
import os
import subprocess
import sys

import pytest

PROBE = ("import gradkit as gk; gk.zeros(1); "
         "from gradkit.backends import cpu_memory; print(cpu_memory.status())")


def _status(**env):
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k != "GRADKIT_MALLOC_TUNE"}
    r = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_on_by_default_on_glibc():
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").gnu_get_libc_version
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert _status().startswith("on (glibc")


def test_opt_out():
    assert _status(GRADKIT_MALLOC_TUNE="0") == "off (GRADKIT_MALLOC_TUNE=0)"


def test_users_malloc_settings_win():
    assert _status(MALLOC_ARENA_MAX="2").startswith("off (the environment sets MALLOC_*")
