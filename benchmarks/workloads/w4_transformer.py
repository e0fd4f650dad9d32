"""W4: one pre-LN transformer block, forward + backward; reported as ms per step.

Batch 8, sequence 128, d_model 256, 4 heads (no mask):
    h  = LN1(x);  q, k, v = split(h @ Wqkv + bqkv)
    a  = softmax(q k^T / sqrt(64)) per head;  x1 = x + merge(a v) @ Wo + bo
    y  = x1 + gelu(LN2(x1) @ W1 + b1) @ W2 + b2     (MLP 256 -> 1024 -> 256)
    loss = sum(y * r)   (r: a fixed random tensor, so every gradient is non-trivial)
GELU is the tanh approximation in every implementation (torch: approximate='tanh').
Gradients w.r.t. all weights and x.
"""
import math

import numpy as np

from benchmarks.frameworks import GELU_C
from benchmarks.workloads import Workload

B, T, D, H = 8, 128, 256, 4
DH = D // H
SCALE = 1.0 / math.sqrt(DH)
EPS = 1e-5


def make_inputs(rng):
    def w(n_in, n_out):
        return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n, mean=0.0):
        return (mean + 0.1 * rng.standard_normal(n)).astype(np.float32)

    params = {"x": rng.standard_normal((B, T, D)).astype(np.float32),
              "ln1_g": vec(D, 1.0), "ln1_b": vec(D), "Wqkv": w(D, 3 * D), "bqkv": vec(3 * D),
              "Wo": w(D, D), "bo": vec(D), "ln2_g": vec(D, 1.0), "ln2_b": vec(D),
              "W1": w(D, 4 * D), "b1": vec(4 * D), "W2": w(4 * D, D), "b2": vec(D)}
    consts = {"r": (rng.standard_normal((B, T, D)) / np.sqrt(B * T * D)).astype(np.float32)}
    return params, consts


def forward(F, p, c):
    x = p["x"]
    qkv = F.layer_norm(x, p["ln1_g"], p["ln1_b"], EPS) @ p["Wqkv"] + p["bqkv"]
    q, k, v = (F.permute(F.reshape(qkv[:, :, i * D:(i + 1) * D], (B, T, H, DH)), (0, 2, 1, 3))
               for i in range(3))
    a = F.softmax((q @ F.swapaxes(k, -1, -2)) * SCALE, -1)
    o = F.reshape(F.permute(a @ v, (0, 2, 1, 3)), (B, T, D))
    x1 = x + o @ p["Wo"] + p["bo"]
    u = F.layer_norm(x1, p["ln2_g"], p["ln2_b"], EPS) @ p["W1"] + p["b1"]
    y = x1 + F.gelu(u) @ p["W2"] + p["b2"]
    return F.sum(y * c["r"])


# ---- by hand -------------------------------------------------------------------

def _ln(xp, x, g, b):
    xc = x - x.mean(-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((xc * xc).mean(-1, keepdims=True) + EPS)
    xhat = xc * rstd
    return xhat * g + b, (xhat, rstd)


def _ln_back(dy, g, xhat, rstd):
    """-> dx, dgamma, dbeta."""
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, (dy * xhat).sum((0, 1)), dy.sum((0, 1))


def _linear_back(dy, x, W):
    """y = x @ W + b over (B, T, n) -> dx, dW, db."""
    return dy @ W.T, x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1]), dy.sum((0, 1))


def _heads(t):     # (B, T, D) -> (B, H, T, DH)
    return t.reshape(B, T, H, DH).transpose(0, 2, 1, 3)


def _merge(t):     # (B, H, T, DH) -> (B, T, D)
    return t.transpose(0, 2, 1, 3).reshape(B, T, D)


def numpy_impl(xp, p, c):
    x = p["x"]
    h, ln1 = _ln(xp, x, p["ln1_g"], p["ln1_b"])
    qkv = h @ p["Wqkv"] + p["bqkv"]
    q, k, v = (_heads(qkv[:, :, i * D:(i + 1) * D]) for i in range(3))
    s = (q @ k.swapaxes(-1, -2)) * SCALE
    a = xp.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = _merge(a @ v)
    x1 = x + o @ p["Wo"] + p["bo"]
    h2, ln2 = _ln(xp, x1, p["ln2_g"], p["ln2_b"])
    u = h2 @ p["W1"] + p["b1"]
    t = xp.tanh(GELU_C * (u + 0.044715 * u * u * u))
    gu = 0.5 * u * (1 + t)
    y = x1 + gu @ p["W2"] + p["b2"]
    r = c["r"]
    loss = (y * r).sum()

    g = {}
    dgu, g["W2"], g["b2"] = _linear_back(r, gu, p["W2"])
    du = dgu * (0.5 * (1 + t) + 0.5 * u * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * u * u))
    dh2, g["W1"], g["b1"] = _linear_back(du, h2, p["W1"])
    dx1, g["ln2_g"], g["ln2_b"] = _ln_back(dh2, p["ln2_g"], *ln2)
    dx1 += r                                  # residual
    do, g["Wo"], g["bo"] = _linear_back(dx1, o, p["Wo"])
    do = _heads(do)
    da = do @ v.swapaxes(-1, -2)
    dv = a.swapaxes(-1, -2) @ do
    ds = a * (da - (da * a).sum(-1, keepdims=True)) * SCALE   # softmax, then the scale
    dq, dk = ds @ k, ds.swapaxes(-1, -2) @ q
    dqkv = xp.concatenate([_merge(dq), _merge(dk), _merge(dv)], axis=-1)
    dh, g["Wqkv"], g["bqkv"] = _linear_back(dqkv, h, p["Wqkv"])
    dx, g["ln1_g"], g["ln1_b"] = _ln_back(dh, p["ln1_g"], *ln1)
    g["x"] = dx + dx1                         # residual
    return loss, g


WORKLOAD = Workload(
    name="W4", title="transformer block 8x128x256, 4 heads", unit="ms", per_step=1e3,
    make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward,
    notes=("GELU is the tanh approximation in every implementation",))


class _Elementary:
    """F with layer_norm / softmax / gelu (and the other fused layers) composed from
    the library's basic ops (benchmarks/frameworks.py COMPOSED): the elementary-op
    form of the block, the same ops the hand-written NumPy uses."""

    def __init__(self, F):
        from functools import partial
        from benchmarks.frameworks import COMPOSED
        self._F = F
        for name, fn in COMPOSED.items():
            setattr(self, name, partial(fn, self))

    def __getattr__(self, name):
        return getattr(self._F, name)


def forward_elementary(F, p, c):
    return forward(_Elementary(F), p, c)


WORKLOAD_ELEMENTARY = Workload(
    name="W4-e", title="transformer block, elementary ops (no fused layers)", unit="ms",
    per_step=1e3, make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward_elementary,
    notes=("layer_norm, softmax, gelu composed from basic ops in every library",))
