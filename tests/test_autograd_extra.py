"""Autograd beyond the op table (issue 3): derivatives of any order, gk.grad's
options, custom Functions, gradcheck's failures, anomaly mode, gk.func, no
leaks from higher-order graphs, in-place semantics, type promotion, and the
numerics of softmax and erf. Every test that touches tensors runs on every
device (cpu, the fake accelerator, cuda when usable)."""
import gc
import math
import re
import weakref

import numpy as np
import pytest

import gradkit as gk
from gradkit.autograd import (Function, gradcheck, gradgradcheck, GradcheckError,
                              detect_anomaly, AnomalyError)

from helpers import to_np, make


def _x(device, arr, rg=True):
    return make(np.asarray(arr, dtype=np.float64), device, rg)


# ------------------------------------------------------------ any order
def _nth(f, x, n, v=None):
    """d^n/dx^n of sum(f(x) * v) as a function of x (elementwise ops: the n-th
    derivative on the diagonal), with the whole chain recorded."""
    y = f(x)
    out = (y * v).sum() if v is not None else y.sum()
    for _ in range(n):
        (out,) = gk.grad(out, x, create_graph=True)
        if _ < n - 1:
            out = out.sum()
    return out


def test_third_derivatives_analytic(device):
    a = np.array([-1.3, -0.2, 0.4, 1.1])
    x = _x(device, a)
    y = np.tanh(a)
    np.testing.assert_allclose(to_np(_nth(gk.tanh, x, 3)), (6 * y ** 2 - 2) * (1 - y ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(to_np(_nth(gk.sin, x, 3)), -np.cos(a), rtol=1e-12)
    np.testing.assert_allclose(to_np(_nth(gk.exp, x, 4)), np.exp(a), rtol=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sin", "softmax", "logsumexp"])
def test_third_derivative_gradcheck(name, device, rng):
    """gradcheck of the second-derivative function checks the third derivative."""
    f = {"tanh": gk.tanh, "sin": gk.sin, "softmax": lambda t: gk.softmax(t, -1),
         "logsumexp": lambda t: gk.logsumexp(t, -1)}[name]
    x = make(rng.standard_normal((2, 3)), device, True)
    v = make(rng.standard_normal(f(x).shape), device)
    w = make(rng.standard_normal((2, 3)), device)

    def second(t):
        (g,) = gk.grad((f(t) * v).sum(), t, create_graph=True)
        (h,) = gk.grad((g * w).sum(), t, create_graph=True)
        return h

    assert gradcheck(second, (x,), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["tanh", "sin", "softmax", "logsumexp"])
def test_third_derivative_matches_torch(name, rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((2, 3))
    v = rng.standard_normal((2, 3))
    fg = {"tanh": gk.tanh, "sin": gk.sin, "softmax": lambda t: gk.softmax(t, -1),
          "logsumexp": lambda t: gk.logsumexp(t, -1, keepdim=True)}[name]
    ft = {"tanh": torch.tanh, "sin": torch.sin, "softmax": lambda t: torch.softmax(t, -1),
          "logsumexp": lambda t: torch.logsumexp(t, -1, keepdim=True)}[name]
    x = gk.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    out = fg(x) * gk.tensor(v[:, :fg(x).shape[-1]])
    outt = ft(xt) * torch.tensor(v[:, :ft(xt).shape[-1]])
    for _ in range(3):
        (g,) = gk.grad(out.sum() if out.ndim else out, x, create_graph=True)
        (gt,) = torch.autograd.grad(outt.sum() if outt.ndim else outt, xt, create_graph=True)
        out, outt = (g * g).sum(), (gt * gt).sum()
    np.testing.assert_allclose(to_np(g), gt.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_grad_allow_unused_and_grad_outputs(device):
    x = _x(device, [1.0, 2.0])
    z = _x(device, [3.0])
    y = x * 3.0
    with pytest.raises(RuntimeError, match="allow_unused"):
        gk.grad(y.sum(), [x, z], retain_graph=True)
    gx, gz = gk.grad(y.sum(), [x, z], allow_unused=True, retain_graph=True)
    assert gz is None
    np.testing.assert_allclose(to_np(gx), [3.0, 3.0])
    (gx,) = gk.grad(y, x, grad_outputs=_x(device, [1.0, -2.0], False))
    np.testing.assert_allclose(to_np(gx), [3.0, -6.0])
    assert x.grad is None  # gk.grad touches no .grad
    y = x * x
    gx, gz = gk.grad([y], [x, z], grad_outputs=[gk.ones_like(y)], allow_unused=True,
                     materialize_grads=True)
    np.testing.assert_allclose(to_np(gz), [0.0])


def test_backward_create_graph_then_second_order(device):
    x = _x(device, [0.5, -1.0])
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    np.testing.assert_allclose(to_np(g), 3 * np.array([0.5, -1.0]) ** 2)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 6 * np.array([0.5, -1.0]))


# ------------------------------------------------------------- Function
class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class MulAdd(Function):
    """(x * y + k, x - y): two inputs, a Python constant, two outputs."""
    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.k = k
        return x * y + k, x - y

    @staticmethod
    def backward(ctx, g1, g2):
        x, y = ctx.saved_tensors
        assert ctx.needs_input_grad[2] is False
        return g1 * y + g2, g1 * x - g2, None


class WrongGrad(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x   # should be 2 * g * x


class ArgmaxAndMax(Function):
    @staticmethod
    def forward(ctx, x):
        i = x.argmax()
        ctx.mark_non_differentiable(i)
        ctx.save_for_backward(x)
        ctx.i = i
        return x.max(), i

    @staticmethod
    def backward(ctx, g, gi):
        (x,) = ctx.saved_tensors
        assert gi is not None and float(gi.sum()) == 0.0   # materialized zeros
        mask = (gk.arange(x.shape[0], device=x.device) == ctx.i).to(x.dtype)
        return g * mask


def test_function_forward_backward(device):
    a = np.array([0.1, -0.5, 1.2])
    x = _x(device, a)
    y = Exp.apply(x)
    assert y.grad_fn.__class__ is gk.autograd.Node and y.grad_fn.name() == "ExpBackward"  # torch's name
    assert not gk.is_grad_enabled() or y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), np.exp(a), rtol=1e-14)
    assert gradcheck(Exp.apply, (x,))


def test_function_forward_runs_without_grad(device):
    seen = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(gk.is_grad_enabled())
            y = x * 2
            seen.append(y.requires_grad)
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2

    Probe.apply(_x(device, [1.0]))
    assert seen == [False, False]


def test_function_multi_output_and_constant(device, rng):
    x = make(rng.standard_normal(3), device, True)
    y = make(rng.standard_normal(3), device, True)
    s, d = MulAdd.apply(x, y, 2.0)
    assert s.grad_fn is d.grad_fn and s.grad_fn.nout == 2
    np.testing.assert_allclose(to_np(s), to_np(x) * to_np(y) + 2.0)
    assert gradcheck(lambda a, b: MulAdd.apply(a, b, 2.0), (x, y))
    # only one output used: the other's gradient arrives as zeros
    (gx,) = gk.grad(MulAdd.apply(x, y, 1.0)[1].sum(), x)
    np.testing.assert_allclose(to_np(gx), np.ones(3))


def test_function_double_backward(device, rng):
    """backward written with gradkit ops is differentiable under create_graph:
    the saved input is the input itself, the saved output the output."""
    x = make(rng.standard_normal(4), device, True)
    assert gradgradcheck(Exp.apply, (x,))
    assert gradgradcheck(lambda a, b: MulAdd.apply(a, b, 0.5),
                         (x, make(rng.standard_normal(4), device, True)))
    (g,) = gk.grad(Exp.apply(x).sum(), x, create_graph=True)
    (h,) = gk.grad(g.sum(), x)
    np.testing.assert_allclose(to_np(h), np.exp(to_np(x)), rtol=1e-14)


def test_wrong_function_fails_gradcheck(device):
    x = _x(device, [0.3, -1.2, 2.0])
    with pytest.raises(GradcheckError) as ei:
        gradcheck(WrongGrad.apply, (x,))
    msg = str(ei.value)
    assert "input 0" in msg and "worst element" in msg
    assert re.search(r"analytic [-0-9.e]+, numeric [-0-9.e]+", msg)
    assert gradcheck(WrongGrad.apply, (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError):
        gradcheck(WrongGrad.apply, (x,), fast_mode=False)


def test_function_non_differentiable_output(device):
    x = _x(device, [0.3, 2.0, -1.0])
    m, i = ArgmaxAndMax.apply(x)
    assert m.requires_grad and not i.requires_grad
    m.backward()
    np.testing.assert_allclose(to_np(x.grad), [0.0, 1.0, 0.0])


def test_function_hooks_retain_graph_and_versions(device):
    x = _x(device, [0.5, 1.5])
    y = Exp.apply(x)
    seen = []
    y.register_hook(lambda g: seen.append(to_np(g).copy()) or g * 2)
    y.retain_grad()
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(to_np(x.grad), 2 * np.exp([0.5, 1.5]))
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    y.sum().backward()          # retained: works once more
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.sum().backward()      # freed now
    y2 = Exp.apply(x)
    with gk.no_grad():
        y2.mul_(2)              # the saved output changes: backward must refuse
    with pytest.raises(RuntimeError, match="Exp.*inplace|inplace.*Exp"):
        y2.sum().backward()


def test_function_backward_errors(device):
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    class BadType(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return 1.0

    x = _x(device, [1.0])
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooFew.apply(x, x).sum().backward()
    with pytest.raises(TypeError, match="BadType"):
        BadType.apply(x).sum().backward()
    with pytest.raises(TypeError, match="save_for_backward"):
        class SaveJunk(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(3)
                return x
        SaveJunk.apply(x)


def test_function_without_grad_makes_no_node(device):
    y = Exp.apply(_x(device, [1.0], rg=False))
    assert y.grad_fn is None and not y.requires_grad
    with gk.no_grad():
        assert Exp.apply(_x(device, [1.0])).grad_fn is None


# ------------------------------------------------------------- gradcheck
def test_gradcheck_warns_on_float32(device):
    x = make(np.array([0.5, 1.0], np.float32), device, True)
    with pytest.warns(UserWarning, match="float32"):
        gradcheck(lambda t: t * 2, (x,), atol=1e-2, rtol=1e-2, eps=1e-3)


def test_gradcheck_full_mode_names_the_worst_element(device):
    class Off(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g * 0, g * 1.0   # a's gradient wrong, b's gradient wrong too

    a = _x(device, [1.0, 2.0, 3.0])
    b = _x(device, [4.0, 5.0, 6.0])
    with pytest.raises(GradcheckError, match=r"input 0 .*worst element: output 0 element "
                                             r"\(2,\), input 0 element \(2,\): analytic 0, "
                                             r"numeric 6"):
        gradcheck(Off.apply, (a, b), fast_mode=False)
    assert gradcheck(lambda a, b: a * b, (a, b), fast_mode=False)


def test_gradcheck_catches_nan(device):
    class Nan(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    with pytest.raises(GradcheckError, match="analytic nan"):
        gradcheck(Nan.apply, (_x(device, [1.0, 2.0]),))


def test_gradgradcheck_catches_a_wrong_second_derivative(device):
    class FirstOnly(Function):
        """A correct first derivative whose own derivative is wrong (x**3: the
        backward returns 3 g x*x computed as 3 g x * x.detach())."""
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x * x.detach() * 3

    x = _x(device, [0.5, -1.5])
    assert gradcheck(FirstOnly.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(FirstOnly.apply, (x,))


# --------------------------------------------------------------- anomaly
def test_detect_anomaly_names_op_and_site(device):
    x = _x(device, [0.0, 1.0])
    with detect_anomaly():
        y = x.sqrt(); line = __import__("inspect").currentframe().f_lineno  # noqa: E702
        with pytest.raises(AnomalyError) as ei:
            y.sum().backward()
    msg = str(ei.value)
    assert "'sqrt'" in msg and "Function 'SqrtBackward0' returned nan" in msg  # torch's phrase
    assert f"test_autograd_extra.py:{line}" in msg


def test_anomaly_site_only_recorded_while_on(device):
    x = _x(device, [1.0])
    assert (x * 2).grad_fn.site is None
    with detect_anomaly():
        assert "test_autograd_extra.py" in (x * 2).grad_fn.site
        assert "test_autograd_extra.py" in Exp.apply(x).grad_fn.site
    assert (x * 2).grad_fn.site is None
    y = (x * 0).log()   # -inf forward, created outside anomaly mode
    with detect_anomaly(), pytest.raises(AnomalyError, match="site not recorded"):
        y.sum().backward()


def test_anomaly_in_custom_function(device):
    class BadBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g / 0.0

    x = _x(device, [1.0])
    with detect_anomaly():
        y = BadBackward.apply(x)
        with pytest.raises(AnomalyError, match="BadBackward"):
            y.sum().backward()


# ----------------------------------------------------------------- gk.func
def _f2(x, y):
    return (x.sin() * y).sum(0), x.exp() + y


def test_func_against_torch(rng):
    torch = pytest.importorskip("torch")
    import torch.autograd.functional as TF
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    xs = (gk.tensor(a), gk.tensor(b))
    ts = (torch.tensor(a), torch.tensor(b))

    def tf2(x, y):
        return (x.sin() * y).sum(0), x.exp() + y

    def eq(g, t):
        if isinstance(t, tuple):
            assert isinstance(g, tuple) and len(g) == len(t)
            for gg, tt in zip(g, t):
                eq(gg, tt)
            return
        np.testing.assert_allclose(to_np(g), t.detach().numpy(), rtol=1e-10, atol=1e-12)

    v = (gk.tensor(rng.standard_normal(2)), gk.tensor(rng.standard_normal((3, 2))))
    vt = tuple(torch.tensor(to_np(t)) for t in v)
    eq(gk.func.vjp(_f2, xs, v), TF.vjp(tf2, ts, vt))
    u = (gk.tensor(rng.standard_normal((3, 2))), gk.tensor(rng.standard_normal((3, 2))))
    ut = tuple(torch.tensor(to_np(t)) for t in u)
    eq(gk.func.jvp(_f2, xs, u), TF.jvp(tf2, ts, ut))
    eq(gk.func.jacobian(_f2, xs), TF.jacobian(tf2, ts))
    eq(gk.func.jacobian(_f2, xs, strategy="forward-mode"), TF.jacobian(tf2, ts))
    eq(gk.func.jacobian(lambda x: x.tanh(), xs[0]), TF.jacobian(lambda x: x.tanh(), ts[0]))

    def sc(x, y):
        return (x.sin() * y.exp()).sum() + (x * x * y).sum()

    eq(gk.func.hessian(sc, xs), TF.hessian(sc, ts))
    eq(gk.func.hessian(lambda x: (x ** 3).sum(), xs[0]),
       TF.hessian(lambda x: (x ** 3).sum(), ts[0]))
    eq(gk.func.hvp(sc, xs, u), TF.hvp(sc, ts, ut))
    eq(gk.func.vhp(sc, xs, u), TF.vhp(sc, ts, ut))


def test_func_analytic(device, rng):
    a = rng.standard_normal(3)
    x = _x(device, a, rg=False)
    J = gk.func.jacobian(lambda t: t.sin() * 2, x)
    np.testing.assert_allclose(to_np(J), np.diag(2 * np.cos(a)), atol=1e-15)
    H = gk.func.hessian(lambda t: (t ** 3).sum(), x)
    np.testing.assert_allclose(to_np(H), np.diag(6 * a), atol=1e-14)
    out, jv = gk.func.jvp(lambda t: t * t, x, _x(device, [1.0, 0.0, 2.0], False))
    np.testing.assert_allclose(to_np(jv), 2 * a * [1.0, 0.0, 2.0])
    out, vj = gk.func.vjp(lambda t: (t * t).sum(), x)
    np.testing.assert_allclose(to_np(vj), 2 * a)
    assert not out.requires_grad and not vj.requires_grad
    out, hv = gk.func.hvp(lambda t: (t ** 3).sum(), x, _x(device, [1.0, 1.0, 1.0], False))
    np.testing.assert_allclose(to_np(hv), 6 * a)


def test_func_batch_jacobian(device, rng):
    a = rng.standard_normal((4, 3))
    x = _x(device, a, rg=False)
    w = _x(device, rng.standard_normal((3, 2)), rg=False)

    def f(t):   # row-wise: (4, 3) -> (4, 2)
        return (t @ w).tanh()

    bj = gk.func.batch_jacobian(f, x)
    assert bj.shape == (4, 2, 3)
    full = to_np(gk.func.jacobian(f, x))            # (4, 2, 4, 3)
    for b in range(4):
        np.testing.assert_allclose(to_np(bj)[b], full[b, :, b, :], rtol=1e-12)


def test_func_strict_and_create_graph(device):
    x = _x(device, [1.0, 2.0], rg=False)
    with pytest.raises(RuntimeError, match="independent of input 0"):
        gk.func.vjp(lambda t: t.sum() * 0 + 3.0 if False else gk.ones(1, device=device,
                                                                        dtype=gk.float64),
                    x, strict=True)
    _, g = gk.func.vjp(lambda t: gk.ones(1, device=device, dtype=gk.float64), x)
    np.testing.assert_allclose(to_np(g), [0.0, 0.0])
    # create_graph: the result is differentiable with respect to the input
    y = _x(device, [1.0, 2.0])
    _, g = gk.func.vjp(lambda t: (t ** 3).sum(), y, create_graph=True)
    assert g.requires_grad
    (h,) = gk.grad(g.sum(), y)
    np.testing.assert_allclose(to_np(h), [6.0, 12.0])
    with pytest.raises(RuntimeError, match="v can only be None"):
        gk.func.vjp(lambda t: t * 2, x)


# ------------------------------------------------------------- no leaks
def _make_cycle(device):
    x = make(np.ones(1000), device, True)
    y = (x.tanh() * x ** 3).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    return weakref.ref(x), weakref.ref(x.grad), weakref.ref(x.grad.grad_fn)


@pytest.mark.parametrize("gc_on", [True, False], ids=["gc", "nogc"])
def test_no_leak_from_create_graph(device, gc_on):
    was = gc.isenabled()
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        refs = _make_cycle(device)
        if gc_on:
            gc.collect()
        assert all(r() is None for r in refs), "x -> x.grad -> grad_fn -> x kept memory alive"
    finally:
        if was:
            gc.enable()


def test_weak_leaf_edges_still_work(device):
    """After create_graph, the edges into x are weak; x alive, every later
    backward still reaches it (and gk.grad with inputs= finds it)."""
    x = _x(device, [0.5, 2.0])
    y = (x ** 3).sum()
    y.backward(create_graph=True, retain_graph=True)
    g = x.grad
    x.grad = None
    (g * g).sum().backward()          # d/dx sum((3x^2)^2) = 36 x^3
    np.testing.assert_allclose(to_np(x.grad), 36 * np.array([0.5, 2.0]) ** 3)
    (gy,) = gk.grad(y, x)             # through the forward graph's (now weak) edges
    np.testing.assert_allclose(to_np(gy), 3 * np.array([0.5, 2.0]) ** 2)
    assert all(nf is None or nf[0] is not None for nf in y.grad_fn.next_functions)


def test_gk_grad_create_graph_no_leak(device):
    gc.disable()
    try:
        x = _x(device, np.ones(10))
        (g,) = gk.grad((x ** 2).sum(), x, create_graph=True)
        r = weakref.ref(x)
        del x, g
        assert r() is None
    finally:
        gc.enable()


# ------------------------------------------------------------- in place
INPLACE = [("add_", (2.0,)), ("sub_", (1.0,)), ("mul_", (3.0,)), ("div_", (2.0,)),
           ("zero_", ()), ("fill_", (1.5,)), ("copy_", None), ("clamp_", (-0.5, 0.5))]


@pytest.mark.parametrize("name,args", INPLACE, ids=[n for n, _ in INPLACE])
def test_inplace_version_and_leaf_refusal(name, args, device):
    x = _x(device, [0.2, -0.7, 1.4])
    if args is None:
        args = (_x(device, [1.0, 2.0, 3.0], False),)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(x, name)(*args)
    with gk.no_grad():            # a parameter update: allowed
        v = x._version
        assert getattr(x, name)(*args) is x
        assert x._version == v + 1
    y = _x(device, [0.2, -0.7, 1.4], False)
    v = y._version
    getattr(y, name)(*args)
    assert y._version == v + 1


def test_inplace_on_saved_tensor_raises(device):
    x = _x(device, [0.5, 1.0])
    y = x * 2
    z = y.exp()          # saves its output
    w = y * y            # saves y
    z.add_(1.0)
    with pytest.raises(RuntimeError, match="exp.*inplace|inplace.*'exp'"):
        z.sum().backward()
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="mul"):
        w.sum().backward()


def test_inplace_gradients_match_torch(device):
    torch = pytest.importorskip("torch")
    a = np.array([0.3, -1.2, 0.8, 2.0])
    b = np.array([1.5, 0.5, -2.0, 0.7])
    x, w = _x(device, a), _x(device, b)
    xt, wt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    for (X, W, cm) in ((x, w, None), (xt, wt, None)):
        y = X * 1.0
        y.mul_(W)
        y.add_(W, alpha=2.0)
        y.div_(W + 3.0)
        y.clamp_(-0.6, 0.6)
        y.sub_(X)
        (y * y).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_np(w.grad), wt.grad.numpy(), rtol=1e-12)


# -------------------------------------------------------- type promotion
PROMO = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


def test_type_promotion_matches_torch(device):
    torch = pytest.importorskip("torch")
    # the fake accelerator (array_api_strict) has no float16 and refuses
    # arithmetic on two bools
    dts = [d for d in PROMO if not (device == "fake" and d == "float16")]
    for da in dts:
        for db in dts:
            if device == "fake" and da == db == "bool":
                continue
            for zero_dim in (False, True):
                shape_b = () if zero_dim else (2,)
                a = make(np.ones(2, dtype=da), device)
                b = make(np.ones(shape_b, dtype=db), device)
                ta = torch.ones(2, dtype=getattr(torch, da))
                tb = torch.ones(shape_b, dtype=getattr(torch, db))
                got = (a * b).dtype.name
                want = str((ta * tb).dtype).replace("torch.", "")
                assert got == want, f"{da} * {db}{' (0-d)' if zero_dim else ''}: {got} != {want}"
    for dt in dts:
        t = make(np.ones(2, dtype=dt), device)
        tt = torch.ones(2, dtype=getattr(torch, dt))
        for s in (2, 2.5, True):
            if dt == "bool" and s is True:
                continue
            assert (t + s).dtype.name == str((tt + s).dtype).replace("torch.", ""), (dt, s)


def test_promotion_in_new_ops(device):
    i = make(np.array([1, 2, 3]), device)
    assert gk.cumsum(i, 0).dtype == gk.int64
    assert gk.prod(make(np.array([1, 2], np.int32), device)).dtype == gk.int64
    assert gk.erf(i).dtype == gk.float32 and gk.log1p(i).dtype == gk.float32
    assert gk.square(i).dtype == gk.int64
    assert gk.logsumexp(i, 0).dtype == gk.float32
    with pytest.raises(RuntimeError, match="softmax.*int64"):
        gk.softmax(i, 0)
    with pytest.raises(RuntimeError, match="floating"):
        gk.var(i)
    assert gk.softmax(i, 0, dtype=gk.float64).dtype == gk.float64


# ---------------------------------------------------------------- numerics
def test_softmax_exact_at_1e4(device):
    a = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4, -1e4, -1e4 + 2.0]])
    for dt in (np.float32, np.float64):
        x = make(a.astype(dt), device, True)
        s = gk.softmax(x, 1)
        ls = x.log_softmax(1)
        e = np.exp(1.0)
        np.testing.assert_allclose(to_np(s)[0], [e / (e + 1), 0.0, 0.0, 1 / (e + 1)], rtol=1e-6)
        assert np.isfinite(to_np(ls)).all() and np.isfinite(to_np(s)).all()
        np.testing.assert_allclose(to_np(ls)[0, 1], -2e4 - np.log1p(np.exp(-1.0)), rtol=1e-6)
        (ls[:, 1].sum() + s[:, 0].sum()).backward()
        assert np.isfinite(to_np(x.grad)).all()
        lse = gk.logsumexp(x, 1)
        np.testing.assert_allclose(to_np(lse), [1e4 + np.log1p(np.exp(-1.0)),
                                                -1e4 + 2.0 + np.log1p(3 * np.exp(-2.0))],
                                   rtol=1e-6)


def test_logsumexp_of_minus_inf_row(device):
    x = make(np.array([[-np.inf, -np.inf], [0.0, -np.inf]]), device)
    np.testing.assert_array_equal(to_np(gk.logsumexp(x, 1)), [-np.inf, 0.0])


def test_erf_accuracy(device):
    xs = np.concatenate([np.linspace(-6.5, 6.5, 2001), [0.0, 1e-300, -1e-8, 0.999999, 1.0,
                                                       2.5, 5.99, 6.0, 30.0, np.inf, -np.inf]])
    ref = np.array([math.erf(v) for v in xs])
    got = to_np(gk.erf(make(xs, device)))
    np.testing.assert_allclose(got, ref, rtol=5e-16, atol=0)
    assert np.isnan(to_np(gk.erf(make(np.array([np.nan]), device))))[0]
    got32 = to_np(gk.erf(make(xs.astype(np.float32), device)))
    np.testing.assert_allclose(got32, ref.astype(np.float32), rtol=2e-6, atol=1e-7)


def test_new_ops_match_torch(rng):
    """Forward and gradient against torch for ops whose torch semantics have
    corners (gelu, softplus threshold, norm at 0, prod with zeros, chunk sizes,
    var correction, repeat, gather, index_add, einsum)."""
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4))
    a[1, 2] = 0.0
    a[2, :2] = 0.0
    cases = [
        (lambda m, x: m.nn.functional.gelu(x) if m is torch else gk.gelu(x), ),
        (lambda m, x: m.nn.functional.gelu(x, approximate="tanh") if m is torch
         else gk.gelu(x, approximate="tanh"), ),
        (lambda m, x: m.nn.functional.softplus(x * 5, beta=0.5, threshold=2) if m is torch
         else gk.softplus(x * 5, beta=0.5, threshold=2), ),
        (lambda m, x: x.prod(1), ),
        (lambda m, x: x.prod(), ),
        (lambda m, x: m.norm(x * 0), ),
        (lambda m, x: m.norm(x, 3, 1), ),
        (lambda m, x: m.norm(x, float("inf")), ),
        (lambda m, x: x.var(0, correction=2), ),
        (lambda m, x: m.std(x, 1, keepdim=True), ),
        (lambda m, x: m.cat([c * (i + 1) for i, c in enumerate(x.chunk(3, 1))], 1), ),
        (lambda m, x: x.repeat(2, 1, 3), ),
        (lambda m, x: x.flip(1).cumsum(0), ),
        (lambda m, x: m.einsum("ij,kj->ik", x, x.exp()), ),
        (lambda m, x: x.sign() * x, ),
    ]
    for (f,) in cases:
        xg = gk.tensor(a, requires_grad=True)
        xt = torch.tensor(a, requires_grad=True)
        yg, yt = f(gk, xg), f(torch, xt)
        np.testing.assert_allclose(to_np(yg), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
        assert yg.dtype.name == str(yt.dtype).replace("torch.", "")
        v = rng.standard_normal(yt.shape)
        (yg * gk.tensor(v)).sum().backward()
        (yt * torch.tensor(v)).sum().backward()
        np.testing.assert_allclose(to_np(xg.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    idx = rng.integers(0, 4, size=(3, 5))
    xg, xt = gk.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    gk.gather(xg, 1, gk.tensor(idx)).pow(2).sum().backward()
    torch.gather(xt, 1, torch.tensor(idx)).pow(2).sum().backward()
    np.testing.assert_allclose(to_np(xg.grad), xt.grad.numpy())
    s = rng.standard_normal((3, 3))
    sg, st_ = gk.tensor(s, requires_grad=True), torch.tensor(s, requires_grad=True)
    xg, xt = gk.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    i = np.array([3, 0, 3])
    og = xg.index_add(1, gk.tensor(i), sg, alpha=-2.0)
    ot = xt.index_add(1, torch.tensor(i), st_, alpha=-2.0)
    np.testing.assert_allclose(to_np(og), ot.detach().numpy())
    (og * og).sum().backward()
    (ot * ot).sum().backward()
    np.testing.assert_allclose(to_np(sg.grad), st_.grad.numpy())
    np.testing.assert_allclose(to_np(xg.grad), xt.grad.numpy())
    for n, c in ((5, 3), (4, 3), (3, 2), (1, 4)):
        assert [p.shape for p in gk.ones(n).chunk(c)] == \
            [tuple(p.shape) for p in torch.ones(n).chunk(c)]


# ------------------------------------------------------- multi-output node
def test_split_is_one_node(device):
    x = _x(device, np.arange(6.0))
    a, b, c = x.split(2)
    assert a.grad_fn is b.grad_fn is c.grad_fn and a.grad_fn.nout == 3
    assert (a._oi, b._oi, c._oi) == (0, 1, 2)
    b.retain_grad()
    seen = []
    c.register_hook(lambda g: seen.append(1) or g * 10)
    (a * 1 + b * 2 + c * 3).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [1, 1, 2, 2, 30, 30])
    np.testing.assert_allclose(to_np(b.grad), [2, 2])
    assert seen == [1]
    assert b._version == x._version  # views share the version counter


# ------------------------------------------------------------------ errors
def test_bad_input_errors_name_the_op(device):
    x = _x(device, np.ones((2, 3)))
    with pytest.raises(gk.GradkitError, match=r"einsum\('ij,jk->ik'\).*sizes disagree"):
        gk.einsum("ij,jk->ik", x, x)
    with pytest.raises(gk.GradkitError, match="einsum.*2 operand subscripts for 1"):
        gk.einsum("ij,jk", x)
    with pytest.raises(gk.GradkitError, match="einsum.*output subscript"):
        gk.einsum("ij->k", x)
    with pytest.raises(gk.GradkitError, match="split.*sum exactly to 3"):
        x.split([1, 1], 1)
    with pytest.raises(gk.GradkitError, match="repeat.*smaller"):
        x.repeat(2)
    with pytest.raises(IndexError, match="flip.*out of range"):
        x.flip(2)
    with pytest.raises(gk.GradkitError, match="gather.*int"):
        gk.gather(x, 0, x)
    with pytest.raises(gk.GradkitError, match="index_add.*source shape"):
        gk.index_add(x, 0, make(np.array([0]), device), _x(device, np.ones((2, 3))))
    with pytest.raises(ValueError, match="gelu.*approximate"):
        gk.gelu(x, approximate="fast")
    with pytest.raises(NotImplementedError, match="nuclear"):
        gk.norm(x, "nuc")


def test_function_setup_context_style(device):
    class Cube(Function):
        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    x = _x(device, [0.5, -2.0])
    assert gradcheck(Cube.apply, (x,)) and gradgradcheck(Cube.apply, (x,))
