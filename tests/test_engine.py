"""The tape and the engine: the founding scenarios, one-shot graphs, ordering,
hooks, grad mode, version counters, higher order. Every test runs on every device."""
import threading

import numpy as np
import pytest

import gradkit as gk

from helpers import to_np, make


def leaves(device, *vals):
    return [gk.tensor(v, device=device, requires_grad=True, dtype=gk.float64) for v in vals]


def test_founding_example(device):
    x1, x2, x3, x4 = leaves(device, 2.0, 3.0, 4.0, 5.0)
    u = x1 * x2
    v = x3 * x4
    y = u * v
    y.backward()
    assert x1.grad.item() == 3 * 4 * 5
    assert x2.grad.item() == 2 * 4 * 5
    assert x3.grad.item() == 2 * 3 * 5
    assert x4.grad.item() == 2 * 3 * 4
    # non-leaves keep no .grad without retain_grad
    assert u.grad is None and v.grad is None
    for t in (x1, x2, x3, x4):
        assert t.grad.device == device and t.grad.dtype == gk.float64


def test_founding_example_retain_grad(device):
    x1, x2, x3, x4 = leaves(device, 2.0, 3.0, 4.0, 5.0)
    u = x1 * x2
    v = x3 * x4
    u.retain_grad()
    v.retain_grad()
    assert u.retains_grad
    (u * v).backward()
    assert u.grad.item() == 20.0  # dy/du = v
    assert v.grad.item() == 6.0   # dy/dv = u


def test_graph_is_freed_and_second_backward_raises(device):
    x1, x2, x3, x4 = leaves(device, 2.0, 3.0, 4.0, 5.0)
    y = (x1 * x2) * (x3 * x4)
    node = y.grad_fn
    assert node.saved != ()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_accumulates(device):
    x1, x2, x3, x4 = leaves(device, 2.0, 3.0, 4.0, 5.0)
    y = (x1 * x2) * (x3 * x4)
    y.backward(retain_graph=True)
    y.backward()
    assert x1.grad.item() == 2 * 60.0
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_sum_of_square(device, rng):
    a = rng.standard_normal(5)
    x = make(a, device, True)
    y = x * x
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * a)


def test_explicit_gradient_for_nonscalar(device, rng):
    a = rng.standard_normal(3)
    x = make(a, device, True)
    y = x * 3.0
    y.backward(gk.tensor([1.0, 2.0, 3.0], device=device, dtype=gk.float64))
    np.testing.assert_allclose(to_np(x.grad), [3.0, 6.0, 9.0])


def test_leaf_grads_accumulate_in_place(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 2).sum().backward()
    g = x.grad
    (x * 3).sum().backward()
    assert x.grad is g  # same tensor, accumulated in place
    np.testing.assert_allclose(to_np(g), [5.0, 5.0])


def test_diamond_each_node_runs_once(device):
    x = gk.tensor(3.0, device=device, requires_grad=True, dtype=gk.float64)
    a = x * 2
    calls = []
    a.register_hook(lambda g: calls.append(g.item()))
    b = a * a
    c = a.exp()
    y = b + c
    y.backward()
    assert len(calls) == 1  # a's gradient arrives summed, once
    expected = (2 * 6.0 + np.exp(6.0)) * 2
    np.testing.assert_allclose(x.grad.item(), expected)


def test_chain_shortcut_meets_later_gradients(device):
    """The engine runs a chain's next node without the heap when that node is the
    only pending one; a second edge into any node must still sum there: both edges
    of h * h into one node, and a node reached first through a chain and later
    through a longer branch."""
    x = gk.tensor([0.5, -1.5], device=device, requires_grad=True, dtype=gk.float64)
    h = x.tanh()            # one node, reached by both edges of h * h
    y = (h * h).exp()
    a = y * 3.0             # a -> b is a chain; a is also reached via c, d
    b = a.sin()
    c = a * a
    d = c.cos()
    out = (b + d).sum()
    calls = []
    a.register_hook(lambda g: calls.append(1))
    out.backward()
    assert len(calls) == 1   # a ran once, with both gradients summed
    xn = np.array([0.5, -1.5])
    hn = np.tanh(xn)
    yn = np.exp(hn * hn)
    an = 3 * yn
    ga = np.cos(an) - np.sin(an * an) * 2 * an
    gx = ga * 3 * yn * 2 * hn * (1 - hn * hn)
    np.testing.assert_allclose(to_np(x.grad), gx, rtol=1e-12)


def test_long_chain_no_recursion(device):
    n = 100_000 if device == "cpu" else 5_000
    x = gk.tensor(1.0, device=device, requires_grad=True, dtype=gk.float64)
    y = x
    for _ in range(n):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_broadcast_gradient_summed_to_input_shape(device, rng):
    a = make(rng.standard_normal((3, 1)), device, True)
    b = make(rng.standard_normal((4,)), device, True)
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_allclose(to_np(a.grad), np.broadcast_to(to_np(b).sum(), (3, 1)))


def test_hooks_and_handle_remove(device):
    x = gk.tensor(2.0, device=device, requires_grad=True)
    h = x.register_hook(lambda g: g * 10)
    (x * 3).backward()
    assert x.grad.item() == 30.0
    h.remove()
    x.grad = None
    (x * 3).backward()
    assert x.grad.item() == 3.0
    y = x * 1.0
    seen = []
    y.register_hook(lambda g: seen.append(g.item()))
    (y * 5).backward()
    assert seen == [5.0]


def test_hook_on_intermediate_changes_gradient(device):
    x = gk.tensor(2.0, device=device, requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: g * 0)
    (y * y).backward()
    assert x.grad.item() == 0.0


def test_detach_and_requires_grad_(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    z = gk.tensor([1.0], device=device)
    assert z.requires_grad_() is z and z.requires_grad
    y = x * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_no_grad_and_decorators(device):
    x = gk.tensor(1.0, device=device, requires_grad=True)
    with gk.no_grad():
        assert not gk.is_grad_enabled()
        y = x * 2
        with gk.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @gk.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with gk.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gk.is_grad_enabled()


def test_grad_mode_is_per_thread(device):
    x = gk.tensor(1.0, device=device, requires_grad=True)
    results = {}
    ready = threading.Event()
    done = threading.Event()

    def other():
        ready.wait()
        results["other"] = (x * 2).requires_grad
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with gk.no_grad():
        ready.set()
        done.wait()
        results["main"] = (x * 2).requires_grad
    t.join()
    assert results == {"other": True, "main": False}


def test_version_counter_inplace_on_saved_raises(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    a = x * 1.0
    y = a * a          # saves a
    a.mul_(2)          # bumps a's version
    assert a._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*mul"):
        y.sum().backward()


def test_version_counter_saved_output(device):
    x = gk.tensor([0.5, 0.1], device=device, requires_grad=True)
    y = x.tanh()       # saves its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="tanh"):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad_refused(device):
    x = gk.tensor([1.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1)
    with gk.no_grad():
        x.add_(1)  # fine: e.g. an optimizer step
    assert x.tolist() == [2.0]


def test_setitem_in_place_with_grad(device):
    x = gk.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True, dtype=gk.float64)
    v = gk.tensor(5.0, device=device, requires_grad=True, dtype=gk.float64)
    y = x * 2
    y[1] = v * 3
    assert y.tolist() == [2.0, 15.0, 6.0]
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 2.0]
    assert v.grad.item() == 3.0


def test_inplace_rebases_history(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True, dtype=gk.float64)
    y = x * 2
    y.mul_(3)
    y.add_(1)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]


def test_create_graph_second_derivative(device):
    x = gk.tensor(0.7, device=device, requires_grad=True, dtype=gk.float64)
    y = (x * x * x).tanh()
    (g,) = gk.grad(y, x, create_graph=True)
    (gg,) = gk.grad(g, x)
    t = np.tanh(0.7 ** 3)
    d1 = (1 - t * t) * 3 * 0.49
    d2 = (1 - t * t) * 6 * 0.7 + (-2 * t) * (1 - t * t) * (3 * 0.49) ** 2
    np.testing.assert_allclose(g.item(), d1)
    np.testing.assert_allclose(gg.item(), d2)


def test_backward_create_graph_then_grad_of_grad(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True, dtype=gk.float64)
    (x ** 3).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    x2 = gk.grad(gx.sum(), x)[0]
    np.testing.assert_allclose(to_np(x2), 6 * np.array([1.0, 2.0]))


def test_grad_does_not_touch_dot_grad_and_allow_unused(device):
    x, z = leaves(device, 1.0, 2.0)
    y = x * 3
    (g, none) = gk.grad(y, [x, z], allow_unused=True)
    assert g.item() == 3.0 and none is None
    assert x.grad is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        gk.grad(x * 3, [x, z])


def test_grad_with_respect_to_intermediate(device):
    x = gk.tensor(2.0, device=device, requires_grad=True)
    u = x * 3
    y = u * u
    (gu,) = gk.grad(y, u)
    assert gu.item() == 12.0


def test_backward_inputs_restricts_accumulation(device):
    a, b = leaves(device, 2.0, 3.0)
    (a * b).backward(inputs=[a])
    assert a.grad.item() == 3.0 and b.grad is None


def test_backward_on_tensor_without_grad_raises(device):
    x = gk.tensor([1.0], device=device)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()


def test_gradient_wrong_shape_or_device(device):
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(gk.tensor([1.0, 2.0, 3.0], device=device), retain_graph=True)
    other = "cpu" if device != "cpu" else "fake"
    with pytest.raises(RuntimeError, match="device|on"):
        y.backward(gk.tensor([1.0, 1.0], device=other))


def test_int_tensor_cannot_require_grad(device):
    with pytest.raises(RuntimeError, match="floating point"):
        gk.tensor([1, 2], device=device, requires_grad=True)
    t = gk.tensor([1, 2], device=device)
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad = True


def test_saved_residuals_freed_during_backward(device):
    x = gk.tensor([0.3, 0.2], device=device, requires_grad=True)
    a = x.tanh()
    b = a.exp()
    nodes = [a.grad_fn, b.grad_fn]
    b.sum().backward()
    from gradkit.graph import FREED
    assert all(n.saved is FREED for n in nodes)


def test_leaf_grads_never_alias(device):
    a = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = gk.tensor([3.0, 4.0], device=device, requires_grad=True)
    (a + b).sum().backward()       # the add hands the same gradient to both
    (a * 2).sum().backward()       # accumulates into a.grad in place
    assert a.grad.tolist() == [3.0, 3.0]
    assert b.grad.tolist() == [1.0, 1.0]
    g = gk.tensor([1.0, 1.0], device=device)
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    x.backward(g)                  # the user's gradient lands in x.grad: a copy
    (x * 1.0).sum().backward()
    assert g.tolist() == [1.0, 1.0] and x.grad.tolist() == [2.0, 2.0]


def test_data_is_a_detached_tensor_sharing_memory():
    # torch: p.data is a Tensor on the same memory, outside the graph
    p = gk.tensor([1.0, 2.0], requires_grad=True)
    d = p.data
    assert isinstance(d, gk.Tensor) and not d.requires_grad and d.is_leaf
    d.add_(1.0)
    assert p.tolist() == [2.0, 3.0]
    p.data = gk.tensor([5.0, 6.0])
    assert p.tolist() == [5.0, 6.0] and p.requires_grad
    with pytest.raises(TypeError, match="must be assigned a Tensor"):
        p.data = [1.0, 2.0]
    # as torch: a tensor that requires grad stays floating (the unary fast path relies on it)
    with pytest.raises(RuntimeError, match="must be floating point"):
        p.data = gk.tensor([1, 2])
    assert p.dtype == gk.float32 and gk.tanh(p).dtype == gk.float32


@pytest.mark.parametrize("which", [0, 1])
def test_version_check_covers_every_saved_value(device, which):
    """mul saves both inputs (one flat version tuple of two pairs): an in-place
    change to either one is refused, naming the op and both versions."""
    x = gk.tensor([1.0, 2.0], device=device, requires_grad=True)
    a, b = x * 1.0, x * 2.0
    y = a * b
    (a, b)[which].add_(1.0)
    with pytest.raises(gk.GradkitError, match=r"'mul' .* is at version 1; expected version 0"):
        y.sum().backward()
