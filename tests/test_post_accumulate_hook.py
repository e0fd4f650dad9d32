"""Tensor.register_post_accumulate_grad_hook: called once per backward with the
leaf, after its gradient is complete in .grad, as early as the graph allows."""
import numpy as np
import pytest

import gradkit as gk


def test_hook_sees_the_accumulated_gradient():
    w = gk.tensor([1.0, 2.0, 3.0], dtype=gk.float64, requires_grad=True)
    seen = []
    h = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    (w * w).sum().backward()                       # two edges from one node into w
    np.testing.assert_allclose(seen[-1], [2.0, 4.0, 6.0])
    (w * 3).sum().backward()                       # accumulates: the hook sees the sum
    np.testing.assert_allclose(seen[-1], [5.0, 7.0, 9.0])
    assert len(seen) == 2
    h.remove()
    (w * 3).sum().backward()
    assert len(seen) == 2


def test_hook_fires_before_the_rest_of_backward():
    """Layer 2's weight is complete before layer 1's VJP runs: its hook fires
    while backward still has work to do (what lets DDP overlap communication)."""
    gk.manual_seed(0)
    x = gk.randn(4, 3, dtype=gk.float64)
    w1 = gk.randn(3, 5, dtype=gk.float64, requires_grad=True)
    w2 = gk.randn(5, 2, dtype=gk.float64, requires_grad=True)
    order = []
    w1.register_post_accumulate_grad_hook(lambda p: order.append("w1"))
    w2.register_post_accumulate_grad_hook(lambda p: order.append("w2"))
    w1.register_hook(lambda g: order.append("w1 grad hook"))
    h = (x @ w1).tanh()
    h.register_hook(lambda g: order.append("h"))
    (h @ w2).sum().backward()
    assert order == ["w2", "h", "w1 grad hook", "w1"]
    # gradients equal those of a backward without hooks
    w1c, w2c = w1.detach().requires_grad_(), w2.detach().requires_grad_()
    ((x @ w1c).tanh() @ w2c).sum().backward()
    np.testing.assert_allclose(w1.grad.numpy(), w1c.grad.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(w2.grad.numpy(), w2c.grad.numpy(), rtol=0, atol=0)


def test_hook_with_a_leaf_used_by_many_nodes():
    w = gk.tensor([0.5, -1.0], dtype=gk.float64, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.numpy().copy()))
    y = (w.exp() + w * 2 + w.sin()).sum()
    y.backward()
    assert len(calls) == 1
    ref = np.exp([0.5, -1.0]) + 2 + np.cos([0.5, -1.0])
    np.testing.assert_allclose(calls[0], ref, rtol=1e-12)


def test_not_called_by_grad_and_called_with_create_graph():
    w = gk.tensor([2.0], dtype=gk.float64, requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(1))
    gk.grad((w * w).sum(), w)
    assert calls == []
    (w * w * w).sum().backward(create_graph=True)
    assert calls == [1] and abs(w.grad.item() - 12.0) < 1e-12


def test_errors():
    a = gk.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (a * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gk.tensor([1.0]).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(TypeError, match="callable"):
        a.register_post_accumulate_grad_hook(3)
