"""Buffer donation in the backward (gradkit.ops.core.donating): on the CPU
backend, for large arrays that nothing but the engine holds, a VJP writes into
the incoming gradient or a dead saved value instead of a fresh buffer. It must
never change a value anyone can see, and must give the same bits as the
ordinary VJPs."""
import numpy as np
import pytest

import gradkit as gk
from gradkit.ops import core
from gradkit.ops import elementwise as EW

B = gk.tensor([1.0])._B          # the CPU backend
MIN = B.donate_min
N = MIN * 2                      # above the size threshold


@pytest.fixture
def spy(monkeypatch):
    """Records (prim, g_free, saved_free) for every donating VJP the engine calls."""
    calls = []
    for p in core.PRIMS.values():
        if p.dvjp is None:
            continue
        fn, wg, ws = p.dvjp

        def wrap(B, n, g, gf, sf, *a, _fn=fn, _name=p.name, **k):
            calls.append((_name, gf, sf))
            return _fn(B, n, g, gf, sf, *a, **k)
        monkeypatch.setattr(p, "dvjp", (wrap, wg, ws))
    return calls


def _arrays(dtype=np.float32, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n).astype(dtype), rng.uniform(0.5, 1.5, n).astype(dtype))


def _chain(x, w):
    h = x
    for i in range(3):
        h = gk.tanh(h * w + 0.1)
        h = h / w
        h = -h
        h = gk.relu(h)
        h = h * 0.5
    return gk.exp(h * 0.1)


def _grads(x0, w0, donate, build=_chain, wgrad=False):
    if not donate:
        type(B).donate_min = float("inf")
    try:
        x = gk.tensor(x0, requires_grad=True)
        w = gk.tensor(w0, requires_grad=wgrad)
        build(x, w).sum().backward()
        return x.grad.numpy().copy(), (w.grad.numpy().copy() if wgrad else None)
    finally:
        type(B).donate_min = MIN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_and_used(spy, dtype):
    x0, w0 = _arrays(dtype)
    off, _ = _grads(x0, w0, False)
    assert not spy
    on, _ = _grads(x0, w0, True)
    np.testing.assert_array_equal(on, off)
    assert on.dtype == dtype
    used = {(name, gf, sf) for name, gf, sf in spy}
    # the chain's gradients and its dead tanh outputs were given up
    assert ("mul", True, False) in used
    assert ("div", True, False) in used
    assert ("neg", True, False) in used
    assert ("tanh", False, True) in used
    assert ("relu", True, False) in used
    # every registered donating VJP ran here with something to overwrite
    donated = {name for name, gf, sf in spy if gf or sf}
    assert donated == {p.name for p in core.PRIMS.values() if p.dvjp is not None}


def test_both_inputs_need_grad_bit_identical(spy):
    x0, w0 = _arrays()
    off = _grads(x0, w0, False, wgrad=True)
    on = _grads(x0, w0, True, wgrad=True)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)


def test_broadcast_and_other_dtype_fall_back():
    x0, _ = _arrays()
    rows = x0.reshape(-1, 64)

    def build(x, w):
        h = x.reshape(-1, 64) * gk.tensor(np.linspace(0.5, 1.5, 64, dtype=np.float32))
        h = h * gk.tensor(np.float64(2.0))          # a 0-d float64 tensor
        h = h / gk.tensor(np.arange(1, 65, dtype=np.float64))   # promotes to float64
        return gk.tanh(h)

    off, _ = _grads(x0, x0, False, build)
    on, _ = _grads(x0, x0, True, build)
    np.testing.assert_array_equal(on, off)
    assert rows.shape[1] == 64 and on.dtype == np.float32


def test_small_arrays_not_donated(spy):
    x0, w0 = _arrays(n=64)
    _grads(x0, w0, True)
    assert spy == []


def test_held_intermediate_untouched(spy):
    x0, w0 = _arrays()
    x = gk.tensor(x0, requires_grad=True)
    w = gk.tensor(w0)
    t = gk.tanh(x * w)              # the user keeps the tanh output
    before = t.detach().numpy().copy()
    (t * 2.0).sum().backward()
    np.testing.assert_array_equal(t.detach().numpy(), before)
    assert ("tanh", False, False) in spy   # its saved value was not free
    np.testing.assert_allclose(x.grad.numpy(), 2 * (1 - before.astype(np.float64) ** 2) * w0,
                               rtol=1e-5, atol=1e-6)


def test_held_data_and_views_untouched():
    x0, w0 = _arrays()
    x = gk.tensor(x0, requires_grad=True)
    t = gk.tanh(x)
    keep_data = t.data               # shares t's memory
    keep_view = t.detach().numpy()[::2]   # a NumPy view of it
    before = t.detach().numpy().copy()
    del t
    (keep_data * 0 + 1).sum()        # a separate, unrelated graph
    gk.tanh(x).sum().backward()
    np.testing.assert_array_equal(keep_data.numpy(), before)
    np.testing.assert_array_equal(keep_view, before[::2])


def test_user_gradient_untouched():
    x0, w0 = _arrays()
    x = gk.tensor(x0, requires_grad=True)
    y = x * gk.tensor(w0)
    seed = gk.tensor(np.full(N, 3.0, np.float32))
    y.backward(seed)
    np.testing.assert_array_equal(seed.numpy(), np.full(N, 3.0, np.float32))
    np.testing.assert_allclose(x.grad.numpy(), 3.0 * w0)


def test_retain_graph_keeps_saved_values(spy):
    x0, w0 = _arrays()
    x = gk.tensor(x0, requires_grad=True)
    y = gk.tanh(gk.tanh(x * gk.tensor(w0)) * 2.0).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    x.grad = None
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), g1)
    assert all(not sf for name, gf, sf in spy[: len(spy) // 2] if name == "tanh")


def test_hooks_and_retain_grad_see_their_own_values():
    x0, w0 = _arrays()
    seen = []
    x = gk.tensor(x0, requires_grad=True)
    a = x * gk.tensor(w0)
    a.retain_grad()
    b = gk.tanh(a)
    b.register_hook(lambda g: seen.append(g))
    c = b * 0.5
    c.sum().backward()
    # the hook's gradient (0.5 everywhere) and a.grad were not overwritten later
    np.testing.assert_array_equal(seen[0].numpy(), np.full(N, 0.5, np.float32))
    b0 = np.tanh(x0 * w0)
    np.testing.assert_allclose(a.grad.numpy(), 0.5 * (1 - b0 * b0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x.grad.numpy(), a.grad.numpy() * w0, rtol=1e-6)


def test_shared_gradient_not_donated_twice():
    # add hands the same gradient array to both inputs: neither consumer may overwrite it
    x0, w0 = _arrays()
    x = gk.tensor(x0, requires_grad=True)
    p = x * gk.tensor(w0)
    q = x * 3.0
    (p + q).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), w0 + 3.0, rtol=1e-6)


def test_second_order_unchanged():
    # create_graph takes the composed path: donation never runs there
    x0, _ = _arrays(np.float64)
    x = gk.tensor(x0, requires_grad=True)
    (g,) = gk.autograd.grad(gk.tanh(x).sum(), x, create_graph=True)
    (gg,) = gk.autograd.grad(g.sum(), x)
    t = np.tanh(x0)
    np.testing.assert_allclose(gg.numpy(), -2 * t * (1 - t * t), rtol=1e-12)


def test_every_donating_prim_is_registered_once():
    owners = [p for p in core.PRIMS.values() if p.dvjp is not None]
    assert {p.name for p in owners} >= {"mul", "div", "neg", "exp", "tanh"}
    for p in owners:
        fn, wg, ws = p.dvjp
        assert callable(fn) and (wg or ws), p.name
    with pytest.raises(RuntimeError, match="two donating VJPs"):
        core.donating(EW._mul_vjp, grad=True)(lambda *a: None)


def test_whole_buffer_view_donated(spy):
    # permute's backward hands the next VJP a transposed view of a fresh array:
    # the view is the only way to that memory, so it may be overwritten
    x0, w0 = _arrays()

    def build(x, w):
        h = (x.reshape(256, -1) * w.reshape(256, -1)).permute(1, 0)
        return gk.tanh(h * 0.5)

    off = _grads(x0, w0, False, build, wgrad=True)
    spy.clear()
    on = _grads(x0, w0, True, build, wgrad=True)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)
    assert spy.count(("mul", True, False)) == 2   # h * 0.5, then x * w through the view


def test_owns():
    from gradkit.autograd.engine import _owns
    a = np.ones((4, 6))
    assert _owns(a)
    whole = _owns(np.ones((4, 6)).T)               # a whole view nobody else reaches
    assert whole                                   # (outside assert: pytest keeps parts)
    t = a.T
    assert not _owns(t)                            # `a` still reaches the memory
    assert not _owns(np.ones((4, 6))[1:])          # part of a buffer
    assert not _owns(np.broadcast_to(np.ones(6), (4, 6)))   # zero strides
    assert not _owns(np.frombuffer(bytearray(48)))          # a base that is not an array


def test_ab_benchmark_gives_identical_gradients(capsys):
    from benchmarks import ab_donation
    assert ab_donation.main(["W5", "1"]) == 0
    assert "gradients bit-identical: True" in capsys.readouterr().out
    assert B.donate_min == MIN   # restored
