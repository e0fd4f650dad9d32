"""W2: one MLP training step. Batch 256, layers 784-1024-1024-10 with ReLU, softmax
cross-entropy (log-sum-exp stable, mean over the batch), then plain SGD with
lr 0.01 in place (under no_grad for gradkit and torch). Reported as ms per step.
"""
import numpy as np

from benchmarks.workloads import Workload

B, SIZES, LR = 256, (784, 1024, 1024, 10), 0.01


def make_inputs(rng):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), 1):
        params[f"W{i}"] = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        params[f"b{i}"] = (0.01 * rng.standard_normal(n_out)).astype(np.float32)
    consts = {"x": rng.standard_normal((B, SIZES[0])).astype(np.float32),
              "labels": rng.integers(0, SIZES[-1], B)}
    return params, consts


def forward(F, p, c):
    h = F.relu(c["x"] @ p["W1"] + p["b1"])
    h = F.relu(h @ p["W2"] + p["b2"])
    return F.cross_entropy(h @ p["W3"] + p["b3"], c["labels"])


def numpy_impl(xp, p, c):
    x, labels = c["x"], c["labels"]
    h1 = xp.maximum(x @ p["W1"] + p["b1"], 0)
    h2 = xp.maximum(h1 @ p["W2"] + p["b2"], 0)
    z = h2 @ p["W3"] + p["b3"]
    m = z.max(axis=1, keepdims=True)
    e = xp.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    rows = xp.arange(B)
    loss = (m[:, 0] + xp.log(s[:, 0]) - z[rows, labels]).mean()

    dz = e / s                    # softmax
    dz[rows, labels] -= 1
    dz /= B
    g = {"W3": h2.T @ dz, "b3": dz.sum(0)}
    dh = dz @ p["W3"].T
    dh *= h2 > 0                  # relu
    g["W2"], g["b2"] = h1.T @ dh, dh.sum(0)
    dh = dh @ p["W2"].T
    dh *= h1 > 0
    g["W1"], g["b1"] = x.T @ dh, dh.sum(0)
    return loss, g


WORKLOAD = Workload(
    name="W2", title="MLP train step 256x784-1024-1024-10", unit="ms", per_step=1e3,
    make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward, lr=LR)
