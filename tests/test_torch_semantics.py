"""Autograd semantics and printing of issue 12, as torch does them: each scenario
runs on gradkit and (when installed) on torch, and both must agree on what raises
and on the values."""
import copy
import pickle

import numpy as np
import pytest

import gradkit as gk

from helpers import to_np, make


def _run(scenario, lib):
    """Run ``scenario(lib)``; returns ('ok', values) or ('raises', message)."""
    try:
        out = scenario(lib)
    except RuntimeError as e:
        return "raises", str(e)
    return "ok", [np.asarray(v.detach().cpu().numpy() if hasattr(v, "cpu") else v) for v in out]


def _leaf(L, v):
    return L.tensor(np.array(v), requires_grad=True)


def s_add_twice(L):
    b = _leaf(L, [1.0, 2.0])
    c = b + 1
    g = L.tensor(np.array([1.0, 3.0]))
    c.backward(g)
    c.backward(g)
    return [b.grad]


def s_mul_twice(L):
    u, v = _leaf(L, [1.0, 2.0]), _leaf(L, [3.0, 4.0])
    y = (u * v).sum()
    y.backward()
    y.backward()
    return [u.grad]


def s_scalar_mul_twice(L):
    u = _leaf(L, [1.0, 2.0])
    y = (u * 2.0).sum()
    y.backward()
    y.backward()
    return [u.grad]


def s_exp_twice(L):
    u = _leaf(L, [1.0, 2.0])
    y = u.exp().sum()
    y.backward()
    y.backward()
    return [u.grad]


def s_grad_part_then_rest(L):
    x = _leaf(L, [0.5, 1.5])
    a = x.exp()
    y = (a + 1).sum()
    (ga,) = L.autograd.grad(y, a)          # runs only sum and add: exp not touched
    (gx,) = L.autograd.grad(y, x)          # sum/add saved nothing; exp runs now
    return [ga, gx]


def s_grad_shared_node_twice(L):
    x = _leaf(L, [0.5, 1.5])
    a = x.exp()
    y1, y2 = a.sum(), (a * 3).sum()
    L.autograd.grad(y1, x)                 # frees exp's saved result
    return list(L.autograd.grad(y2, x))    # needs it again


def s_grad_disjoint_parts(L):
    x = _leaf(L, [0.5, 1.5])
    a = x.sin()
    b = x.cos()
    y = (a * b).sum()
    g1 = L.autograd.grad(y, [a], retain_graph=False)
    return list(g1) + list(L.autograd.grad(b.sum(), x))


def s_grad_through_consumed(L):
    x = _leaf(L, [0.5, 1.5])
    a = x.sin()
    y = a.sin().sum()
    L.autograd.grad(y, a)                  # the outer sin saved a, now freed
    return list(L.autograd.grad(y, x))


def s_retain_then_free(L):
    x = _leaf(L, [0.5, 1.5])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return [x.grad]


def s_view_before_requires_grad(L):
    a = L.tensor(np.zeros(3))
    b = a[:]
    a.requires_grad = True
    b.add_(5)
    return [a]


def s_view_before_requires_grad_no_grad(L):
    a = L.tensor(np.zeros(3))
    b = a[1:]
    a.requires_grad = True
    with L.no_grad():
        b.add_(5)
        b.mul_(2)
    return [a]


def s_view_before_setitem(L):
    a = L.tensor(np.zeros(3))
    b = a[:2]
    a.requires_grad_()
    b[0] = 1.0
    return [a]


SCENARIOS = [s_add_twice, s_mul_twice, s_scalar_mul_twice, s_exp_twice, s_grad_part_then_rest,
             s_grad_shared_node_twice, s_grad_disjoint_parts, s_grad_through_consumed,
             s_retain_then_free, s_view_before_requires_grad,
             s_view_before_requires_grad_no_grad, s_view_before_setitem]
EXPECTED = {"s_add_twice": "ok", "s_mul_twice": "raises", "s_scalar_mul_twice": "raises",
            "s_exp_twice": "raises", "s_grad_part_then_rest": "ok",
            "s_grad_shared_node_twice": "raises", "s_grad_disjoint_parts": "ok",
            "s_grad_through_consumed": "raises", "s_retain_then_free": "ok",
            "s_view_before_requires_grad": "raises",
            "s_view_before_requires_grad_no_grad": "ok", "s_view_before_setitem": "raises"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_scenario_as_expected(scenario):
    kind, val = _run(scenario, gk)
    assert kind == EXPECTED[scenario.__name__], val
    if kind == "raises" and "view" not in scenario.__name__:
        assert "Specify retain_graph=True" in val and "gradkit" in val


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_scenario_matches_torch(scenario):
    torch = pytest.importorskip("torch")
    gkind, gval = _run(scenario, gk)
    tkind, tval = _run(scenario, torch)
    assert gkind == tkind, (gval, tval)
    if gkind == "ok":
        for a, b in zip(gval, tval):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    elif "leaf" in tval:
        assert "a view of a leaf Variable that requires grad is being used in an in-place" in gval


def test_founding_example_message():
    u, v = gk.tensor([1.0, 2.0], requires_grad=True), gk.tensor([3.0, 4.0], requires_grad=True)
    y = (u * v).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True") as e:
        y.backward()
    assert "Trying to backward through the graph a second time" in str(e.value)
    assert "MulBackward0" in str(e.value)


# ----------------------------------------------------------- grad mode
@pytest.mark.parametrize("deco,inner", [(gk.no_grad, False), (gk.enable_grad, True)])
def test_grad_mode_decorator_on_generator(deco, inner):
    seen = []

    @deco()
    def gen(n):
        for i in range(n):
            seen.append(gk.is_grad_enabled())
            got = yield i
            seen.append((got, gk.is_grad_enabled()))
        return "done"

    with gk.set_grad_enabled(not inner):
        g = gen(2)
        assert next(g) == 0
        assert gk.is_grad_enabled() is (not inner)     # the caller's mode between steps
        assert g.send("a") == 1
        with pytest.raises(StopIteration) as stop:
            g.send("b")
        assert stop.value.value == "done"
    assert seen == [inner, ("a", inner), inner, ("b", inner)]


def test_grad_mode_decorator_generator_throw_and_close():
    log = []

    @gk.no_grad()
    def gen():
        try:
            yield 1
        except ValueError:
            log.append(("caught", gk.is_grad_enabled()))
            yield 2
        finally:
            log.append(("closed", gk.is_grad_enabled()))

    g = gen()
    next(g)
    assert g.throw(ValueError()) == 2
    g.close()
    assert log == [("caught", False), ("closed", False)]
    x = gk.ones(2, requires_grad=True)

    @gk.set_grad_enabled(False)
    def gen2():
        yield x * 2
    assert not next(gen2()).requires_grad


def test_no_grad_generator_matches_torch():
    torch = pytest.importorskip("torch")

    def flags(L):
        @L.no_grad()
        def gen():
            yield L.is_grad_enabled()
            yield L.is_grad_enabled()
        return list(gen())
    assert flags(gk) == flags(torch)


# ------------------------------------------------------ pickle / deepcopy
def test_pickle_roundtrip(device):
    cases = [(np.array([[1.5, -2.0]]), True), (np.arange(4), False),
             (np.array([True, False]), False)]
    if device != "fake":   # the fake accelerator has no float16
        cases.append((np.array(3.0, dtype=np.float16), False))
    for arr, rg in cases:
        t = make(arr, device, requires_grad=rg)
        u = pickle.loads(pickle.dumps(t))
        assert u.dtype == t.dtype and u.device == t.device and u.requires_grad == rg
        assert u.is_leaf and u.shape == t.shape
        np.testing.assert_array_equal(to_np(u), arr)
        assert u.array is not t.array


def test_pickle_nonleaf_and_grad_as_torch():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    x.grad = gk.ones(2)
    u = pickle.loads(pickle.dumps(x * 2))
    assert u.is_leaf and u.requires_grad and u.tolist() == [2.0, 4.0]
    assert pickle.loads(pickle.dumps(x)).grad is None     # torch does not pickle .grad


def test_deepcopy_as_torch(device):
    x = make(np.array([1.0, 2.0]), device, requires_grad=True)
    x.grad = gk.ones(2, dtype=x.dtype, device=device)   # torch refuses another dtype
    c = copy.deepcopy(x)
    assert c is not x and c.requires_grad and c.is_leaf and c.device == x.device
    np.testing.assert_array_equal(to_np(c.grad), [1.0, 1.0])
    with gk.no_grad():
        c.add_(1)
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)
    pair = copy.deepcopy([x, x])
    assert pair[0] is pair[1]


def test_module_deepcopy_and_pickle():
    gk.manual_seed(0)
    m = gk.nn.Sequential(gk.nn.Linear(3, 4), gk.nn.ReLU(), gk.nn.Linear(4, 2))
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        ps, qs = list(m.parameters()), list(clone.parameters())
        assert len(ps) == len(qs) == 4
        for p, q in zip(ps, qs):
            assert isinstance(q, gk.nn.Parameter) and q.requires_grad and q is not p
            np.testing.assert_array_equal(to_np(p), to_np(q))
        x = gk.randn(5, 3)
        np.testing.assert_allclose(to_np(clone(x)), to_np(m(x)))
        with gk.no_grad():
            qs[0].zero_()
        assert float(ps[0].abs().sum()) > 0


def test_unpickle_cuda_without_gpu_is_clear():
    if gk.cuda.is_available():
        pytest.skip("a GPU is usable here")
    from gradkit.tensor_pickle import _rebuild
    with pytest.raises(RuntimeError, match="pickled on cuda:0, but CUDA is not usable here"):
        _rebuild(np.zeros(2), "float32", "cuda:0", False)


@pytest.mark.cuda
def test_pickle_cuda_roundtrip():
    if not gk.cuda.is_available():
        pytest.skip("CUDA is not usable here")
    t = gk.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    u = pickle.loads(pickle.dumps(t))
    assert str(u.device) == str(t.device) and u.requires_grad and u.tolist() == [1.0, 2.0]


# --------------------------------------------------------------- printing
def test_size_type():
    t = gk.zeros(3, 28, 28)
    assert isinstance(t.shape, gk.Size) and isinstance(t.size(), gk.Size)
    assert repr(t.shape) == "gradkit.Size([3, 28, 28])" and str(t.size()) == repr(t.shape)
    assert t.shape.numel() == 3 * 28 * 28 and t.shape == (3, 28, 28)
    assert isinstance(t.shape[1:], gk.Size) and t.shape[0] == 3
    assert isinstance(t.shape + (2,), gk.Size) and t.size(1) == 28
    assert pickle.loads(pickle.dumps(t.shape)) == t.shape


def test_format_one_element():
    assert f"{gk.tensor(3.14159):.4f}" == "3.1416"
    assert f"{gk.tensor([2.5]):.1f}" == "2.5"
    assert f"{gk.tensor(3.0)}" == "3.0"
    assert f"{gk.tensor([1.0, 2.0])}" == "tensor([1., 2.])"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{gk.tensor([1.0, 2.0]):.2f}"


REPRS = [
    np.array(3.14159), np.array([1.0, 2.0]), np.array([1e-5, 1.0]), np.array([1e9, 1.0]),
    np.array([[1.0, 2.0], [3.0, 400000.0]]), np.array([np.nan, 1.0, np.inf, -np.inf]),
    np.arange(2000.0).reshape(40, 50) / 7, np.arange(1001.0), np.arange(12).reshape(3, 4),
    np.array([True, False]), np.zeros((0, 3)), np.array([1, 2], dtype=np.int32),
    np.array([1.5, 2.5], dtype=np.float16), np.arange(5000).reshape(50, 100),
    np.random.default_rng(1).standard_normal((2, 30)) * 1000, np.arange(30.0),
]


@pytest.mark.parametrize("k", range(len(REPRS)))
def test_repr_matches_torch(k):
    torch = pytest.importorskip("torch")
    a = REPRS[k]
    ours = repr(gk.tensor(a, dtype=str(a.dtype))).replace("gradkit.", "torch.")
    assert ours == repr(torch.from_numpy(a.copy()))


def test_repr_grad_fn_and_names():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    y = x * 2
    assert repr(y) == "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert y.grad_fn.name() == "MulBackward0"
    (n0, i0), (n1, i1) = y.grad_fn.next_functions
    assert type(n0).__name__ == "AccumulateGrad" and n0.variable is x and n1 is None
    z = (y + 1).sum()
    assert z.grad_fn.name() == "SumBackward0"
    assert z.grad_fn.next_functions[0][0].name() == "AddBackward0"
    assert z.grad_fn.next_functions[0][0].next_functions[0][0] is y.grad_fn
    assert repr(gk.ones(2, device="fake")).endswith("device='fake')") or "fake" in repr(
        gk.ones(2, device="fake"))


def test_parameter_repr_as_torch():
    torch = pytest.importorskip("torch")
    p = gk.nn.Parameter(gk.ones(2))
    assert repr(p) == repr(torch.nn.Parameter(torch.ones(2)))


def test_grad_fn_names_match_torch():
    torch = pytest.importorskip("torch")
    cases = [lambda L, x: x.sum(), lambda L, x: x.sum(0), lambda L, x: x @ x,
             lambda L, x: x.exp(), lambda L, x: x[0], lambda L, x: x[:1], lambda L, x: x ** 2,
             lambda L, x: x ** x, lambda L, x: x.reshape(2, 1), lambda L, x: x.double(),
             lambda L, x: x / 2, lambda L, x: x - x, lambda L, x: x + 1, lambda L, x: x * 2,
             lambda L, x: x.relu(), lambda L, x: x.expand(2, 2),
             lambda L, x: x.max(), lambda L, x: L.cat([x, x]), lambda L, x: x.tanh(),
             lambda L, x: x.sigmoid(), lambda L, x: x.log(), lambda L, x: x.clone(),
             lambda L, x: x.cumsum(0), lambda L, x: x.cumprod(0), lambda L, x: x.prod()]
    for f in cases:
        a = f(gk, gk.tensor([1.0, 2.0], requires_grad=True)).grad_fn.name()
        b = f(torch, torch.tensor([1.0, 2.0], requires_grad=True)).grad_fn.name()
        assert a == b


def test_error_phrases_as_torch():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    y = gk.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Set allow_unused=True") as e:
        gk.grad((x * 2).sum(), [x, y])
    assert "gradkit.grad" in str(e.value)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of "
                                           r"gradkit.Size\(\[3\]\) and output\[0\] has a shape of "
                                           r"gradkit.Size\(\[2\]\)"):
        (x * 2).backward(gk.ones(3))
