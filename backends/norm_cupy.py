"""CUDA kernels of the normalization layers (layout: ``norm_kernels.py``).

Layer, group and instance norm (each set contiguous, ``A == 1``):
- forward: ONE launch (``gk_norm_fwd``): a block per statistic reads its set
  twice (mean, then the centred squares: two-pass, no cancellation) and writes
  ``(x - mean) * rstd * w + b`` on a third read; float32 accumulation for
  float16 input;
- backward: ONE launch for the input's gradient (``gk_norm_bwd``: per set, the
  two sums ``sum(g w)`` and ``sum(g w xhat)``, then the closed form), ONE
  reduction per affine parameter (``gk_norm_wgrad`` fuses ``g * xhat``; the bias
  is ``cupy.sum``), plus a cast each for float16 parameters.
Batch norm (a set per channel, strided over N): CuPy's parallel reductions for
the statistics and sums, one fused elementwise pass each way (``_bn_forward``).

``raw_source``, ``wgrad_spec``, ``sqdev_spec`` and ``elementwise_specs`` give
every kernel's CUDA text or CuPy arguments without importing CuPy:
tests/test_nvrtc.py compiles them with NVRTC for sm_80/sm_90 in every dtype,
tests/test_kernels_host.py runs the elementwise bodies on the host.
"""

import functools

from .norm_kernels import NormKernels, count

#: (T, U) CUDA types per input dtype: U accumulates the statistics
CTYPES = {"float16": ("__half", "float"), "float32": ("float", "float"),
          "float64": ("double", "double")}
THREADS = 512

_COMMON = r"""
typedef long long ll;

// the sum over the block (blockDim.x a multiple of 32, at most 1024; or 1, as
// the host check runs it); every thread gets the result; sh holds 32 values
// and may be reused by the next call
__device__ __forceinline__ U gk_block_sum(U v, U* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();                       // the previous call's sh[0] is read
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = (threadIdx.x < ((blockDim.x + 31) >> 5)) ? sh[lane] : (U)0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

// a / b for 0 <= a, 0 < b: 32-bit when both fit (a 64-bit division is ~10x slower)
__device__ __forceinline__ ll gk_div(ll a, ll b) {
  return (a < 4294967296LL && b < 4294967296LL) ? (ll)((unsigned)a / (unsigned)b) : a / b;
}

// element j of set r: its offset in x, and its parameter index (wbase: the
// set's first); the branches on A and S are uniform across the block
__device__ __forceinline__ ll gk_at(ll j, ll r, ll A, ll R, ll Bd, ll S, ll wbase, ll* wi) {
  const ll a = (A == 1) ? 0 : gk_div(j, Bd), i = j - a * Bd;
  *wi = wbase + ((S == 1) ? i : gk_div(i, S));
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
  const ll r = blockIdx.x, n = A * Bd, wbase = (r % G) * cpg;
  ll wi;
  U s = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) s += (U)x[gk_at(j, r, A, R, Bd, S, wbase, &wi)];
  const U mean = gk_block_sum(s, sh) / (U)n;
  U q = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const U d = (U)x[gk_at(j, r, A, R, Bd, S, wbase, &wi)] - mean;
    q += d * d;
  }
  const U var = gk_block_sum(q, sh) / (U)n;
  const U rstd = rsqrt(var + (U)eps);
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, A, R, Bd, S, wbase, &wi);
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
  const ll r = blockIdx.x, n = A * Bd, wbase = (r % G) * cpg;
  const U m = mean[r], rs = rstd[r];
  ll wi;
  U s1 = 0, s2 = 0;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, A, R, Bd, S, wbase, &wi);
    U gw = (U)g[k];
    if (has_w) gw *= (U)w[wi];
    s1 += gw;
    s2 += gw * (((U)x[k] - m) * rs);
  }
  s1 = gk_block_sum(s1, sh) / (U)n;
  s2 = gk_block_sum(s2, sh) / (U)n;
  for (ll j = threadIdx.x; j < n; j += blockDim.x) {
    const ll k = gk_at(j, r, A, R, Bd, S, wbase, &wi);
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
    c = _C[acc]
    return dict(in_params=f"T g, T x, {acc} m, {acc} rs", out_params=f"{acc} y",
                map_expr=f"({c})g * ((({c})x - m) * rs)", reduce_expr="a + b",
                post_map_expr="y = a", identity="0", name=f"gk_norm_wgrad_{acc}",
                reduce_type=c)


_C = {"float32": "float", "float64": "double"}


def sqdev_spec(acc):
    """``sum((x - mean)^2)`` over the reduced axes (batch norm's second pass)."""
    c = _C[acc]
    return dict(in_params=f"T x, {acc} m", out_params=f"{acc} y",
                map_expr=f"(({c})x - m) * (({c})x - m)", reduce_expr="a + b",
                post_map_expr="y = a", identity="0", name=f"gk_norm_sqdev_{acc}",
                reduce_type=c)


def elementwise_specs(acc):
    """Batch norm's two elementwise passes (ElementwiseKernel arguments; the
    statistics broadcast per channel): ``norm_apply`` writes ``(x - m) * rs *
    w + b`` (``hw``/``hb``: whether w/b are real), ``norm_bn_backward`` writes
    ``k * (g - c1 - xhat * c2)`` with ``k = rstd * w``, ``c1 = mean(g)``,
    ``c2 = mean(g * xhat)`` per channel."""
    c = _C[acc]
    return {
        f"norm_apply_{acc}": dict(
            in_params=f"T x, {acc} m, {acc} rs, T w, T b, int32 hw, int32 hb",
            out_params="T y",
            operation=f"{c} v = (({c})x - m) * rs; if (hw) v *= ({c})w; "
                      f"if (hb) v += ({c})b; y = (T)v",
            name=f"gk_norm_apply_{acc}", preamble=""),
        f"norm_bn_backward_{acc}": dict(
            in_params=f"T x, T g, {acc} m, {acc} rs, {acc} k, {acc} c1, {acc} c2",
            out_params="T gx",
            operation=f"gx = (T)(k * (({c})g - c1 - (({c})x - m) * rs * c2))",
            name=f"gk_norm_bn_bwd_{acc}", preamble=""),
    }


@functools.lru_cache(maxsize=None)
def _elementwise(name, acc):
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.ElementwiseKernel(**elementwise_specs(acc)[f"{name}_{acc}"])


@functools.lru_cache(maxsize=None)
def _sqdev(acc):
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.ReductionKernel(**sqdev_spec(acc))


@functools.lru_cache(maxsize=None)
def _raw(kind, dtype):
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.RawKernel(raw_source(kind, dtype), f"gk_norm_{kind}_{dtype}")


def warm_raw_kernels(dtypes):
    """Compile the forward and backward norm RawKernels for ``dtypes`` (used by
    ``gradkit warmup``: the binaries land in CuPy's kernel cache)."""
    for dt in dtypes:
        for kind in ("fwd", "bwd"):
            _raw(kind, dt).compile()


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
        if geom[3][0] > 1:
            return self._bn_forward(x, w, b, geom, eps)
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
        if geom[3][0] > 1:
            return self._bn_backward(x, w, g, mean, rstd, geom, needs)
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

    # Batch norm (statistics over (N, *) per channel): a block per channel would
    # leave most of the GPU idle (C blocks), so its statistics and sums are
    # CuPy's own parallel reductions (two-pass: mean, then the centred squares)
    # and its two full passes fused elementwise kernels with the per-channel
    # values broadcast: 3 launches forward, 3 backward (plus a few on (C,)).
    def _bn_forward(self, x, w, b, geom, eps):
        cp = self.cp
        xs, red = geom[0], geom[1]
        acc = self._stat_dtype(x.dtype).name
        n = count(geom)
        with self.cuda_device:
            x3 = cp.ascontiguousarray(x).reshape(xs)
            mean = x3.mean(axis=red, keepdims=True, dtype=acc)
            var = _sqdev(acc)(x3, mean, axis=red, keepdims=True)
            var /= n
            rstd = cp.sqrt(var + eps)
            cp.reciprocal(rstd, out=rstd)
            ws = geom[2]
            w3 = x3 if w is None else w.reshape(ws)
            b3 = x3 if b is None else b.reshape(ws)
            y = _elementwise("norm_apply", acc)(x3, mean, rstd, w3, b3, int(w is not None),
                                                int(b is not None))
        return y.reshape(x.shape), (mean, rstd, var)

    def _bn_backward(self, x, w, g, mean, rstd, geom, needs):
        cp = self.cp
        xs, red, pshape = geom[0], geom[1], geom[4]
        acc = mean.dtype.name
        n = count(geom)
        gx = gw = gb = None
        with self.cuda_device:
            x3 = cp.ascontiguousarray(x).reshape(xs)
            g3 = cp.ascontiguousarray(g).reshape(xs)
            sgx = _wgrad(acc)(g3, x3, mean, rstd, axis=red, keepdims=True) \
                if needs[0] or needs[1] else None
            sg = g3.sum(axis=red, keepdims=True, dtype=acc) if needs[0] or needs[2] else None
            if needs[0]:
                k = rstd if w is None else rstd * w.reshape(geom[2]).astype(acc)
                gx = _elementwise("norm_bn_backward", acc)(x3, g3, mean, rstd, k, sg / n,
                                                           sgx / n).reshape(x.shape)
            if needs[1]:
                gw = sgx.reshape(pshape).astype(w.dtype, copy=False)
            if needs[2]:
                gb = sg.reshape(pshape).astype(x.dtype, copy=False)
        return gx, gw, gb
