"""A faster launch path for the CUDA backend's fused elementwise kernels.

``cupy.ElementwiseKernel`` gives each thread one element per input (one 4-byte
load for float32): on a GPU with HBM3e that keeps too few bytes in flight and
the kernels are latency-bound (issue 14: 0.6 of a device-to-device copy on an
H200). When every array operand is C-contiguous with one shape, the common
case, :class:`VectorKernel` launches a ``cupy.RawKernel`` generated from the
SAME spec (params, body, preamble of ``cupy_backend.kernel_specs()``): each
thread handles ``elems(T)`` consecutive elements (16 bytes of ``T``), issues
the loads of all of them first (one 16-byte vector load per operand when every
pointer is aligned, plain loads otherwise), runs the unchanged body per
element, then stores. The last ``n % elems(T)`` elements go one per thread.
Indices are 64-bit, scalar parameters (lr, betas...) are typed kernel
arguments; both paths compile without FMA contraction (``OPTIONS``), so they
give the same bits. Anything else
(broadcasting, strides, mixed dtypes, 0-size, a Python scalar for a ``T``
parameter) calls the ElementwiseKernel as before, so errors are unchanged.

The source generator needs no CuPy: tests/test_nvrtc.py compiles every
generated kernel with NVRTC and tests/kernel_host.py runs the same source with
g++, emulating ``blockIdx``/``threadIdx`` (``launch_plan`` is shared).
"""
import re

import numpy

#: bytes of ``T`` each thread handles: one 16-byte vector per array operand
#: (on an H200, n = 2^26 float32: 16 B 1.01-1.03x a d2d copy's bandwidth,
#: 32 B 0.96-0.99x, 64 B 0.72-0.84x; ElementwiseKernel 0.45-0.76x)
BYTES_PER_THREAD = 16
#: NVRTC options of the vector kernels AND of their ElementwiseKernel fallbacks
#: (cupy_backend._kernels): without contraction into FMAs both paths round
#: every operation as written, so they give the same bits whatever the code
#: around the body (with --fmad=true the unrolled loop fused another product of
#: sgd_momentum's ``buf * mom + damp1 * d`` on the H200: 1 ulp apart)
OPTIONS = ("--fmad=false",)
#: threads per block, and the most blocks of one launch (a grid-stride loop
#: covers the rest, so any size launches)
BLOCK = 256
MAX_BLOCKS = 1 << 16

_CTYPE = {"bool": "bool", "int8": "signed char", "int16": "short", "int32": "int",
          "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short",
          "uint32": "unsigned int", "uint64": "unsigned long long", "float16": "float16",
          "float32": "float", "float64": "double"}
_ITEMSIZE = {"bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1,
             "uint16": 2, "uint32": 4, "uint64": 8, "float16": 2, "float32": 4, "float64": 8}
FLOATS = ("float16", "float32", "float64")
#: what CuPy includes in every ElementwiseKernel (cupy._core.core._cupy_header_list)
_CUPY_HEADERS = ("cupy/complex.cuh", "cupy/carray.cuh", "cupy/atomics.cuh",
                 "cupy/math_constants.h")

_HELPERS = r"""
/* P elements of U in one aligned word: its copy is one vector load/store */
template <typename U, int P> struct alignas(sizeof(U) * P) gkv_pack { U v[P]; };
/* E consecutive elements of p into r: whole words (up to 16 bytes) when the
   caller checked every pointer's alignment, else one element at a time */
template <typename U, int E>
__device__ __forceinline__ void gkv_load(U (&r)[E], const U* p, bool vec) {
  const int P = (int)sizeof(U) * E <= 16 ? E : 16 / (int)sizeof(U);
  if (vec) {
#pragma unroll
    for (int j = 0; j < E / P; j++) {
      const gkv_pack<U, P> w = reinterpret_cast<const gkv_pack<U, P>*>(p)[j];
#pragma unroll
      for (int k = 0; k < P; k++) r[j * P + k] = w.v[k];
    }
  } else {
#pragma unroll
    for (int k = 0; k < E; k++) r[k] = p[k];
  }
}
template <typename U, int E>
__device__ __forceinline__ void gkv_store(U* p, const U (&r)[E], bool vec) {
  const int P = (int)sizeof(U) * E <= 16 ? E : 16 / (int)sizeof(U);
  if (vec) {
#pragma unroll
    for (int j = 0; j < E / P; j++) {
      gkv_pack<U, P> w;
#pragma unroll
      for (int k = 0; k < P; k++) w.v[k] = r[j * P + k];
      reinterpret_cast<gkv_pack<U, P>*>(p)[j] = w;
    }
  } else {
#pragma unroll
    for (int k = 0; k < E; k++) p[k] = r[k];
  }
}
"""


def params(s):
    """'T y, float64 lr' -> [('T', 'y'), ('float64', 'lr')]"""
    return [tuple(p.split()) for p in s.split(",") if p.strip()]


_UNSAFE = re.compile(r"\b(return|break|continue|goto|_ind|_raw_\w+|__syncthreads)\b")
_CONTROL = re.compile(r"\b(if|else|for|while|do|switch)\b")


def eligible(spec):
    """Whether a body can run per element inside the vector loop: no early exit
    (return/break/continue would leave the other elements of the thread), no
    use of ElementwiseKernel's indexer or raw arrays."""
    return _UNSAFE.search(spec["operation"]) is None


def write_only(spec, name):
    """Whether output ``name`` is only ever assigned (``name = ...`` as a whole
    statement, no control flow in the body): then it is not loaded first.
    Otherwise (read, updated in place, assigned conditionally) it is loaded, as
    ElementwiseKernel's reference to the element would see it."""
    op = spec["operation"]
    if _CONTROL.search(op):
        return False
    uses = list(re.finditer(rf"\b{re.escape(name)}\b", op))
    assigns = re.findall(rf"(?:^|[;{{}}])\s*{re.escape(name)}\s*=(?!=)", op)
    return len(uses) == len(assigns) > 0


def elems(dtype):
    """Elements each thread handles for ``T = dtype``."""
    return max(1, BYTES_PER_THREAD // _ITEMSIZE[str(dtype)])


def kernel_name(spec, dtype, arrays):
    """The extern "C" name: one per (body, dtype, which fixed-type inputs are arrays)."""
    suffix = "".join("a" if a else "s" for a in arrays)
    return f"{spec['name']}__vec_{dtype}_{suffix}"


def signature(spec, dtype, arrays):
    """[(C type, name, kind)] of the generated kernel's arguments, kind one of
    'in' (const pointer), 'out' (pointer), 'scalar', 'n', 'vec'."""
    out = []
    for (t, n), is_array in zip(params(spec["in_params"]), arrays):
        c = _CTYPE[str(dtype)] if t == "T" else _CTYPE[t]
        out.append((c, n, "in" if is_array else "scalar"))
    for t, n in params(spec["out_params"]):
        out.append((_CTYPE[str(dtype)] if t == "T" else _CTYPE[t], n, "out"))
    return out + [("long long", "_gk_n", "n"), ("bool", "_gk_vec", "vec")]


def source(spec, dtype, arrays, headers=True):
    """CUDA source of the vector kernel for one spec, ``T = dtype`` and
    ``arrays`` (one bool per input: an array, or a by-value scalar; ``T``
    inputs are always arrays). ``headers=False`` leaves out the CuPy includes
    (the host compiler gets its own prelude)."""
    dtype = str(dtype)
    E = elems(dtype)
    sig = signature(spec, dtype, arrays)
    inc = ""
    if headers:
        inc = "".join(f"#include <{h}>\n" for h in _CUPY_HEADERS)
        if dtype == "float16":
            inc += "#include <cupy/float16.cuh>\n"
    args = []
    for c, n, kind in sig:
        if kind == "in":
            args.append(f"const {c}* _gkp_{n}")
        elif kind == "out":
            args.append(f"{c}* _gkp_{n}")
        else:
            args.append(f"const {c} {n}")
    loads, binds, stores, tail = [], [], [], []
    for c, n, kind in sig:
        if kind not in ("in", "out"):
            continue
        loaded = kind == "in" or not write_only(spec, n)
        const = "const " if kind == "in" else ""
        loads.append(f"{c} _gkv_{n}[{E}];")
        if loaded:
            loads.append(f"gkv_load(_gkv_{n}, _gkp_{n} + _gk_base, _gk_vec);")
        binds.append(f"{const}{c} &{n} = _gkv_{n}[_gk_k];")
        tail.append(f"{const}{c} &{n} = _gkp_{n}[_gk_t];")
        if kind == "out":
            stores.append(f"gkv_store(_gkp_{n} + _gk_base, _gkv_{n}, _gk_vec);")
    name = kernel_name(spec, dtype, arrays)
    body = spec["operation"]
    nl = "\n      "
    return name, f"""{inc}
typedef {_CTYPE[dtype]} T;
{spec.get("preamble", "")}
{_HELPERS}
extern "C" __global__ void {name}({", ".join(args)}) {{
  const long long _gk_tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long _gk_threads = (long long)gridDim.x * blockDim.x;
  const long long _gk_full = _gk_n / {E};
  for (long long _gk_c = _gk_tid; _gk_c < _gk_full; _gk_c += _gk_threads) {{
    const long long _gk_base = _gk_c * {E};
    {nl.join(loads)}
#pragma unroll
    for (int _gk_k = 0; _gk_k < {E}; _gk_k++) {{
      const ptrdiff_t i = (ptrdiff_t)(_gk_base + _gk_k);
      {nl.join(binds)}
      {body};
      (void)i;
    }}
    {nl.join(stores)}
  }}
  /* the tail: fewer than {E} elements, one per thread */
  for (long long _gk_t = _gk_full * {E} + _gk_tid; _gk_t < _gk_n; _gk_t += _gk_threads) {{
    const ptrdiff_t i = (ptrdiff_t)_gk_t;
    {nl.join(tail)}
    {body};
    (void)i;
  }}
}}
"""


def launch_plan(n, E, block=None, max_blocks=None):
    """(blocks, threads per block) for ``n`` elements, ``E`` per thread: enough
    threads for every full chunk (a grid-stride loop beyond ``max_blocks``)
    and at least one block (the tail, < E elements, one per thread)."""
    block = block or BLOCK
    max_blocks = max_blocks or MAX_BLOCKS
    chunks = max(n // E, 1)
    return max(1, min(-(-chunks // block), max_blocks)), block


def aligned(ptrs_and_sizes, E):
    """Whether every operand's chunks start on a whole vector word: pointer
    divisible by min(16, E * itemsize) bytes."""
    return all(p % min(16, E * s) == 0 for p, s in ptrs_and_sizes)


class VectorKernel:
    """Called like the ``cupy.ElementwiseKernel`` it wraps (inputs, then
    optional outputs; returns the output, or a tuple of them). Takes the vector
    path when every array is C-contiguous, of one shape, on the current device,
    ``T`` arrays share one float dtype and fixed-type arrays have exactly their
    dtype; otherwise calls ``fallback``."""

    def __init__(self, spec, fallback, cp):
        self.spec, self.fallback, self.cp = spec, fallback, cp
        self.ins, self.outs = params(spec["in_params"]), params(spec["out_params"])
        self.nin, self.nout = len(self.ins), len(self.outs)
        # what cuda_tools' warm-up reads off an ElementwiseKernel
        self.in_params = getattr(fallback, "in_params", None)
        self.out_params = getattr(fallback, "out_params", None)
        self.name = spec["name"]
        self.eligible = eligible(spec)
        self._fixed = {t: cp.dtype(t) for t, _ in self.ins + self.outs if t != "T"}
        self._scalar = {t: numpy.dtype(t).type for t, _ in self.ins if t != "T"}
        self._cache = {}
        self.launches = 0   # vector launches (the benchmark and tests read it)

    def __call__(self, *args):
        if not self.eligible or len(args) not in (self.nin, self.nin + self.nout):
            return self.fallback(*args)
        r = self._vector(args)
        return self.fallback(*args) if r is None else r

    def _vector(self, args):
        """The vector launch, or None when it does not apply."""
        cp = self.cp
        nd = cp.ndarray
        dtype = shape = None
        arrays, kargs, mask = [], [], []
        for (t, _), a in zip(self.ins + self.outs, args):
            if isinstance(a, nd):
                if not a.flags.c_contiguous or (shape is not None and a.shape != shape):
                    return None
                shape = a.shape
                if t == "T":
                    if dtype is None:
                        dtype = a.dtype
                    elif a.dtype != dtype:
                        return None
                elif a.dtype != self._fixed[t]:
                    return None
                arrays.append(a)
                mask.append(True)
                kargs.append(a)
            elif t == "T" or len(mask) >= self.nin:
                return None
            else:
                try:
                    kargs.append(self._scalar[t](a))
                except (TypeError, ValueError, OverflowError):
                    return None
                mask.append(False)
        if dtype is None or dtype.name not in FLOATS:
            return None
        n = arrays[0].size
        dev = cp.cuda.runtime.getDevice()
        if n == 0 or any(a.data.device_id != dev for a in arrays):
            return None
        outs = list(args[self.nin:])
        for t, _ in self.outs[len(outs):]:
            o = cp.empty(shape, dtype=dtype if t == "T" else self._fixed[t])
            outs.append(o)
            arrays.append(o)
            kargs.append(o)
        E = elems(dtype.name)
        key = (dtype.name, tuple(mask[:self.nin]), E)
        kern = self._cache.get(key)
        if kern is None:
            kern = self._cache[key] = self._compile(dtype.name, key[1])
        vec = aligned([(a.data.ptr, a.itemsize) for a in arrays], E)
        blocks, threads = launch_plan(n, E)
        kern((blocks,), (threads,), tuple(kargs) + (numpy.int64(n), numpy.bool_(vec)))
        self.launches += 1
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _compile(self, dtype, arrays):
        name, src = source(self.spec, dtype, arrays)
        return self.cp.RawKernel(src, name, options=("--std=c++17",) + OPTIONS)


def wrap(kernels, specs, cp):
    """{name: VectorKernel} for every kernel of ``specs`` (the compiled
    ElementwiseKernels of ``kernels`` as the fallback); other entries as they are."""
    return {n: VectorKernel(specs[n], k, cp) if n in specs else k for n, k in kernels.items()}
