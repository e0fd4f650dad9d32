"""W6: one conv-net training step (PyTorch's MNIST example net without dropout).
Batch 64 of 1x28x28; conv 3x3 1->32, ReLU, conv 3x3 32->64, ReLU, 2x2 max-pool,
flatten (9216), linear head to 10 classes, softmax cross-entropy (mean); grads of
all six parameters, then plain SGD (lr 0.1: with 0.01 the float32 rounding of the
updated weights exceeds the check's tolerance on the small first-layer changes) in place. Reported as ms per step.

The hand-written NumPy version is what one would write without a framework: an
im2col as a strided view (copied once into the GEMM operand, and kept for the
weight gradient), GEMMs for the convolutions and both of their gradients, col2im
as one vectorized add per kernel offset, the max-pool as the maximum of the
four strided corners of each window, its gradient through the equality masks.
"""
import numpy as np

from benchmarks.workloads import Workload

B, K, C1, C2, HW, CLASSES, LR = 64, 3, 32, 64, 28, 10, 0.1


def make_inputs(rng):
    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    n_flat = C2 * ((HW - 2 * (K - 1)) // 2) ** 2
    params = {"W1": uniform((C1, 1, K, K), K * K), "b1": uniform((C1,), K * K),
              "W2": uniform((C2, C1, K, K), C1 * K * K), "b2": uniform((C2,), C1 * K * K),
              "W3": uniform((n_flat, CLASSES), n_flat), "b3": uniform((CLASSES,), n_flat)}
    consts = {"x": rng.standard_normal((B, 1, HW, HW)).astype(np.float32),
              "labels": rng.integers(0, CLASSES, B)}
    return params, consts


def forward(F, p, c):
    h = F.relu(F.conv2d(c["x"], p["W1"], p["b1"]))
    h = F.relu(F.conv2d(h, p["W2"], p["b2"]))
    h = F.max_pool2d(h, 2)
    h = F.reshape(h, (B, -1))
    return F.cross_entropy(h @ p["W3"] + p["b3"], c["labels"])


def _im2col(xp, x):
    """(N, C*K*K, OH*OW) columns of a valid KxK window sweep (one copy of a view)."""
    n, ch, h, w = x.shape
    s = x.strides
    v = xp.lib.stride_tricks.as_strided(x, (n, ch, K, K, h - K + 1, w - K + 1),
                                        (s[0], s[1], s[2], s[3], s[2], s[3]))
    return v.reshape(n, ch * K * K, (h - K + 1) * (w - K + 1))


def _col2im(xp, cols, shape):
    n, ch, h, w = shape
    oh, ow = h - K + 1, w - K + 1
    cols = cols.reshape(n, ch, K, K, oh, ow)
    out = xp.zeros(shape, cols.dtype)
    for i in range(K):
        for j in range(K):
            out[:, :, i:i + oh, j:j + ow] += cols[:, :, i, j]
    return out


def _conv(xp, x, w, b):
    cols = _im2col(xp, x)
    y = xp.matmul(w.reshape(w.shape[0], -1), cols) + b[:, None]
    oh = x.shape[2] - K + 1
    return y.reshape(x.shape[0], w.shape[0], oh, x.shape[3] - K + 1), cols


def _conv_grads(xp, dy, cols, w):
    """(dW, db, dcols) of y = W @ cols + b, dy (N, O, OH, OW)."""
    d = dy.reshape(dy.shape[0], dy.shape[1], -1)
    dw = xp.matmul(d, cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
    # W^T made contiguous first: NumPy's batched matmul does not hand a transposed
    # (non-unit-stride) operand to BLAS, and the fallback loop is several times slower
    dcols = xp.matmul(xp.ascontiguousarray(w.reshape(w.shape[0], -1).T), d)
    return dw, d.sum((0, 2)), dcols


def numpy_impl(xp, p, c):
    x, labels = c["x"], c["labels"]
    y1, cols1 = _conv(xp, x, p["W1"], p["b1"])
    h1 = xp.maximum(y1, 0)
    y2, cols2 = _conv(xp, h1, p["W2"], p["b2"])
    h2 = xp.maximum(y2, 0)
    n = h2.shape[0]
    q = [h2[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]   # the 2x2 window's corners
    m = xp.maximum(xp.maximum(q[0], q[1]), xp.maximum(q[2], q[3]))
    flat = m.reshape(n, -1)
    z = flat @ p["W3"] + p["b3"]
    zm = z.max(axis=1, keepdims=True)
    e = xp.exp(z - zm)
    s = e.sum(axis=1, keepdims=True)
    rows = xp.arange(n)
    loss = (zm[:, 0] + xp.log(s[:, 0]) - z[rows, labels]).mean()

    dz = e / s
    dz[rows, labels] -= 1
    dz /= n
    g = {"W3": flat.T @ dz, "b3": dz.sum(0)}
    dm = (dz @ p["W3"].T).reshape(m.shape)
    dh2 = xp.empty_like(h2)
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        dh2[:, :, i::2, j::2] = dm * (q[k] == m)     # gradient to the window's max
    dh2 *= h2 > 0                                    # relu
    g["W2"], g["b2"], dcols2 = _conv_grads(xp, dh2, cols2, p["W2"])
    dh1 = _col2im(xp, dcols2, h1.shape)
    dh1 *= h1 > 0
    g["W1"], g["b1"], _ = _conv_grads(xp, dh1, cols1, p["W1"])
    return loss, g


WORKLOAD = Workload(
    name="W6", title="conv-net train step 64x1x28x28, 3x3 conv 32, 64, max-pool, linear",
    unit="ms", per_step=1e3, make_inputs=make_inputs, numpy_impl=numpy_impl, forward=forward,
    lr=LR, repeat=9, needs=("conv2d", "max_pool2d"))
