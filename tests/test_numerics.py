"""Numerics (issue 6, Reliability): the softmax family and the logit losses are
exact and finite at +-1e4 (values and gradients), on every device, in float32
and float64; float16 forward/backward works on the cpu and keeps gradients in
the leaf's dtype (see gradkit/reliability.py for the documented policy)."""
import numpy as np
import pytest

import gradkit as gk

from helpers import to_np

BIG = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0],
                [-1e4, -1e4, -1e4 + 2.0, -1e4],
                [1e4, 1e4, 1e4, 1e4],
                [-1e4, 1e4, -1e4, -1e4]])
C = np.array([[0.3, -1.2, 2.0, 0.7],
              [1.1, 0.4, -0.5, 0.2],
              [-0.8, 0.6, 0.9, -0.1],
              [0.5, -0.3, 0.1, 1.5]])    # upstream weights for the backward


class _NF:
    """gk.nn.functional, imported when first used (so that the float16 tests run
    on their own while nn is being written)."""
    def __getattr__(self, name):
        import gradkit.nn.functional as F
        return getattr(F, name)


NF = _NF()


def _lse(x, d):
    m = x.max(axis=d, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=d, keepdims=True))


def _sm(x, d):
    return np.exp(x - _lse(x, d))


TOL = {"float32": dict(rtol=2e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}


def _leaf(device, dtype, arr=BIG):
    return gk.tensor(arr.astype(dtype), device=device, requires_grad=True)


def _check(t, ref, dtype):
    a = to_np(t)
    assert a.dtype == np.dtype(dtype)
    assert np.isfinite(a).all(), a
    np.testing.assert_allclose(a.astype(np.float64), ref, **TOL[dtype])


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_big(device, dtype, dim):
    for fn in (lambda x: gk.softmax(x, dim), lambda x: x.softmax(dim),
               lambda x: NF.softmax(x, dim)):
        x = _leaf(device, dtype)
        y = fn(x)
        ref = _sm(BIG, dim)
        _check(y, ref, dtype)
        (y * gk.tensor(C.astype(dtype), device=device)).sum().backward()
        _check(x.grad, ref * (C - (ref * C).sum(axis=dim, keepdims=True)), dtype)


@pytest.mark.parametrize("dim", [-1, 0])
def test_log_softmax_big(device, dtype, dim):
    for fn in (lambda x: gk.log_softmax(x, dim), lambda x: x.log_softmax(dim),
               lambda x: NF.log_softmax(x, dim)):
        x = _leaf(device, dtype)
        y = fn(x)
        _check(y, BIG - _lse(BIG, dim), dtype)
        (y * gk.tensor(C.astype(dtype), device=device)).sum().backward()
        _check(x.grad, C - _sm(BIG, dim) * C.sum(axis=dim, keepdims=True), dtype)


@pytest.mark.parametrize("dim,keepdim", [(-1, False), (0, True), (1, True)])
def test_logsumexp_big(device, dtype, dim, keepdim):
    for fn in (lambda x: gk.logsumexp(x, dim, keepdim=keepdim),
               lambda x: x.logsumexp(dim, keepdim=keepdim)):
        x = _leaf(device, dtype)
        y = fn(x)
        ref = _lse(BIG, dim)
        _check(y, ref if keepdim else ref.squeeze(dim), dtype)
        y.sum().backward()
        _check(x.grad, _sm(BIG, dim), dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_big(device, dtype, reduction):
    target = np.array([1, 0, 2, 3])
    x = _leaf(device, dtype)
    loss = NF.cross_entropy(x, gk.tensor(target, device=device), reduction=reduction)
    per = -(BIG - _lse(BIG, 1))[np.arange(4), target]
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    _check(loss, np.asarray(ref), dtype)
    assert per.max() > 2e4  # the worst row really is ~2e4 off: finite, not inf
    loss.sum().backward()
    onehot = np.eye(4)[target]
    scale = 1 / 4 if reduction == "mean" else 1.0
    _check(x.grad, (_sm(BIG, 1) - onehot) * scale, dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_big(device, dtype, reduction):
    z = BIG
    t = np.array([[1.0, 1.0, 0.0, 0.0],
                  [0.0, 1.0, 1.0, 0.5],
                  [0.0, 1.0, 0.25, 1.0],
                  [1.0, 0.0, 0.0, 1.0]])
    x = _leaf(device, dtype, z)
    loss = NF.binary_cross_entropy_with_logits(x, gk.tensor(t.astype(dtype), device=device),
                                               reduction=reduction)
    per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    _check(loss, np.asarray(ref), dtype)
    loss.sum().backward()
    sig = 0.5 * (1 + np.tanh(z / 2))  # exact 0/1 at +-1e4, no overflow
    scale = 1 / z.size if reduction == "mean" else 1.0
    _check(x.grad, (sig - t) * scale, dtype)


def test_softmax_family_double_backward_finite(device):
    # second derivatives through the stable formulas stay finite too
    c = gk.tensor(C, device=device)
    for f in (lambda x: gk.softmax(x, -1) * c, lambda x: gk.log_softmax(x, -1) * c,
              lambda x: gk.logsumexp(x, -1)):
        x = _leaf(device, "float64")
        g, = gk.grad(f(x).sum(), x, create_graph=True)
        gg, = gk.grad((g * g).sum(), x)
        assert np.isfinite(to_np(gg)).all()


# ------------------------------------------------------------------ float16
def test_float16_forward_backward_cpu():
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((5, 4)).astype(np.float16)
    wv = (rng.standard_normal((4, 3)) * 0.5).astype(np.float16)
    x = gk.tensor(xv)
    w = gk.tensor(wv, requires_grad=True)
    y = (x @ w).tanh()
    assert y.dtype == gk.float16
    loss = (y * y).mean()
    assert loss.dtype == gk.float16
    loss.backward()
    # gradients are produced and accumulated in the leaf's dtype (no AMP)
    assert w.grad.dtype == gk.float16
    x64, w64 = xv.astype(np.float64), wv.astype(np.float64)
    t = np.tanh(x64 @ w64)
    ref = x64.T @ (2 * t * (1 - t * t) / t.size)
    np.testing.assert_allclose(to_np(w.grad).astype(np.float64), ref, rtol=2e-2, atol=2e-3)
    loss2 = ((x @ w).tanh() ** 2).mean()
    loss2.backward()
    assert w.grad.dtype == gk.float16
    np.testing.assert_allclose(to_np(w.grad).astype(np.float64), 2 * ref, rtol=2e-2, atol=4e-3)


def test_float16_compute_with_float32_master_weights_cpu():
    # the documented recipe: keep the parameter in float32, cast in the forward
    rng = np.random.default_rng(1)
    x = gk.tensor(rng.standard_normal((5, 4)).astype(np.float16))
    w = gk.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    y = x @ w.half()
    assert y.dtype == gk.float16
    y.float().sum().backward()
    assert w.grad.dtype == gk.float32
    np.testing.assert_allclose(to_np(w.grad), np.broadcast_to(
        to_np(x).astype(np.float32).sum(0)[:, None], (4, 3)), rtol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_scalar_operands_match_numpy_bit_for_bit(device, dtype):
    # the NumPy backend caches Python scalars as 0-d arrays (W1's overhead): the
    # results must stay NumPy's, the sign of zero included (0.0 == -0.0 as keys)
    x = np.array([-0.0, 0.0, 1.5, -2.0], dtype=dtype)
    t = gk.tensor(x, device=device)
    for s in (0.0, -0.0, 0.1, -3, 1e30):
        for got, want in ((t * s, x * s), (t + s, x + s), (s - t, s - x), (t / 7, x / 7)):
            got = to_np(got)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
            np.testing.assert_array_equal(got, want)
