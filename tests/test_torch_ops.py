"""Issue 12's ops against PyTorch itself (skipped without torch), plus the parts a
NumPy reference can't show: out=, the method/function pairing, errors, sampling."""
import warnings

import inspect

import numpy as np
import pytest

import gradkit as gk
from gradkit.ops.core import METHODS   # the one method table
from gradkit.ops.out import OUT_NAMES

from helpers import to_np, make


def _torch():
    return pytest.importorskip("torch")


# (name, fn(lib, *tensors), input shapes, domain); lib is gradkit or torch
CASES = [
    ("tril", lambda L, a: L.tril(a, 1), [(3, 4)]),
    ("triu_batched", lambda L, a: a.triu(-1), [(2, 3, 3)]),
    ("topk", lambda L, a: L.topk(a, 2, dim=0)[0], [(4, 3)]),
    ("topk_smallest", lambda L, a: a.topk(3, largest=False).values, [(2, 5)]),
    ("sort", lambda L, a: L.sort(a, dim=1, descending=True)[0], [(3, 4)]),
    ("roll", lambda L, a: L.roll(a, shifts=(2, -1), dims=(1, 0)), [(3, 4)]),
    ("roll_flat", lambda L, a: a.roll(-7), [(3, 4)]),
    ("unbind", lambda L, a: L.stack([u * (i + 1) for i, u in enumerate(L.unbind(a, 1))]),
     [(2, 3)]),
    ("outer", lambda L, a, b: L.outer(a, b), [(3,), (4,)]),
    ("addmm", lambda L, i, a, b: L.addmm(i, a, b, beta=0.3, alpha=-2), [(1, 4), (3, 2), (2, 4)]),
    ("addmm_beta0", lambda L, i, a, b: L.addmm(i, a, b, beta=0), [(3, 4), (3, 2), (2, 4)]),
    ("baddbmm", lambda L, i, a, b: L.baddbmm(i, a, b, alpha=0.5), [(4,), (2, 3, 5), (2, 5, 4)]),
    ("mm_method", lambda L, a, b: a.mm(b), [(3, 4), (4, 2)]),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (2, 4, 1)]),
    ("diag_vec", lambda L, a: L.diag(a, -2), [(3,)]),
    ("diag_mat", lambda L, a: a.diag(1), [(3, 4)]),
    ("diagonal", lambda L, a: L.diagonal(a, -1, 2, 0), [(3, 2, 4)]),
    ("trace", lambda L, a: L.trace(a), [(4, 3)]),
    ("cumprod", lambda L, a: L.cumprod(a, 0), [(4, 3)]),
    ("view_as", lambda L, a: a.view_as(a.t()), [(2, 3)]),
    ("reshape_as", lambda L, a, b: a.t().reshape_as(b) * b, [(2, 3), (3, 2)]),
    ("t_eq", lambda L, a: L.where(a.t().eq(a.t().max()), a.t(), a.t() * 2), [(2, 3)]),
    ("masked_fill", lambda L, a: (a * 1).masked_fill_(a > 0.3, -1.5), [(3, 3)]),
    ("select", lambda L, a: a.select(0, 1), [(3, 2)]),
]


@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_value_and_grad(name, fn, shapes):
    torch = _torch()
    rng = np.random.default_rng(7)
    arrays = [rng.permutation(int(np.prod(s))).reshape(s) * 0.31 - 1.0 for s in shapes]
    g = [gk.tensor(a, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    go, to = fn(gk, *g), fn(torch, *t)
    np.testing.assert_allclose(to_np(go), to.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(tuple(to.shape))
    (go * gk.tensor(w)).sum().backward()
    (to * torch.tensor(w)).sum().backward()
    for a, b in zip(g, t):
        np.testing.assert_allclose(to_np(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cumprod_with_zeros_matches_torch():
    torch = _torch()
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0, 4.0, 0.5], [1.0, 2.0, 0.0, 3.0, 0.0]])
    g, t = gk.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    w = np.arange(15.0).reshape(3, 5) - 7
    (gk.cumprod(g, 1) * gk.tensor(w)).sum().backward()
    (torch.cumprod(t, 1) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(to_np(g.grad), t.grad.numpy(), rtol=1e-12)


def test_sort_topk_indices_and_ties_as_torch():
    torch = _torch()
    x = np.array([[1.0, 3.0, 1.0, float("nan"), 3.0, -np.inf], [2.0, 2.0, 2.0, 0.0, 1.0, 2.0]])
    for desc in (False, True):
        gv, gi = gk.sort(gk.tensor(x), 1, descending=desc, stable=True)
        tv, ti = torch.sort(torch.tensor(x), dim=1, descending=desc, stable=True)
        np.testing.assert_array_equal(to_np(gi), ti.numpy())
        np.testing.assert_array_equal(to_np(gv), tv.numpy())
        assert gi.dtype == gk.int64
        np.testing.assert_array_equal(to_np(gk.argsort(gk.tensor(x), descending=desc)),
                                      torch.argsort(torch.tensor(x), descending=desc,
                                                    stable=True).numpy())
    v, i = gk.topk(gk.tensor(x[1]), 2)
    assert to_np(v).tolist() == [2.0, 2.0] and to_np(i).tolist() == [0, 1]


def test_index_results_as_torch():
    torch = _torch()
    x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(to_np(gk.nonzero(gk.tensor(x))), torch.nonzero(torch.tensor(x)))
    for a, b in zip(gk.nonzero(gk.tensor(x), as_tuple=True), torch.nonzero(torch.tensor(x),
                                                                             as_tuple=True)):
        np.testing.assert_array_equal(to_np(a), b.numpy())
    for a, b in zip(gk.where(gk.tensor(x) > 0), torch.where(torch.tensor(x) > 0)):
        np.testing.assert_array_equal(to_np(a), b.numpy())
    i = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(to_np(gk.nn.functional.one_hot(gk.tensor(i))),
                                  torch.nn.functional.one_hot(torch.tensor(i)).numpy())
    a = np.array([1.0, np.inf, np.nan, 1e-9, -np.inf, 100.0])
    b = np.array([1.0 + 1e-6, np.inf, np.nan, 0.0, np.inf, 100.001])
    for en in (False, True):
        np.testing.assert_array_equal(
            to_np(gk.isclose(gk.tensor(a), gk.tensor(b), equal_nan=en)),
            torch.isclose(torch.tensor(a), torch.tensor(b), equal_nan=en).numpy())
    assert gk.allclose(gk.tensor(a[:2]), gk.tensor(b[:2])) is True
    assert gk.tensor([1.0]).allclose(gk.tensor([1.1])) is False


def test_integer_dtypes_as_torch():
    torch = _torch()
    x = np.array([[1, 2], [3, 4]])
    for name in ("tril", "triu", "trace", "diag"):
        assert getattr(gk, name)(gk.tensor(x)).dtype_name == str(getattr(torch, name)(
            torch.tensor(x)).dtype).split(".")[1]
    assert gk.cumprod(gk.tensor(x, dtype=gk.int32), 0).dtype == gk.int64
    assert gk.cumprod(gk.tensor([True, True]), 0).dtype == gk.int64


def test_every_function_is_a_method_and_vice_versa():
    """Names gradkit has as functions that torch has as Tensor methods are Tensor
    methods here too, and the methods torch also has as functions are gk functions."""
    torch = _torch()
    funcs = {n for n in dir(gk) if not n.startswith("_") and callable(getattr(gk, n))
             and not isinstance(getattr(gk, n), type)}
    missing = sorted(n for n in funcs if hasattr(torch.Tensor, n) and not hasattr(gk.Tensor, n))
    assert not missing, f"torch has these as Tensor methods, gradkit only as functions: {missing}"
    meths = {n for n in dir(gk.Tensor) if not n.startswith("_")}
    nofunc = sorted(n for n in meths if callable(getattr(gk.Tensor, n)) and
                    callable(getattr(torch, n, None)) and not hasattr(gk, n))
    assert not nofunc, f"torch has these as functions, gradkit only as methods: {nofunc}"


def test_method_table_installed():
    for name, fn in METHODS.items():
        assert getattr(gk.Tensor, name) is fn, name
        f = fn.fget if isinstance(fn, property) else fn
        assert f.__doc__ or f.__module__ != "gradkit.ops.torch_ops", name


def test_issue_method_forms():
    a = gk.tensor([[1.0, 2.0], [3.0, 4.0]])
    b = gk.tensor([[1.0, 0.0], [3.0, 5.0]])
    assert a.t().tolist() == [[1.0, 3.0], [2.0, 4.0]]
    assert a.mm(b).tolist() == (a @ b).tolist()
    assert a.eq(b).tolist() == [[True, False], [True, False]]
    assert a.ne(b).tolist() == [[False, True], [False, True]]
    assert a.lt(b).sum().item() == 1 and a.le(b).sum().item() == 3
    assert a.gt(b).sum().item() == 1 and a.ge(b).sum().item() == 3
    assert [u.tolist() for u in a.unbind()] == [[1.0, 2.0], [3.0, 4.0]]
    assert a.view_as(gk.zeros(4)).shape == (4,)
    assert gk.tensor([1, 2]).type_as(a).dtype == gk.float32
    assert gk.tensor([1.0]).expand_as(a).shape == (2, 2)
    assert a.reshape_as(gk.zeros(4, 1)).shape == (4, 1)
    z = a.new_zeros(3)
    assert z.dtype == a.dtype and z.tolist() == [0.0] * 3
    assert a.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert a.new_tensor([1, 2]).dtype == gk.float32


def test_random_fills_in_place():
    gk.manual_seed(3)
    w = gk.nn.Parameter(gk.zeros(2000))
    v = w._version
    w.data.normal_(1.0, 0.5)                 # the issue's `w.data.normal_()`
    assert abs(w.mean().item() - 1.0) < 0.05 and abs(w.std().item() - 0.5) < 0.05
    assert w.requires_grad and w.is_leaf and w._version == v   # .data has its own counter
    with pytest.raises(RuntimeError, match="gradkit.uniform_: a leaf Variable that requires"):
        w.uniform_()
    with gk.no_grad():
        w.uniform_(-2.0, -1.0)
    assert -2.0 <= w.min().item() and w.max().item() < -1.0
    with pytest.raises(RuntimeError, match="gradkit.normal_: expected a floating point"):
        gk.zeros(2, dtype=gk.int64).normal_()


def test_creation_forms_from_torch():
    assert gk.empty(size=(2, 3)).shape == (2, 3)
    assert gk.zeros(size=[4]).shape == (4,)
    r = gk.randint(5, (100,))
    assert r.shape == (100,) and r.dtype == gk.int64
    assert 0 <= r.min().item() and r.max().item() < 5
    r = gk.randint(3, 6, size=(50,))
    assert 3 <= r.min().item() and r.max().item() < 6
    p = gk.randperm(10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype == gk.int64
    assert gk.randperm(4, dtype=gk.float32).dtype == gk.float32


# ---------------------------------------------------------------- out=
def test_out_keyword_writes_in_place():
    a = gk.tensor([1.0, 2.0])
    out = gk.empty(2)
    v = out._version
    r = gk.add(a, 1, out=out)
    assert r is out and out.tolist() == [2.0, 3.0] and out._version == v + 1
    m = gk.zeros(2, 2)
    gk.matmul(gk.eye(2), gk.tensor([[1.0, 2.0], [3.0, 4.0]]), out=m)
    assert m.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    i = gk.zeros(2, dtype=gk.int64)
    gk.mul(gk.tensor([2, 3]), 2, out=i)
    assert i.tolist() == [4, 6] and i.dtype == gk.int64
    f = gk.zeros(2, dtype=gk.float64)
    gk.sub(gk.tensor([2, 3]), 1, out=f)          # int result into a float out: cast
    assert f.dtype == gk.float64 and f.tolist() == [1.0, 2.0]
    e = gk.exp(gk.zeros(3), out=gk.empty(0))       # an empty out is resized silently
    assert e.tolist() == [1.0, 1.0, 1.0]
    for name in ("add", "sub", "mul", "div", "matmul", "exp", "sum", "cat", "where"):
        assert name in OUT_NAMES


def test_out_keyword_errors_as_torch():
    a = gk.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        gk.mul(a, 2, out=gk.empty(2))
    with gk.no_grad():
        assert gk.mul(a, 2, out=gk.empty(2)).tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type int64"):
        gk.div(gk.tensor([1, 2]), 2, out=gk.zeros(2, dtype=gk.int64))
    with pytest.warns(UserWarning, match="was resized"):
        gk.add(gk.ones(3), 1, out=gk.zeros(2))
    with pytest.raises(TypeError, match="out must be a Tensor"):
        gk.add(gk.ones(3), 1, out=[0, 0, 0])


def test_out_table_checked():
    """Every OUT_NAMES entry is a public function that takes out=: wrapped for it, or
    (the unary elementwise ops) taking it itself; the function it wraps is the
    differentiable one (gradients unchanged without out=)."""
    for name in OUT_NAMES:
        f = getattr(gk, name)
        assert (hasattr(f, "__wrapped__") and "out=" in f.__doc__) or \
            "out" in inspect.signature(f).parameters, name
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    gk.mul(x, 3.0).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_out_matches_torch():
    torch = _torch()
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    for name in ("add", "mul", "matmul", "maximum"):
        o1, o2 = gk.zeros(2, 2, dtype=gk.float64), torch.zeros(2, 2, dtype=torch.float64)
        getattr(gk, name)(gk.tensor(x), gk.tensor(x.T), out=o1)
        getattr(torch, name)(torch.tensor(x), torch.tensor(x.T), out=o2)
        np.testing.assert_allclose(to_np(o1), o2.numpy())
    o1, o2 = gk.zeros(2, dtype=gk.float64), torch.zeros(2, dtype=torch.float64)
    gk.sum(gk.tensor(x), 1, out=o1)
    torch.sum(torch.tensor(x), 1, out=o2)
    np.testing.assert_allclose(to_np(o1), o2.numpy())


# ------------------------------------------------------------- sampling
def test_multinomial_distribution(device):
    gk.manual_seed(0)
    p = make(np.array([0.1, 0.0, 0.6, 0.3]), device)
    s = to_np(gk.multinomial(p, 20000, replacement=True))
    freq = np.bincount(s, minlength=4) / s.size
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    rows = make(np.array([[1.0, 1.0, 0.0, 2.0], [0.0, 5.0, 1.0, 0.0]]), device)
    s = to_np(gk.multinomial(rows, 2))
    assert s.shape == (2, 2) and s.dtype == np.int64
    for r, w in zip(s, to_np(rows)):
        assert len(set(r)) == 2 and (w[r] > 0).all()   # without replacement: distinct, positive
    s = to_np(gk.multinomial(make(np.array([[1.0, 3.0]]), device), 2))
    assert sorted(s[0].tolist()) == [0, 1]


def test_multinomial_first_draw_frequency_without_replacement():
    gk.manual_seed(1)
    p = gk.tensor([1.0, 2.0, 7.0])
    first = to_np(gk.multinomial(p.expand(20000, 3), 2))[:, 0]
    np.testing.assert_allclose(np.bincount(first, minlength=3) / first.size, [0.1, 0.2, 0.7],
                               atol=0.015)


def test_sampling_errors():
    with pytest.raises(RuntimeError, match="gradkit.multinomial: probability tensor contains"):
        gk.multinomial(gk.tensor([0.5, -0.1]), 1)
    with pytest.raises(RuntimeError, match="sum of probabilities <= 0"):
        gk.multinomial(gk.tensor([0.0, 0.0]), 1, True)
    with pytest.raises(RuntimeError, match="without replacement"):
        gk.multinomial(gk.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="not enough non-negative category"):
        gk.multinomial(gk.tensor([0.5, 0.0, 0.0]), 2)
    with pytest.raises(RuntimeError, match="1 or 2 dim"):
        gk.multinomial(gk.ones(2, 2, 2), 1)


def test_bad_input_errors_name_the_op():
    with pytest.raises(RuntimeError, match=r"gradkit.topk: selected index k=5 out of range"):
        gk.topk(gk.ones(3), 5)
    with pytest.raises(RuntimeError, match=r"gradkit.tril: .*at least 2 dimensions"):
        gk.tril(gk.ones(3))
    with pytest.raises(RuntimeError, match=r"gradkit.mm: self must be a 2-D tensor"):
        gk.mm(gk.ones(3), gk.ones(3, 2))
    with pytest.raises(RuntimeError, match=r"gradkit.outer: vec2 must be a 1-D"):
        gk.outer(gk.ones(3), gk.ones(3, 1))
    with pytest.raises(RuntimeError, match=r"gradkit.addmm: input of shape \(2, 5\)"):
        gk.addmm(gk.ones(2, 5), gk.ones(3, 2), gk.ones(2, 4))
    with pytest.raises(RuntimeError, match=r"gradkit.diag: supports 1D or 2D"):
        gk.diag(gk.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match=r"gradkit.one_hot: .*int64"):
        gk.nn.functional.one_hot(gk.tensor([1.0]))
    with pytest.raises(RuntimeError, match=r"smaller than num_classes"):
        gk.nn.functional.one_hot(gk.tensor([3]), 3)
    with pytest.raises(RuntimeError, match=r"gradkit.masked_fill_: only supports boolean"):
        gk.ones(2).masked_fill_(gk.tensor([1.0, 0.0]), 0.0)
    with pytest.raises(RuntimeError, match=r"gradkit.roll: shifts"):
        gk.roll(gk.ones(2, 2), (1, 1), 0)
    with pytest.raises(RuntimeError, match="gradkit.diagonal: diagonal dimensions cannot be"):
        gk.diagonal(gk.ones(2, 2), 0, 1, -1)


def test_no_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gk.multinomial(gk.tensor([0.0, 1.0, 0.0]), 1)
        gk.isclose(gk.tensor([np.inf]), gk.tensor([np.inf]))
