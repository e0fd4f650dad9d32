"""W1: per-op overhead. A chain of 300 elementwise ops on a tiny tensor, forward then
backward from `.sum()`; reported as microseconds per op (step time / 300).

The chain repeats  h -> sin(exp(tanh(h * 2 + b)))  (5 ops; b is a fixed tensor, so
the add is tensor + tensor). Values stay bounded (tanh and sin). The factor is 2,
not 0.5: with 0.5 the chain contracts so hard that the gradient underflows float32
(~1e-59) into denormals, which would time the FPU's denormal path, not overhead.
W1-1 is the same chain on a 1-element tensor.
"""
import numpy as np

from benchmarks.workloads import Workload

N_OPS = 300
CYCLES = N_OPS // 5
MUL = 2.0


def make_inputs(rng, n):
    return ({"x": rng.standard_normal(n).astype(np.float32)},
            {"b": (0.1 * rng.standard_normal(n)).astype(np.float32)})


def forward(F, p, c):
    h, b = p["x"], c["b"]
    for _ in range(CYCLES):
        h = F.sin(F.exp(F.tanh(h * MUL + b)))
    return F.sum(h)


def numpy_impl(xp, p, c):
    h, b = p["x"], c["b"]
    saved = []
    for _ in range(CYCLES):
        t = xp.tanh(h * MUL + b)
        e = xp.exp(t)
        saved.append((t, e))
        h = xp.sin(e)
    loss = h.sum()
    g = xp.ones_like(h)
    for t, e in reversed(saved):
        g = g * xp.cos(e)    # sin
        g = g * e            # exp: saves its output
        g = g * (1 - t * t)  # tanh: saves its output
        g = g * MUL          # mul by a constant; the add passes g through
    return loss, {"x": g}


def _workload(name, n):
    return Workload(
        name=name, title=f"per-op overhead, {N_OPS} ops on {n} elem", unit="us/op",
        per_step=1e6 / N_OPS, make_inputs=lambda rng: make_inputs(rng, n),
        numpy_impl=numpy_impl, forward=forward, min_sample_s=0.2)


WORKLOADS = [_workload("W1", 16), _workload("W1-1", 1)]
