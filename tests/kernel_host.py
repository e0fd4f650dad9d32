"""Run the CUDA backend's fused-kernel bodies on the host: each body of
``cupy_backend.kernel_specs()`` is compiled by the host C++ compiler (g++)
into a loop over plain arrays, loaded with ctypes and called with
``ElementwiseKernel``'s convention (inputs, then outputs), so the CuPy backend's
own Python glue (argument order, scalars, casts) runs against the real bodies
without a GPU. Shared by tests/test_kernels_host.py and tests/test_nvrtc.py."""
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from gradkit.backends import cupy_backend

CTYPE = {"float32": "float", "float64": "double", "bool": "bool", "int32": "int"}
#: kernels whose fixed-type parameters (float64 lr, bool maximize...) are Python
#: scalars at every call site; elsewhere a fixed type is an array (bool m)
SCALAR_KERNELS = ("sgd_update", "sgd_momentum_update", "adam_update", "adam_amsgrad_update")

# CUDA device functions the bodies use that the host's libm lacks
_HOST_PRELUDE = """
#include <math.h>
#include <cmath>
#include <stdint.h>
using std::isnan;
static inline float rsqrt(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
"""


def params(s):
    """'T y, float64 lr' -> [('T', 'y'), ('float64', 'lr')]"""
    out = []
    for p in s.split(","):
        p = p.strip()
        if p:
            t, n = p.split()
            out.append((t, n))
    return out


def compiler():
    return shutil.which("g++") or shutil.which("c++")


def host_source(name, spec, dtype):
    """C++ for one kernel body in one dtype: ``extern "C" void k(long n, ...)``."""
    ins, outs = params(spec["in_params"]), params(spec["out_params"])
    ct = CTYPE[dtype]
    scalar = name in SCALAR_KERNELS
    args, binds = ["long _n"], []
    for t, n in ins:
        c = ct if t == "T" else CTYPE[t]
        if t != "T" and scalar:
            args.append(f"{c} {n}")
        else:
            args.append(f"const {c}* _raw_{n}")
            binds.append(f"const {c} &{n} = _raw_{n}[i];")
    for t, n in outs:
        c = ct if t == "T" else CTYPE[t]
        args.append(f"{c}* _raw_{n}")
        binds.append(f"{c} &{n} = _raw_{n}[i];")
    fn = f"gk_host_{name}_{dtype}"
    return fn, f"""
namespace ns_{fn} {{
typedef {ct} T;
{spec.get("preamble", "")}
extern "C" void {fn}({", ".join(args)}) {{
  for (long i = 0; i < _n; i++) {{
    {" ".join(binds)}
    {spec["operation"]};
  }}
}}
}}
"""


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class HostKernel:
    """One compiled body, called like ``cupy.ElementwiseKernel`` (inputs, then
    optional outputs; outputs are updated in place and returned)."""

    def __init__(self, lib, name, spec, dtype):
        self.f = getattr(lib, f"gk_host_{name}_{dtype}")
        self.name, self.dtype = name, np.dtype(dtype)
        self.ins, self.outs = params(spec["in_params"]), params(spec["out_params"])
        self.scalar = name in SCALAR_KERNELS
        self.nin = len(self.ins)

    def __call__(self, *args):
        ins, outs = args[:self.nin], list(args[self.nin:])
        arrays = [a for (t, _), a in zip(self.ins, ins) if not (t != "T" and self.scalar)]
        shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])
        cargs = [ctypes.c_long(int(np.prod(shape)))]
        keep = []
        for (t, n), a in zip(self.ins, ins):
            if t != "T" and self.scalar:
                cargs.append(ctypes.c_double(a) if t == "float64" else ctypes.c_bool(a))
                continue
            want = self.dtype if t == "T" else np.dtype(t)
            if isinstance(a, np.ndarray) and a.dtype != want:
                raise TypeError(f"Type is mismatched. {n} {a.dtype} {want} {t}")
            a = np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=want), shape))
            keep.append(a)
            cargs.append(a.ctypes.data_as(ctypes.c_void_p))
        while len(outs) < len(self.outs):
            outs.append(np.empty(shape, self.dtype))
        for (t, n), o in zip(self.outs, outs):
            if o.dtype != self.dtype or not o.flags.c_contiguous:
                raise TypeError(f"Type is mismatched. {n} {o.dtype} {self.dtype} {t}")
            cargs.append(o.ctypes.data_as(ctypes.c_void_p))
        self.f(*cargs)
        return outs[0] if len(outs) == 1 else tuple(outs)


_libs = {}


def build(dtypes=("float32", "float64"), specs=None, workdir=None):
    """Compile every body in ``dtypes`` into one shared library (cached per
    source); returns {(name, dtype): HostKernel}."""
    specs = specs if specs is not None else cupy_backend.kernel_specs()
    src = _HOST_PRELUDE
    for dt in dtypes:
        for name, spec in specs.items():
            src += host_source(name, spec, dt)[1]
    key = hashlib.sha1(src.encode()).hexdigest()[:16]
    if key not in _libs:
        d = workdir or tempfile.mkdtemp(prefix="gk_host_")
        cpp, so = os.path.join(d, f"k{key}.cpp"), os.path.join(d, f"k{key}.so")
        with open(cpp, "w") as f:
            f.write(src)
        r = subprocess.run([compiler(), "-O1", "-shared", "-fPIC", "-o", so, cpp],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"host compile failed:\n{r.stderr[-4000:]}")
        _libs[key] = ctypes.CDLL(so)
    lib = _libs[key]
    return {(n, dt): HostKernel(lib, n, s, dt) for dt in dtypes for n, s in specs.items()}


def host_cupy_backend(kernels, dtype):
    """A CupyBackend whose CuPy is NumPy and whose fused kernels are the host
    builds of the same bodies: its own Python glue runs unchanged."""
    B = object.__new__(cupy_backend.CupyBackend)
    B.xp = B.cp = np
    B.cuda_device = _Nothing()
    B.dtypes = {n: np.dtype(n) for n in ("float16", "float32", "float64", "int64", "bool")}
    k = {n: kernels[(n, dtype)] for n in cupy_backend.kernel_specs()}
    for n in ("tanh_backward", "sigmoid_backward", "relu_backward", "sqrt_backward",
              "sigmoid", "relu", "mask_mul", "rsqrt"):
        setattr(B, n, k[n])
    B._k_gelu = {"tanh": k["gelu_tanh"], "none": k["gelu_erf"]}
    B._k_gelu_bwd = {"tanh": k["gelu_tanh_backward"], "none": k["gelu_erf_backward"]}
    B._k_sgd, B._k_sgd_m = k["sgd_update"], k["sgd_momentum_update"]
    B._k_adam, B._k_adam_ams = k["adam_update"], k["adam_amsgrad_update"]
    B._k_exp_sub = k["exp_sub"]
    return B
