"""Run the CUDA backend's vector kernels (backends/cuda_vector.py) on the host:
the generated CUDA source, unchanged, compiled by g++ with a prelude that
emulates ``blockIdx``/``threadIdx`` (a launcher runs every thread of the grid in
turn), and a stand-in CuPy whose ``RawKernel`` is that launcher, so
``VectorKernel``'s own glue (path choice, alignment, launch plan, scalars,
output allocation) runs without a GPU. Used by tests/test_kernels_host.py."""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import types

import numpy as np

from gradkit.backends import cuda_vector as cv

import kernel_host as kh

_PRELUDE = kh._HOST_PRELUDE + """
#include <cstddef>
#define __global__
#define __device__
#define __forceinline__ inline
struct gkh_dim3 { unsigned x, y, z; };
static gkh_dim3 blockIdx, threadIdx, blockDim, gridDim;
"""
_SIG = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')
_CT = {"double": ctypes.c_double, "float": ctypes.c_float, "bool": ctypes.c_bool,
       "long long": ctypes.c_longlong, "int": ctypes.c_int}


def _args(src):
    """(kernel name, [(C type, arg name)]) of the generated kernel."""
    name, args = _SIG.search(src).groups()
    out = []
    for a in args.split(","):
        t, _, n = a.strip().rpartition(" ")
        out.append((t.replace("const ", "").strip(), n))
    return name, out


def host_source(src):
    """The kernel's source without CuPy's headers, plus a launcher
    ``<name>__host(grid, block, args...)`` that runs each thread in turn."""
    body = "\n".join(ln for ln in src.splitlines() if not ln.startswith("#include <cupy/"))
    name, args = _args(src)
    decl = ", ".join(f"{t} {n}" for t, n in args)
    call = ", ".join(n for _, n in args)
    ns = "ns_" + hashlib.sha1(src.encode()).hexdigest()[:12]
    return name, f"""
namespace {ns} {{
{body}
extern "C" void {name}__host(unsigned _g, unsigned _b, {decl}) {{
  gridDim.x = _g; blockDim.x = _b;
  for (unsigned b = 0; b < _g; b++)
    for (unsigned t = 0; t < _b; t++) {{
      blockIdx.x = b; threadIdx.x = t;
      {name}({call});
    }}
}}
}}
"""


_libs = {}


def compile_sources(srcs):
    """Compile every source (one shared library, cached); {source: launcher}."""
    code = _PRELUDE + "".join(host_source(s)[1] for s in srcs)
    key = hashlib.sha1(code.encode()).hexdigest()[:16]
    if key not in _libs:
        d = tempfile.mkdtemp(prefix="gk_vec_")
        cpp, so = os.path.join(d, f"v{key}.cpp"), os.path.join(d, f"v{key}.so")
        with open(cpp, "w") as f:
            f.write(code)
        r = subprocess.run([kh.compiler(), "-O1", "-std=c++17", "-shared", "-fPIC", "-o", so,
                            cpp], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"host compile failed:\n{r.stderr[-4000:]}")
        _libs[key] = ctypes.CDLL(so)
    lib = _libs[key]
    return {s: HostLaunch(lib, s) for s in srcs}


class HostLaunch:
    """One compiled kernel, launched like ``cupy.RawKernel``: (grid, block, args)."""

    def __init__(self, lib, src):
        name, self.args = _args(src)
        self.f = getattr(lib, f"{name}__host")
        self.grids = []   # every launch's (blocks, threads), for the tests

    def __call__(self, grid, block, args):
        assert len(args) == len(self.args), (len(args), self.args)
        cargs = [ctypes.c_uint(grid[0]), ctypes.c_uint(block[0])]
        for (t, _), a in zip(self.args, args):
            if t.endswith("*"):
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:   # a typed scalar, as RawKernel takes it
                assert isinstance(a, np.generic), (t, type(a))
                cargs.append(_CT[t](a.item()))
        self.grids.append((grid[0], block[0]))
        self.f(*cargs)


class FakeArray(np.ndarray):
    """A NumPy array that answers ``.data.ptr`` and ``.data.device_id`` as a CuPy one."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data, device_id=0)


def fake_cupy(launchers):
    """A CuPy stand-in: ndarray/empty/dtype from NumPy, RawKernel from ``launchers``
    ({source: HostLaunch}; a source not there is compiled on its own)."""
    def raw_kernel(src, name, options=()):
        if src not in launchers:
            launchers.update(compile_sources([src]))
        return launchers[src]
    return types.SimpleNamespace(
        ndarray=FakeArray, dtype=np.dtype, RawKernel=raw_kernel,
        empty=lambda shape, dtype: np.empty(shape, dtype).view(FakeArray),
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0)))


def default_sources(specs, dtypes):
    """The vector source of every spec in every dtype, with the argument kinds
    gradkit calls it with (fixed-type inputs are scalars in the optimizer
    kernels, arrays elsewhere)."""
    out = []
    for dt in dtypes:
        for name, spec in specs.items():
            arrays = tuple(not (t != "T" and name in kh.SCALAR_KERNELS)
                           for t, _ in cv.params(spec["in_params"]))
            out.append(cv.source(spec, dt, arrays)[1])
    return out


def as_fake(a):
    """A C-contiguous copy of ``a`` as a FakeArray."""
    return np.ascontiguousarray(a).view(FakeArray)
