"""CUDA kernels of the normalization layers (layout: ``norm_kernels.py``).

- forward: ONE launch (``gk_norm_fwd``): a block per statistic reads its set
  twice (mean, then the centred squares: two-pass, no cancellation) and writes
  ``(x - mean) * rstd * w + b`` on a third read; float32 accumulation for
  float16 input;
- backward: ONE launch for the input's gradient (``gk_norm_bwd``: per set, the
  two sums ``sum(g w)`` and ``sum(g w xhat)``, then the closed form), ONE
  reduction per affine parameter (``gk_norm_wgrad`` fuses ``g * xhat``; the bias
  is ``cupy.sum``), plus a cast each for float16 parameters.

``kernel_sources()`` gives the CUDA text of every RawKernel and the
ReductionKernel's keyword arguments without importing CuPy: tests/test_nvrtc.py
compiles them with NVRTC for sm_80/sm_90 in every dtype. Written without a GPU
at hand: the reference kernels (``norm_kernels.py``) are what CPU CI runs.
"""
import functools

from .norm_kernels import NormKernels

#: (T, U) CUDA types per input dtype: U accumulates the statistics
CTYPES = {"float16": ("__half", "float"), "float32": ("float", "float"),
          "float64": ("double", "double")}
THREADS = 512

_COMMON = r"""
typedef long long ll;

// the sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result; sh holds 32 values and may be reused by the next call
__device__ __forceinline__ U gk_block_sum(U v, U* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();                       // the previous call's sh[0] is read
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = (threadIdx.x < (blockDim.x >> 5)) ? sh[lane] : (U)0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

// element j of set r: its offset in x, and its parameter index
__device__ __forceinline__ ll gk_at(ll j, ll r, ll R, ll Bd, ll G, ll cpg, ll S, ll* wi) {
  const ll a = j / Bd, i = j - a * Bd;
  *wi = (r % G) * cpg + i / S;
  return (a * R + r) * Bd + i;
}
"""

_FWD = r"""
extern "C" __global__ void gk_norm_fwd_NAME(
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
    T* __restrict__ y, U* __restrict__ mean_out, U* __restrict__ rstd_out,
    U* __restrict__ var_out, const ll A, const ll R, const ll Bd, const ll G, const ll cpg,
    const ll S, const double eps, const int has_w, const int has_b) {
  __shared__ U sh[32];
  const ll r = blockIdx.x, n = A * Bd;
  ll wi;
  U s = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) s += (U)x[gk_at(j, r, R, Bd, G, cpg, S, &wi)];
  const U mean = gk_block_sum(s, sh) / (U)n;
  U q = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const U d = (U)x[gk_at(j, r, R, Bd, G, cpg, S, &wi)] - mean;
    q += d * d;
  }
  const U var = gk_block_sum(q, sh) / (U)n;
  const U rstd = rsqrt(var + (U)eps);
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, R, Bd, G, cpg, S, &wi);
    U v = ((U)x[k] - mean) * rstd;
    if (has_w) v *= (U)w[wi];
    if (has_b) v += (U)b[wi];
    y[k] = (T)v;
  }
  if (threadIdx.x == 0) { mean_out[r] = mean; rstd_out[r] = rstd; var_out[r] = var; }
}
"""

_BWD = r"""
extern "C" __global__ void gk_norm_bwd_NAME(
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ g,
    const U* __restrict__ mean, const U* __restrict__ rstd, T* __restrict__ gx,
    const ll A, const ll R, const ll Bd, const ll G, const ll cpg, const ll S,
    const int has_w) {
  __shared__ U sh[32];
  const ll r = blockIdx.x, n = A * Bd;
  const U m = mean[r], rs = rstd[r];
  ll wi;
  U s1 = 0, s2 = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, R, Bd, G, cpg, S, &wi);
    U gw = (U)g[k];
    if (has_w) gw *= (U)w[wi];
    s1 += gw;
    s2 += gw * (((U)x[k] - m) * rs);
  }
  s1 = gk_block_sum(s1, sh) / (U)n;
  s2 = gk_block_sum(s2, sh) / (U)n;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, R, Bd, G, cpg, S, &wi);
    U gw = (U)g[k];
    if (has_w) gw *= (U)w[wi];
    gx[k] = (T)(rs * (gw - s1 - ((U)x[k] - m) * rs * s2));
  }
}
"""


def raw_source(kind, dtype):
    """The CUDA text of the forward (``kind="fwd"``) or backward RawKernel for
    one input dtype; its entry point is ``gk_norm_<kind>_<dtype>``."""
    T, U = CTYPES[dtype]
    head = "#include <cuda_fp16.h>\n" if T == "__half" else ""
    body = (_FWD if kind == "fwd" else _BWD).replace("NAME", dtype)
    return f"{head}typedef {T} T;\ntypedef {U} U;\n{_COMMON}\n{body}"


def wgrad_spec(acc):
    """``sum(g * (x - mean) * rstd)`` over the reduced axes, accumulated (and
    returned) in ``acc`` (float32 or float64): ReductionKernel arguments."""
    c = {"float32": "float", "float64": "double"}[acc]
    return dict(in_params=f"T g, T x, {acc} m, {acc} rs", out_params=f"{acc} y",
                map_expr=f"({c})g * ((({c})x - m) * rs)", reduce_expr="a + b",
                post_map_expr="y = a", identity="0", name=f"gk_norm_wgrad_{acc}",
                reduce_type=c)


@functools.lru_cache(maxsize=None)
def _raw(kind, dtype):
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.RawKernel(raw_source(kind, dtype), f"gk_norm_{kind}_{dtype}")


@functools.lru_cache(maxsize=None)
def _wgrad(acc):
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.ReductionKernel(**wgrad_spec(acc))


def _threads(n):
    t = 32
    while t < n and t < THREADS:
        t *= 2
    return t


class CupyNormKernels(NormKernels):
    def _norm_args(self, geom):
        A, R, Bd, G, cpg, S = geom[3]
        return A, R, Bd, G, cpg, S, _threads(A * Bd)

    def fused_norm(self, x, w, b, geom=None, eps=1e-5):
        cp = self.cp
        name = x.dtype.name
        if name not in CTYPES or x.size == 0:
            return NormKernels.fused_norm(self, x, w, b, geom, eps)
        A, R, Bd, G, cpg, S, nt = self._norm_args(geom)
        st = self._stat_dtype(x.dtype)
        sshape = tuple(1 if a in geom[1] else s for a, s in enumerate(geom[0]))
        with self.cuda_device:
            x = cp.ascontiguousarray(x)
            y = cp.empty_like(x)
            mean, rstd, var = (cp.empty(sshape, st) for _ in range(3))
            w_ = x if w is None else cp.ascontiguousarray(w)   # any pointer when absent
            b_ = x if b is None else cp.ascontiguousarray(b)
            _raw("fwd", name)((R,), (nt,), (x, w_, b_, y, mean, rstd, var, cp.int64(A),
                                             cp.int64(R), cp.int64(Bd), cp.int64(G),
                                             cp.int64(cpg), cp.int64(S), cp.float64(eps),
                                             cp.int32(w is not None), cp.int32(b is not None)))
        return y, (mean, rstd, var)

    def fused_norm_backward(self, x, w, g, mean, rstd, geom, needs):
        cp = self.cp
        name = x.dtype.name
        if name not in CTYPES or g.dtype != x.dtype or x.size == 0:
            return NormKernels.fused_norm_backward(self, x, w, g, mean, rstd, geom, needs)
        A, R, Bd, G, cpg, S, nt = self._norm_args(geom)
        xs, pshape = geom[0], geom[4]
        gx = gw = gb = None
        with self.cuda_device:
            x = cp.ascontiguousarray(x)
            g = cp.ascontiguousarray(g)
            if needs[0]:
                gx = cp.empty_like(x)
                w_ = x if w is None else cp.ascontiguousarray(w)
                _raw("bwd", name)((R,), (nt,), (x, w_, g, mean, rstd, gx, cp.int64(A),
                                                 cp.int64(R), cp.int64(Bd), cp.int64(G),
                                                 cp.int64(cpg), cp.int64(S),
                                                 cp.int32(w is not None)))
            axes = tuple(a for a, s in enumerate(geom[2]) if s == 1)
            if needs[1]:
                gw = _wgrad(mean.dtype.name)(g.reshape(xs), x.reshape(xs), mean, rstd,
                                             axis=axes)
                gw = gw.reshape(pshape).astype(w.dtype, copy=False)
            if needs[2]:
                gb = g.reshape(xs).sum(axis=axes, dtype=mean.dtype)
                gb = gb.reshape(pshape).astype(x.dtype, copy=False)
        return gx, gw, gb
