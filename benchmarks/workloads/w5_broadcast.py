"""W5: broadcast and reduce; reported as ms per step.

    s = sum(x * y, axis=-1)        x (512, 1, 64) * y (1, 256, 64) -> (512, 256, 64) -> (512, 256)
    loss = mean(logsumexp(s, axis=1))   (stable: max-subtracted)
Gradients w.r.t. x and y. The hand-written version does the same broadcast
product and the same sums (undoing the broadcast in backward is a sum over the
broadcast axis), not a matmul rewrite, so it measures the same work.
"""
import numpy as np

from benchmarks.workloads import Workload


def make_inputs(rng):
    return ({"x": rng.standard_normal((512, 1, 64)).astype(np.float32),
             "y": rng.standard_normal((1, 256, 64)).astype(np.float32)}, {})


def forward(F, p, c):
    return F.mean(F.logsumexp(F.sum(p["x"] * p["y"], -1), 1))


def numpy_impl(xp, p, c):
    x, y = p["x"], p["y"]
    s = (x * y).sum(-1)
    m = s.max(1, keepdims=True)
    e = xp.exp(s - m)
    z = e.sum(1, keepdims=True)
    loss = (m[:, 0] + xp.log(z[:, 0])).mean()

    ds = (e / z / s.shape[0])[:, :, None]   # d loss / d s = softmax(s) / 512
    return loss, {"x": (ds * y).sum(1, keepdims=True), "y": (ds * x).sum(0, keepdims=True)}


WORKLOAD = Workload(
    name="W5", title="broadcast (512,1,64)*(1,256,64), sum, lse", unit="ms", per_step=1e3,
    make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward)
