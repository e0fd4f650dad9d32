"""Plain NumPy references for the image ops of the op table (issue 13): written
the slow, obvious way (loops over output positions), independent of gradkit's
im2col kernels."""
import math

import numpy as np


def _pair(v, n=2):
    return (v,) * n if isinstance(v, int) else tuple(v)


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d cross-correlation; ``padding`` int, tuple or per-dim (lo, hi) pairs."""
    nd = x.ndim - 2
    s, d = _pair(stride, nd), _pair(dilation, nd)
    pads = [(p, p) if isinstance(p, int) else tuple(p) for p in
            (_pair(padding, nd) if not (isinstance(padding, tuple) and padding
                                        and isinstance(padding[0], tuple)) else padding)]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    K = w.shape[2:]
    OS = [(xp.shape[2 + i] - d[i] * (K[i] - 1) - 1) // s[i] + 1 for i in range(nd)]
    out = np.zeros((N, O) + tuple(OS), dtype=x.dtype)
    Og = O // groups
    for pos in np.ndindex(*OS):
        sl = tuple(slice(p * s[i], p * s[i] + d[i] * (K[i] - 1) + 1, d[i]) for i, p in enumerate(pos))
        patch = xp[(slice(None), slice(None)) + sl]               # (N, C, *K)
        for g in range(groups):
            pg = patch[:, g * Cg:(g + 1) * Cg]
            wg = w[g * Og:(g + 1) * Og]
            out[(slice(None), slice(g * Og, (g + 1) * Og)) + pos] = np.tensordot(
                pg, wg, axes=(list(range(1, nd + 2)), list(range(1, nd + 2))))
    if b is not None:
        out = out + b.reshape((1, -1) + (1,) * nd)
    return out


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter every input pixel times the kernel into the output (the definition)."""
    s, p, op, d = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    N, Cin, H, W = x.shape
    Cg_out = w.shape[1]
    K = w.shape[2:]
    Ho = (H - 1) * s[0] - 2 * p[0] + d[0] * (K[0] - 1) + op[0] + 1
    Wo = (W - 1) * s[1] - 2 * p[1] + d[1] * (K[1] - 1) + op[1] + 1
    full = np.zeros((N, Cg_out * groups, Ho + 2 * p[0] + K[0] * d[0], Wo + 2 * p[1] + K[1] * d[1]),
                    dtype=x.dtype)
    Cg_in = Cin // groups
    for i in range(H):
        for j in range(W):
            for g in range(groups):
                xi = x[:, g * Cg_in:(g + 1) * Cg_in, i, j]             # (N, Cg_in)
                wg = w[g * Cg_in:(g + 1) * Cg_in]                    # (Cg_in, Cg_out, kh, kw)
                contrib = np.tensordot(xi, wg, axes=(1, 0))          # (N, Cg_out, kh, kw)
                full[:, g * Cg_out:(g + 1) * Cg_out,
                     i * s[0]:i * s[0] + d[0] * (K[0] - 1) + 1:d[0],
                     j * s[1]:j * s[1] + d[1] * (K[1] - 1) + 1:d[1]] += contrib
    out = full[:, :, p[0]:p[0] + Ho, p[1]:p[1] + Wo]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def _pool_out(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def max_pool2d(x, k, s=None, p=0, d=1, ceil=False):
    k = _pair(k)
    s = k if s is None else _pair(s)
    p, d = _pair(p), _pair(d)
    N, C, H, W = x.shape
    oh, ow = (_pool_out(n, k[i], s[i], p[i], d[i], ceil) for i, n in enumerate((H, W)))
    out = np.empty((N, C, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * s[0] - p[0], i * s[0] - p[0] + d[0] * (k[0] - 1) + 1, d[0])
                    if 0 <= r < H]
            cols = [c for c in range(j * s[1] - p[1], j * s[1] - p[1] + d[1] * (k[1] - 1) + 1, d[1])
                    if 0 <= c < W]
            out[:, :, i, j] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return out


def avg_pool2d(x, k, s=None, p=0, ceil=False, count_include_pad=True, divisor=None):
    k = _pair(k)
    s = k if s is None else _pair(s)
    p = _pair(p)
    N, C, H, W = x.shape
    oh, ow = (_pool_out(n, k[i], s[i], p[i], 1, ceil) for i, n in enumerate((H, W)))
    out = np.empty((N, C, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            area = (h1 - h0) * (w1 - w0)
            a, b_, c, e = max(h0, 0), min(h1, H), max(w0, 0), min(w1, W)
            total = x[:, :, a:b_, c:e].sum(axis=(2, 3))
            n = divisor or (area if count_include_pad else (b_ - a) * (e - c))
            out[:, :, i, j] = total / n
    return out


def _bounds(n, o):
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


def adaptive_pool2d(x, size, reduce):
    oh, ow = _pair(size)
    N, C, H, W = x.shape
    out = np.empty((N, C, oh, ow), x.dtype)
    for i, (a, b) in enumerate(_bounds(H, oh)):
        for j, (c, e) in enumerate(_bounds(W, ow)):
            out[:, :, i, j] = reduce(x[:, :, a:b, c:e], axis=(2, 3))
    return out


def pixel_shuffle(x, r):
    N, C, H, W = x.shape
    return x.reshape(N, C // (r * r), r, r, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(
        N, C // (r * r), H * r, W * r)


def interpolate(x, size, mode="nearest", align_corners=False):
    """Nearest (torch's floor rule) or (bi)linear, one output element at a time."""
    sp = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(size), x.dtype)
    for pos in np.ndindex(*size):
        if mode == "nearest":
            src = tuple(min(int(math.floor(o * n / m)), n - 1) for o, n, m in zip(pos, sp, size))
            out[(Ellipsis,) + pos] = x[(Ellipsis,) + src]
            continue
        val = 0.0
        corners = []
        for o, n, m in zip(pos, sp, size):
            if align_corners:
                c = o * (n - 1) / (m - 1) if m > 1 else 0.0
            else:
                c = max((o + 0.5) * n / m - 0.5, 0.0)
            i0 = min(int(math.floor(c)), n - 1)
            corners.append(((i0, 1.0 - (c - i0)), (min(i0 + 1, n - 1), c - i0)))
        for combo in np.ndindex(*([2] * len(sp))):
            wgt, idx = 1.0, []
            for dim, which in enumerate(combo):
                i, wv = corners[dim][which]
                wgt *= wv
                idx.append(i)
            val = val + wgt * x[(Ellipsis,) + tuple(idx)]
        out[(Ellipsis,) + pos] = val
    return out


def batch_norm(x, w=None, b=None, eps=1e-5):
    dims = (0,) + tuple(range(2, x.ndim))
    m = x.mean(dims, keepdims=True)
    v = x.var(dims, keepdims=True)
    y = (x - m) / np.sqrt(v + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def group_norm(x, G, w=None, b=None, eps=1e-5):
    N, C = x.shape[:2]
    xg = x.reshape(N, G, -1)
    y = ((xg - xg.mean(2, keepdims=True)) / np.sqrt(xg.var(2, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)
