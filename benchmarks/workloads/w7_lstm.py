"""W7: a one-layer LSTM over a sequence, forward + backward; reported as ms per step.

64 steps, batch 32, input 256, hidden 256 (torch's gate order i, f, g, o and
parameter layout: w_ih (4H, I), w_hh (4H, H), b_ih, b_hh), h0 = c0 = 0:
    out, (h_T, c_T) = LSTM(x)
    loss = sum(out * r) + sum(c_T * r_c)   (fixed random r, r_c: every gradient is non-trivial)
Gradients w.r.t. x and all four parameters. gradkit and torch run their own
``nn.LSTM`` module forward with the benchmark's leaves as its weights; the
hand-written NumPy version projects all inputs with one GEMM, runs the gates by
hand, and forms the recurrent weight's gradient as one GEMM over all steps.
"""
import numpy as np

from benchmarks.workloads import Workload

T, N, I, H = 64, 32, 256, 256


def make_inputs(rng):
    k = 1.0 / np.sqrt(H)   # torch's init: U(-1/sqrt(H), 1/sqrt(H))

    def u(*shape):
        return rng.uniform(-k, k, shape).astype(np.float32)

    params = {"x": rng.standard_normal((T, N, I)).astype(np.float32),
              "w_ih": u(4 * H, I), "w_hh": u(4 * H, H), "b_ih": u(4 * H), "b_hh": u(4 * H)}
    consts = {"r": (rng.standard_normal((T, N, H)) / np.sqrt(T * N)).astype(np.float32),
              "r_c": (rng.standard_normal((N, H)) / np.sqrt(N)).astype(np.float32)}
    return params, consts


def forward(F, p, c):
    out, (_, c_n) = F.lstm(p["x"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    return F.sum(out * c["r"]) + F.sum(c_n[0] * c["r_c"])


# ---- by hand -------------------------------------------------------------------

def numpy_impl(xp, p, c):
    x, w_ih, w_hh = p["x"], p["w_ih"], p["w_hh"]
    dt = x.dtype

    def sigmoid(z):
        return 1.0 / (1.0 + xp.exp(-z))

    xg = (x.reshape(T * N, I) @ w_ih.T + (p["b_ih"] + p["b_hh"])).reshape(T, N, 4 * H)
    hs = xp.empty((T + 1, N, H), dt)        # hs[0] = h0
    cs = xp.empty((T + 1, N, H), dt)
    acts = xp.empty((T, N, 4 * H), dt)      # i, f, g, o after their nonlinearity
    tcs = xp.empty((T, N, H), dt)
    hs[0] = 0
    cs[0] = 0
    w_hh_t = w_hh.T
    for t in range(T):
        z = xg[t] + hs[t] @ w_hh_t
        a = acts[t]
        a[:, :2 * H] = sigmoid(z[:, :2 * H])
        a[:, 2 * H:3 * H] = xp.tanh(z[:, 2 * H:3 * H])
        a[:, 3 * H:] = sigmoid(z[:, 3 * H:])
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        cs[t + 1] = f * cs[t] + i * g
        tcs[t] = xp.tanh(cs[t + 1])
        hs[t + 1] = o * tcs[t]
    r = c["r"]
    loss = (hs[1:] * r).sum() + (cs[T] * c["r_c"]).sum()

    dG = xp.empty((T, N, 4 * H), dt)
    dh = xp.zeros((N, H), dt)
    dc = c["r_c"].astype(dt, copy=True)
    for t in range(T - 1, -1, -1):
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        tc = tcs[t]
        dh = dh + r[t]
        dc = dc + dh * o * (1 - tc * tc)
        d = dG[t]
        d[:, :H] = dc * g * i * (1 - i)
        d[:, H:2 * H] = dc * cs[t] * f * (1 - f)
        d[:, 2 * H:3 * H] = dc * i * (1 - g * g)
        d[:, 3 * H:] = dh * tc * o * (1 - o)
        dc = dc * f
        dh = d @ w_hh
    dG2 = dG.reshape(T * N, 4 * H)
    g = {"x": (dG2 @ w_ih).reshape(T, N, I),
         "w_ih": dG2.T @ x.reshape(T * N, I),
         "w_hh": dG2.T @ hs[:T].reshape(T * N, H)}
    g["b_ih"] = dG2.sum(0)
    g["b_hh"] = g["b_ih"].copy()
    return loss, g


WORKLOAD = Workload(
    name="W7", title="LSTM 64 steps x32, 256->256, fwd+bwd", unit="ms", per_step=1e3,
    make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward, repeat=9,
    notes=("gradkit and torch run nn.LSTM with the benchmark's leaves as weights",))
