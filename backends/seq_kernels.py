"""Kernels for attention and recurrent layers, mixed into every backend.

``SeqKernels`` holds the reference versions, written once with the backend's
own kernels and namespace (so they run on NumPy, CuPy and the fake
accelerator); ``NumpySeqKernels`` and ``CupySeqKernels`` override only the
per-time-step gate math, for speed (NumPy ufuncs writing into preallocated
buffers with ``out=``; one fused CuPy ``ElementwiseKernel`` per step).

Recurrent layers run a whole sequence per call: the caller has already done
the input projection of every time step as one GEMM, so a step costs one GEMM
with the recurrent weight plus the gate math; the backward loop writes every
step's gate gradients into one buffer and forms the recurrent weight's
gradient as one GEMM over all steps at the end.

Gate order and formulas are torch's:
- LSTM gates ``(i, f, g, o)``: ``c' = f c + i g``, ``h' = o tanh(c')``;
- GRU gates ``(r, z, n)``: ``n = tanh(x_n + r (W_hn h + b_hn))``,
  ``h' = (1 - z) n + z h``;
- RNN: ``h' = tanh(x + W_hh h)`` (or relu).
"""
import functools

import numpy as np


class SeqKernels:
    # ------------------------------------------------------------ attention
    def sdpa(self, q, k, v, mask=None, scale=1.0, drop=None, dead=None):
        """softmax(q k^T * scale + mask) [* drop] @ v -> (out, probabilities).
        ``mask``: additive, broadcastable to (..., L, S); ``drop``: the dropout
        multiplier (0 or 1/(1-p)) or None; ``dead`` (..., L, 1) bool or None:
        rows the mask hides entirely, whose weights are 0 (as torch), not NaN."""
        s = self.matmul(self.mul(q, scale), self.mT(k))
        if mask is not None:
            s = self.add(s, mask)
        if dead is not None:
            zero = self.zeros((), s.dtype)
            s = self.where(dead, zero, s)
            p = self.where(dead, zero, self.softmax(s, s.ndim - 1))
        else:
            p = self.softmax(s, s.ndim - 1)
        pd = p if drop is None else self.mul(p, drop)
        return self.matmul(pd, v), p

    # ----------------------------------------------------------------- LSTM
    def lstm_seq(self, xg, w_hh, h0, c0):
        """xg (T, N, 4H): input projections with both biases; w_hh (4H, H);
        h0, c0 (N, H) -> ((hs (T, N, H), h_T, c_T (N, H)), residuals); h_T and
        c_T are views of the saved buffers."""
        T, N, G = xg.shape
        H = G // 4
        dt = xg.dtype
        hs = self.empty((T, N, H), dt)
        cs = self.empty((T, N, H), dt)
        tcs = self.empty((T, N, H), dt)
        acts = self.empty((T, N, G), dt)
        wt = self.mT(w_hh)
        h, c = h0, c0
        for t in range(T):
            gates = self.iadd(self.matmul(h, wt), xg[t, ...])   # fresh: add in place
            self.lstm_step(gates, c, t, acts, hs, cs, tcs)
            h, c = hs[t, ...], cs[t, ...]
        return (hs, h, c), (acts, cs, tcs)

    def lstm_step(self, gates, c, t, acts, hs, cs, tcs):
        """Writes step ``t`` of acts (activated gates), hs, cs and tanh(cs)."""
        H = c.shape[-1]
        i = self.sigmoid(gates[..., :H])
        f = self.sigmoid(gates[..., H:2 * H])
        g = self.tanh(gates[..., 2 * H:3 * H])
        o = self.sigmoid(gates[..., 3 * H:])
        c2 = self.add(self.mul(f, c), self.mul(i, g))
        tc = self.tanh(c2)
        self.setitem(acts, t, self.cat([i, f, g, o], -1))
        self.setitem(cs, t, c2)
        self.setitem(tcs, t, tc)
        self.setitem(hs, t, self.mul(o, tc))

    def lstm_seq_backward(self, ghs, gh, gc, w_hh, h0, c0, hs, acts, cs, tcs):
        """-> (d xg (T, N, 4H), d w_hh, d h0, d c0). ``ghs`` (T, N, H), ``gh``,
        ``gc`` (N, H): the gradients of the outputs, each possibly None."""
        T, N, G = acts.shape
        H = G // 4
        dt = acts.dtype
        dG = self.empty((T, N, G), dt)
        dh = self.zeros((N, H), dt) if gh is None else self.add(gh, 0.0)
        dc = self.zeros((N, H), dt) if gc is None else self.add(gc, 0.0)
        for t in range(T - 1, -1, -1):
            if ghs is not None:
                dh = self.add(dh, ghs[t, ...])
            dc = self.lstm_step_backward(dh, dc, t, acts, cs[t - 1, ...] if t else c0, tcs, dG)
            dh = self.matmul(dG[t, ...], w_hh)
        dw = self._seq_weight_grad(dG, h0, hs)
        return dG, dw, dh, dc

    def lstm_step_backward(self, dh, dc, t, acts, c_prev, tcs, dG):
        """Writes d gates of step ``t`` into dG[t, ...]; returns d c_{t-1}."""
        H = dh.shape[-1]
        a = acts[t, ...]
        i, f, g, o = a[..., :H], a[..., H:2 * H], a[..., 2 * H:3 * H], a[..., 3 * H:]
        tc = tcs[t, ...]
        dc = self.add(dc, self.mul(self.mul(dh, o), self.sub(1.0, self.mul(tc, tc))))
        di = self.mul(self.mul(dc, g), self.mul(i, self.sub(1.0, i)))
        df = self.mul(self.mul(dc, c_prev), self.mul(f, self.sub(1.0, f)))
        dg = self.mul(self.mul(dc, i), self.sub(1.0, self.mul(g, g)))
        do = self.mul(self.mul(dh, tc), self.mul(o, self.sub(1.0, o)))
        self.setitem(dG, t, self.cat([di, df, dg, do], -1))
        return self.mul(dc, f)

    def _seq_weight_grad(self, dG, h0, hs):
        """sum_t dG[t, ...]^T @ h_{t-1} as one GEMM over all steps."""
        T, N, G = dG.shape
        H = h0.shape[-1]
        hprev = self.cat([self.reshape(h0, (1, N, H)), hs[:T - 1, ...]], 0)
        return self.matmul(self.mT(self.reshape(dG, (T * N, G))),
                           self.reshape(hprev, (T * N, H)))

    # ------------------------------------------------------------------ GRU
    def gru_seq(self, xg, w_hh, b_hh, h0):
        """xg (T, N, 3H): input projections with b_ih; w_hh (3H, H); b_hh (3H,)
        or None; h0 (N, H) -> ((hs (T, N, H), h_T), residuals)."""
        T, N, G = xg.shape
        H = G // 3
        dt = xg.dtype
        hs = self.empty((T, N, H), dt)
        acts = self.empty((T, N, G), dt)
        ghn = self.empty((T, N, H), dt)
        wt = self.mT(w_hh)
        h = h0
        for t in range(T):
            gh = self.matmul(h, wt)
            if b_hh is not None:
                gh = self.iadd(gh, b_hh)
            self.gru_step(xg[t, ...], gh, h, t, acts, ghn, hs)
            h = hs[t, ...]
        return (hs, h), (acts, ghn)

    def gru_step(self, x, gh, h, t, acts, ghn, hs):
        H = h.shape[-1]
        r = self.sigmoid(self.add(x[..., :H], gh[..., :H]))
        z = self.sigmoid(self.add(x[..., H:2 * H], gh[..., H:2 * H]))
        hn = gh[..., 2 * H:]
        n = self.tanh(self.add(x[..., 2 * H:], self.mul(r, hn)))
        self.setitem(acts, t, self.cat([r, z, n], -1))
        self.setitem(ghn, t, hn)
        self.setitem(hs, t, self.add(n, self.mul(z, self.sub(h, n))))

    def gru_seq_backward(self, ghs, gh, w_hh, h0, hs, acts, ghn):
        """-> (d xg, d w_hh, d b_hh, d h0); ``ghs`` (T, N, H), ``gh`` (N, H) or None."""
        T, N, G = acts.shape
        H = G // 3
        dt = acts.dtype
        dX = self.empty((T, N, G), dt)
        dGh = self.empty((T, N, G), dt)
        dh = self.zeros((N, H), dt) if gh is None else self.add(gh, 0.0)
        for t in range(T - 1, -1, -1):
            if ghs is not None:
                dh = self.add(dh, ghs[t, ...])
            dz_h = self.gru_step_backward(dh, t, acts, ghn, hs[t - 1, ...] if t else h0, dX, dGh)
            dh = self.add(dz_h, self.matmul(dGh[t, ...], w_hh))
        dw = self._seq_weight_grad(dGh, h0, hs)
        db = self.sum(self.reshape(dGh, (T * N, G)), 0)
        return dX, dw, db, dh

    def gru_step_backward(self, dh, t, acts, ghn, h_prev, dX, dGh):
        """Writes dX[t], dGh[t, ...]; returns the direct part dh * z of d h_{t-1}."""
        H = dh.shape[-1]
        a = acts[t, ...]
        r, z, n = a[..., :H], a[..., H:2 * H], a[..., 2 * H:]
        dn = self.mul(self.mul(dh, self.sub(1.0, z)), self.sub(1.0, self.mul(n, n)))
        dz = self.mul(self.mul(dh, self.sub(h_prev, n)), self.mul(z, self.sub(1.0, z)))
        dr = self.mul(self.mul(dn, ghn[t, ...]), self.mul(r, self.sub(1.0, r)))
        self.setitem(dX, t, self.cat([dr, dz, dn], -1))
        self.setitem(dGh, t, self.cat([dr, dz, self.mul(dn, r)], -1))
        return self.mul(dh, z)

    # ------------------------------------------------------------------ RNN
    def rnn_seq(self, xg, w_hh, h0, relu=False):
        """xg (T, N, H) with both biases; w_hh (H, H) -> ((hs, h_T), None)."""
        T, N, H = xg.shape
        hs = self.empty((T, N, H), xg.dtype)
        wt = self.mT(w_hh)
        h = h0
        act = self.relu if relu else self.tanh
        for t in range(T):
            self.setitem(hs, t, act(self.iadd(self.matmul(h, wt), xg[t, ...])))
            h = hs[t, ...]
        return (hs, h), None

    def rnn_seq_backward(self, ghs, gh, w_hh, h0, hs, relu=False):
        T, N, H = hs.shape
        dA = self.empty((T, N, H), hs.dtype)
        dh = self.zeros((N, H), hs.dtype) if gh is None else self.add(gh, 0.0)
        for t in range(T - 1, -1, -1):
            if ghs is not None:
                dh = self.add(dh, ghs[t, ...])
            y = hs[t, ...]
            da = self.relu_backward(y, dh) if relu else self.tanh_backward(y, dh)
            self.setitem(dA, t, da)
            dh = self.matmul(da, w_hh)
        return dA, self._seq_weight_grad(dA, h0, hs), dh


# ============================================================== NumPy steps
@functools.lru_cache(maxsize=64)
def _lstm_affine(H, dtype):
    """Per-column (scale, offset) so that one tanh serves all four gates:
    sigmoid(x) = 0.5 tanh(x / 2) + 0.5 for i, f, o; tanh(x) for g."""
    s = np.full(4 * H, 0.5, dtype)
    s[2 * H:3 * H] = 1.0
    b = np.full(4 * H, 0.5, dtype)
    b[2 * H:3 * H] = 0.0
    return s, b


class NumpySeqKernels:
    """Gate math in place with ufuncs (``out=``): no temporaries per step
    beyond one scratch row block."""

    def lstm_step(self, gates, c, t, acts, hs, cs, tcs):
        H = c.shape[-1]
        s, b = _lstm_affine(H, gates.dtype)
        a = acts[t]
        np.multiply(gates, s, out=a)
        np.tanh(a, out=a)
        a *= s
        a += b
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c2 = cs[t]
        np.multiply(f, c, out=c2)
        tmp = gates[:, :H]          # the pre-activations are spent: reuse as scratch
        np.multiply(i, g, out=tmp)
        c2 += tmp
        tc = tcs[t]
        np.tanh(c2, out=tc)
        np.multiply(o, tc, out=hs[t])

    def lstm_step_backward(self, dh, dc, t, acts, c_prev, tcs, dG):
        # plain expressions: on (32, 256) blocks that stay in cache, NumPy's
        # contiguous temporaries beat out= writes into the strided gate columns
        # (measured 330 vs 490 us per step)
        H = dh.shape[-1]
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        tc = tcs[t]
        dc = dc + dh * o * (1.0 - tc * tc)
        d = dG[t]
        d[:, :H] = dc * g * i * (1.0 - i)
        d[:, H:2 * H] = dc * c_prev * f * (1.0 - f)
        d[:, 2 * H:3 * H] = dc * i * (1.0 - g * g)
        d[:, 3 * H:] = dh * tc * o * (1.0 - o)
        return dc * f

    def gru_step(self, x, gh, h, t, acts, ghn, hs):
        H = h.shape[-1]
        a = acts[t]
        rz = a[:, :2 * H]
        np.add(x[:, :2 * H], gh[:, :2 * H], out=rz)    # sigmoid = 0.5 tanh(x/2) + 0.5
        rz *= 0.5
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        hn = gh[:, 2 * H:]
        ghn[t] = hn
        np.multiply(r, hn, out=n)
        n += x[:, 2 * H:]
        np.tanh(n, out=n)
        out = hs[t]
        np.subtract(h, n, out=out)
        out *= z
        out += n

    def gru_step_backward(self, dh, t, acts, ghn, h_prev, dX, dGh):
        H = dh.shape[-1]
        a = acts[t]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        x = dX[t]
        dr, dz, dn = x[:, :H], x[:, H:2 * H], x[:, 2 * H:]
        # dn = dh (1 - z) (1 - n^2)
        np.multiply(n, n, out=dn)
        np.subtract(1.0, dn, out=dn)
        np.subtract(1.0, z, out=dr)
        dn *= dr
        dn *= dh
        # dz = dh (h_prev - n) z (1 - z)
        np.subtract(h_prev, n, out=dz)
        dz *= dh
        dz *= z
        dz *= dr
        # dr = dn ghn r (1 - r)
        np.subtract(1.0, r, out=dr)
        dr *= r
        dr *= ghn[t]
        dr *= dn
        y = dGh[t]
        y[:, :2 * H] = x[:, :2 * H]
        np.multiply(dn, r, out=y[:, 2 * H:])
        return np.multiply(dh, z)


# =============================================================== CuPy steps
# Each kernel as (in_params, out_params, body, name): plain data, so the CuPy
# kernels below are built from it and tests compile the same bodies on the host
# (g++, T = float and double) to check them against the NumPy steps without a GPU.
# i indexes (N, H); row n = i / H, column j = i % H of the (N, G*H) gate rows.
CUDA_STEP_KERNELS = {
    "lstm": (
        "raw T gates, T c, int32 H", "raw T acts, T c2, T tc, T h",
        """
        int n = i / H, j = i % H, b = n * 4 * H + j;
        T gi = (T)1 / ((T)1 + exp(-gates[b]));
        T gf = (T)1 / ((T)1 + exp(-gates[b + H]));
        T gg = tanh(gates[b + 2 * H]);
        T go = (T)1 / ((T)1 + exp(-gates[b + 3 * H]));
        acts[b] = gi; acts[b + H] = gf; acts[b + 2 * H] = gg; acts[b + 3 * H] = go;
        c2 = gf * c + gi * gg;
        tc = tanh(c2);
        h = go * tc;
        """, "gk_lstm_step"),
    "lstm_bwd": (
        "T dh, T dc_in, raw T acts, T c_prev, T tc, int32 H", "raw T dG, T dc_out",
        """
        int n = i / H, j = i % H, b = n * 4 * H + j;
        T gi = acts[b], gf = acts[b + H], gg = acts[b + 2 * H], go = acts[b + 3 * H];
        T dc = dc_in + dh * go * ((T)1 - tc * tc);
        dG[b] = dc * gg * gi * ((T)1 - gi);
        dG[b + H] = dc * c_prev * gf * ((T)1 - gf);
        dG[b + 2 * H] = dc * gi * ((T)1 - gg * gg);
        dG[b + 3 * H] = dh * tc * go * ((T)1 - go);
        dc_out = dc * gf;
        """, "gk_lstm_step_bwd"),
    "gru": (
        "raw T x, raw T gh, T h, int32 H", "raw T acts, T ghn, T hout",
        """
        int n = i / H, j = i % H, b = n * 3 * H + j;
        T r = (T)1 / ((T)1 + exp(-(x[b] + gh[b])));
        T z = (T)1 / ((T)1 + exp(-(x[b + H] + gh[b + H])));
        T hn = gh[b + 2 * H];
        T nn = tanh(x[b + 2 * H] + r * hn);
        acts[b] = r; acts[b + H] = z; acts[b + 2 * H] = nn;
        ghn = hn;
        hout = nn + z * (h - nn);
        """, "gk_gru_step"),
    "gru_bwd": (
        "T dh, raw T acts, T ghn, T h_prev, int32 H", "raw T dX, raw T dGh, T dzh",
        """
        int n = i / H, j = i % H, b = n * 3 * H + j;
        T r = acts[b], z = acts[b + H], nn = acts[b + 2 * H];
        T dn = dh * ((T)1 - z) * ((T)1 - nn * nn);
        T dz = dh * (h_prev - nn) * z * ((T)1 - z);
        T dr = dn * ghn * r * ((T)1 - r);
        dX[b] = dr; dX[b + H] = dz; dX[b + 2 * H] = dn;
        dGh[b] = dr; dGh[b + H] = dz; dGh[b + 2 * H] = dn * r;
        dzh = dh * z;
        """, "gk_gru_step_bwd"),
}


@functools.lru_cache(maxsize=None)
def _cupy_kernels():
    import cupy as cp  # optional dependency (CUDA): imported lazily

    return {k: cp.ElementwiseKernel(*spec) for k, spec in CUDA_STEP_KERNELS.items()}


class CupySeqKernels:
    """One fused kernel per time step for the gate math (forward and
    backward); the GEMMs stay cuBLAS calls. Buffers are contiguous (T, N, .)
    arrays, so the per-step slices passed as raw arrays are contiguous too."""

    def lstm_step(self, gates, c, t, acts, hs, cs, tcs):
        gates = self.cp.ascontiguousarray(gates)
        _cupy_kernels()["lstm"](gates, c, c.shape[-1], acts[t], cs[t], tcs[t], hs[t])

    def lstm_step_backward(self, dh, dc, t, acts, c_prev, tcs, dG):
        out = self.empty(dh.shape, dh.dtype)
        _cupy_kernels()["lstm_bwd"](dh, dc, acts[t], c_prev, tcs[t], dh.shape[-1], dG[t], out)
        return out

    def gru_step(self, x, gh, h, t, acts, ghn, hs):
        x, gh = self.cp.ascontiguousarray(x), self.cp.ascontiguousarray(gh)
        _cupy_kernels()["gru"](x, gh, h, h.shape[-1], acts[t], ghn[t], hs[t])

    def gru_step_backward(self, dh, t, acts, ghn, h_prev, dX, dGh):
        out = self.empty(dh.shape, dh.dtype)
        _cupy_kernels()["gru_bwd"](dh, acts[t], ghn[t], h_prev, dh.shape[-1], dX[t], dGh[t], out)
        return out
