"""W3: deep-chain memory. 100 elementwise ops on 2,000,000 float32 elements (8 MB a
tensor), forward and backward; reported as time and as peak memory above the
baseline taken after imports and input creation, next to the theoretical minimum.

Op i of the chain (i = 0..99) is, by i % 3:
  0: h * w   (w a fixed 2M-element tensor) on even cycles, h * 0.5 on odd ones
  1: h + 0.1
  2: tanh(h)
Gradient w.r.t. x only (w does not require grad).

Theoretical minimum of the peak above the baseline (x and w are in the baseline):
  what backward really needs saved:  tanh saves its output      -> 33 tensors
                                     mul by w saves w            -> 0 new (w is an input)
                                     mul by 0.5, add save nothing
  plus ONE working buffer: the value being computed in forward, which becomes the
  gradient in flight in backward and, at the end, x.grad.
  min_bytes = (n_tanh + 1) * 2,000,000 * 4 = 34 * 8 MB = 272 MB.
The hand-written NumPy version reaches it by working in place (out=); a library
that allocates every op's result needs about one more buffer.
"""
import numpy as np

from benchmarks.workloads import Workload

N, N_OPS = 2_000_000, 100
N_TANH = sum(1 for i in range(N_OPS) if i % 3 == 2)  # 33


def make_inputs(rng):
    return ({"x": rng.standard_normal(N).astype(np.float32)},
            {"w": rng.uniform(0.5, 1.5, N).astype(np.float32)})


def _factor(i, w):
    return w if (i // 3) % 2 == 0 else 0.5


def forward(F, p, c):
    h, w = p["x"], c["w"]
    for i in range(N_OPS):
        if i % 3 == 0:
            h = h * _factor(i, w)
        elif i % 3 == 1:
            h = h + 0.1
        else:
            h = F.tanh(h)
    return F.sum(h)


def numpy_impl(xp, p, c):
    h, w = p["x"], c["w"]
    saved = []                     # tanh outputs, in order
    for i in range(N_OPS):
        if i % 3 == 0:
            h = h * _factor(i, w)  # the one new buffer: h is x or a saved tanh output
        elif i % 3 == 1:
            h += 0.1
        else:
            xp.tanh(h, out=h)
            saved.append(h)
    loss = h.sum()
    g = h                          # h is needed no more: its buffer carries the gradient
    g.fill(1)
    for i in reversed(range(N_OPS)):
        if i % 3 == 0:
            g *= _factor(i, w)
        elif i % 3 == 2:           # tanh' = 1 - y^2, computed in y's own buffer
            y = saved.pop()
            xp.multiply(y, y, out=y)
            xp.subtract(1, y, out=y)
            g *= y
            del y
    return loss, {"x": g}


WORKLOAD = Workload(
    name="W3", title=f"deep chain, {N_OPS} ops on 2M elem", unit="ms", per_step=1e3,
    make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward, repeat=7,
    min_sample_s=0.0, min_bytes=lambda: (N_TANH + 1) * N * 4)
