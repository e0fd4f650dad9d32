"""The engine sums a node's (or leaf's) incoming gradients in place only when
nothing but the engine can see the running sum: gradients a hook kept, the
user's seed, gradients shared between paths stay untouched."""
import numpy as np

import gradkit as gk


def _t(a, rg=True):
    return gk.tensor(np.asarray(a, np.float32), requires_grad=rg)


def test_fan_out_sums_match_reference():
    x = _t([0.5, -1.0, 2.0])
    y = x * 2
    z = (y + y) + y * 3 + x + x       # one array handed to two edges; node and leaf fan-in
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 2 * 2 + 2 * 3 + 2, np.float32))


def test_hook_kept_gradient_is_not_modified_later():
    x = _t([1.0, 2.0])
    y = x * 1.0
    w = y * 5.0                        # made before a: its backward runs after a's
    a = y + 0.0                        # add passes its gradient through unchanged
    kept = []
    a.register_hook(lambda g: kept.append(g))
    z = a * 1.0 + w                    # y: the kept gradient arrives first, then w's
    z.sum().backward()
    np.testing.assert_allclose(kept[0].numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_user_seed_is_not_modified():
    x = _t([1.0, 2.0])
    y = x * 1.0
    z = y + y                          # the seed flows back to y twice
    seed = gk.tensor(np.array([1.0, 1.0], np.float32))
    z.backward(seed)
    np.testing.assert_allclose(seed.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_retain_graph_second_backward_same_gradients():
    x = _t([0.3, -0.7])
    y = gk.tanh(x)
    z = y * y + y + gk.exp(y)
    z.sum().backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    x.grad = None
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), g1, rtol=1e-6)


def test_grad_of_views_and_slices():
    a = _t(np.ones((2, 3)))
    h = a * 1.0
    s = h[0] + h[1]                    # slice VJPs, then a fan-in on h
    gs = gk.autograd.grad((s.sum() + h.sum()), [h])[0]
    np.testing.assert_allclose(gs.numpy(), np.full((2, 3), 2.0))
