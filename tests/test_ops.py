"""Every op of the table, on every device: forward against NumPy, VJP against
float64 finite differences along random directions, and double backward."""
import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import gradkit as gk
from gradkit.autograd import gradcheck, gradgradcheck

from helpers import to_np, make
from op_table import OPS, draw

IDS = [op.name for op in OPS]
# ops with no gradient at all (integer/bool results: argmax, comparisons, all/any)
GRAD_OPS = [op for op in OPS if "nograd" not in op.tags]
GRAD_IDS = [op.name for op in GRAD_OPS]


def _inputs(op, rng, device, dtype):
    arrays = [draw(rng, s, op.domain[i] if i < len(op.domain) else "any")
              for i, s in enumerate(op.shapes)]
    tensors = []
    for a in arrays:
        if a.dtype.kind == "f":
            a = a.astype(dtype)
            tensors.append(make(a, device, requires_grad=True))
        else:
            tensors.append(make(a, device))
    return arrays, tensors


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_forward(op, device, rng, dtype):
    arrays, tensors = _inputs(op, rng, device, dtype)
    out = op.fn(*tensors)
    ref = op.ref(*[a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays])
    got = to_np(out)
    assert got.shape == np.shape(ref)
    assert out.dtype == np.asarray(ref).dtype or out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, ref, rtol=tol * 10, atol=tol)
    assert out.device == device


@pytest.mark.parametrize("op", GRAD_OPS, ids=GRAD_IDS)
def test_vjp(op, device, rng):
    _, tensors = _inputs(op, rng, device, np.float64)
    assert gradcheck(op.fn, tensors, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("op", [o for o in GRAD_OPS if o.smooth],
                         ids=[o.name for o in GRAD_OPS if o.smooth])
def test_double_backward(op, device, rng):
    _, tensors = _inputs(op, rng, device, np.float64)
    assert gradgradcheck(op.fn, tensors, eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("op", GRAD_OPS, ids=GRAD_IDS)
def test_grad_lands_on_device_in_dtype(op, device, rng):
    _, tensors = _inputs(op, rng, device, np.float32)
    out = op.fn(*tensors)
    out.sum().backward()
    for t in tensors:
        if t.requires_grad and t.grad is not None:
            assert t.grad.device == device
            assert t.grad.dtype == gk.float32
            assert t.grad.shape == t.shape
            assert type(t.grad.array) is type(t.array)


BINARY = [("add", lambda a, b: a + b, np.add), ("mul", lambda a, b: a * b, np.multiply),
          ("sub", lambda a, b: a - b, np.subtract), ("maximum", gk.maximum, np.maximum)]


@pytest.mark.parametrize("name,fn,ref", BINARY, ids=[b[0] for b in BINARY])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_broadcasting(name, fn, ref, shapes, seed, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes.input_shapes[0])
    b = rng.standard_normal(shapes.input_shapes[1]) + 0.05  # no ties for maximum
    ta, tb = make(a, device, True), make(b, device, True)
    out = fn(ta, tb)
    np.testing.assert_allclose(to_np(out), ref(a, b), rtol=1e-12)
    assert out.shape == shapes.result_shape
    assert gradcheck(fn, (ta, tb))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_reductions_dims(shape, data, device):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    keepdim = data.draw(st.booleans())
    rng = np.random.default_rng(0)
    a = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5 + 0.1
    t = make(a, device, True)
    for f, r in ((lambda x: x.sum(dim, keepdim), lambda x: x.sum(dim, keepdims=keepdim)),
                 (lambda x: x.mean(dim, keepdim), lambda x: x.mean(dim, keepdims=keepdim)),
                 (lambda x: x.max(dim, keepdim)[0], lambda x: x.max(dim, keepdims=keepdim)),
                 (lambda x: x.min(dim, keepdim)[0], lambda x: x.min(dim, keepdims=keepdim))):
        np.testing.assert_allclose(to_np(f(t)), r(a), rtol=1e-12)
        assert gradcheck(f, (t,))
    v, i = t.max(dim, keepdim)
    np.testing.assert_array_equal(to_np(i), a.argmax(dim) if not keepdim else
                                  np.expand_dims(a.argmax(dim), dim))
    assert i.dtype == gk.int64 and not i.requires_grad


def _np_lse(x, d, keepdims):
    m = x.max(axis=d, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=d, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=d)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_more_reductions_dims(shape, data, device):
    """prod var std logsumexp norm (with dim and keepdim; var/std also with a
    tuple of dims and a correction), cumsum, softmax, log_softmax, argmax,
    argmin, all, any on hypothesis-drawn shapes, against NumPy; gradcheck for
    the differentiable ones."""
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    dims = tuple(sorted(set(data.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))
    keepdim = data.draw(st.booleans())
    corr = data.draw(st.integers(0, 1))
    rng = np.random.default_rng(len(shape) * 7 + dim)
    a = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.25 + 0.1
    a = a * rng.choice([-1.0, 1.0], size=shape)
    n = int(np.prod([shape[d] for d in dims]))
    t = make(a, device, True)
    cases = [
        (lambda x: x.prod(dim, keepdim), lambda x: x.prod(dim, keepdims=keepdim)),
        (lambda x: x.logsumexp(dim, keepdim), lambda x: _np_lse(x, dim, keepdim)),
        (lambda x: x.norm(2, dim, keepdim), lambda x: np.sqrt((x * x).sum(dim, keepdims=keepdim))),
        (lambda x: x.cumsum(dim), lambda x: x.cumsum(dim)),
        (lambda x: x.softmax(dim), lambda x: np.exp(x - _np_lse(x, dim, True))),
        (lambda x: x.log_softmax(dim), lambda x: x - _np_lse(x, dim, True)),
    ]
    if n > 1:   # (a single element has no spread: var 0, std's gradient inf)
        cases += [(lambda x: x.var(dims, keepdim=keepdim, correction=corr),
                   lambda x: x.var(dims, ddof=corr, keepdims=keepdim)),
                  (lambda x: gk.std(x, dims, keepdim=keepdim, correction=corr),
                   lambda x: x.std(dims, ddof=corr, keepdims=keepdim))]
    for f, r in cases:
        np.testing.assert_allclose(to_np(f(t)), r(a), rtol=1e-10, atol=1e-12)
        assert gradcheck(f, (t,))
    for f, r in ((lambda x: x.argmax(dim, keepdim), lambda x: x.argmax(dim, keepdims=keepdim)),
                 (lambda x: x.argmin(dim, keepdim), lambda x: x.argmin(dim, keepdims=keepdim)),
                 (lambda x: (x > 0).all(dim, keepdim), lambda x: (x > 0).all(dim, keepdims=keepdim)),
                 (lambda x: (x > 0).any(dim, keepdim), lambda x: (x > 0).any(dim, keepdims=keepdim))):
        out = f(t)
        np.testing.assert_array_equal(to_np(out), r(a))
        assert not out.requires_grad


def test_comparisons(device):
    a = make(np.array([1.0, 2.0, 3.0]), device)
    b = make(np.array([3.0, 2.0, 1.0]), device)
    for op, ref in ((a < b, [1, 0, 0]), (a <= b, [1, 1, 0]), (a > b, [0, 0, 1]),
                    (a >= b, [0, 1, 1]), (a == b, [0, 1, 0]), (a != b, [1, 0, 1]),
                    (a > 1.5, [0, 1, 1])):
        assert op.dtype == gk.bool
        assert not op.requires_grad
        np.testing.assert_array_equal(to_np(op), np.array(ref, bool))


def test_repeated_index_grad_accumulates(device):
    x = make(np.arange(4.0), device, True)
    y = x[gk.tensor([0, 0, 3, 0], device=device)]
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 0.0, 0.0, 1.0])


def test_type_promotion(device):
    f32 = make(np.ones(2, np.float32), device)
    f64 = make(np.ones(2, np.float64), device)
    i64 = make(np.ones(2, np.int64), device)
    b = make(np.ones(2, bool), device)
    assert (f32 + f64).dtype == gk.float64
    assert (i64 + f32).dtype == gk.float32
    assert (i64 * 2.5).dtype == gk.float32
    assert (i64 * 2).dtype == gk.int64
    assert (b + 1).dtype == gk.int64
    assert (f32 * 2).dtype == gk.float32
    assert (i64 / i64).dtype == gk.float32
    assert (f32 + i64).dtype == gk.float32


def test_compare_with_none_is_not_elementwise(device):
    t = make(np.array([1.0, 2.0]), device)
    assert (t == None) is False  # noqa: E711  (torch's behaviour)
    assert (t != None) is True  # noqa: E711
