"""Memory (issue 6, Reliability): a long training loop holds memory flat, graphs
built with create_graph are collectable, and the engine makes no reference
cycles (graphs die by reference counting alone, with the cycle collector off)."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import gradkit as gk

from reliability_mlp import FLAVOURS, make_data, make_mlp

# A leak of one small tensor or node per step is >= ~100 bytes/step, i.e. >= 90 KB
# over the 900 measured steps; what remains after warm-up is allocator noise
# (a few hundred bytes, measured).
NOISE = 16 * 1024


@pytest.fixture
def no_gc():
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_1000_steps_hold_memory_flat(flavour):
    model = make_mlp(flavour, seed=0, lr=0.05)
    data = make_data(1, n_batches=4)
    mark = {}
    tracemalloc.start()
    try:
        for step in range(1, 1001):
            x, y = data[step % len(data)]
            model.step(x, y)
            if step in (100, 1000):
                gc.collect()
                mark[step] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    growth = mark[1000] - mark[100]
    assert growth < NOISE, (f"traced memory grew by {growth} bytes between step 100 and "
                            f"step 1000 ({mark})")


def test_cuda_pool_flat():
    if not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    import cupy
    pool = cupy.get_default_memory_pool()
    model = make_mlp(FLAVOURS[-1], seed=0, device="cuda", lr=0.05)
    data = make_data(1, device="cuda", n_batches=4)
    mark = {}
    for step in range(1, 1001):
        x, y = data[step % len(data)]
        model.step(x, y)
        if step in (100, 1000):
            gc.collect()
            gk.cuda.synchronize()
            mark[step] = pool.used_bytes()
    assert mark[1000] <= mark[100], mark


def _double_backward_graph():
    x = gk.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    y = (x.tanh() * x ** 3).sum()
    g, = gk.grad(y, x, create_graph=True)
    z = (g * g).sum()
    z.backward()
    assert x.grad is not None
    refs = [weakref.ref(o) for o in (y, y.grad_fn, g, g.grad_fn, z, z.grad_fn, x)]
    return refs


def test_create_graph_is_collectable():
    # backward(create_graph=True) stores a .grad that is part of the graph: the
    # leaf -> .grad -> node -> leaf cycle (as in PyTorch, which warns about it).
    # It must still be collectable.
    x = gk.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    y = (x.sin() * x).sum()
    y.backward(create_graph=True)
    refs = [weakref.ref(o) for o in (x, x.grad, x.grad.grad_fn, y, y.grad_fn)]
    del x, y
    gc.collect()
    assert [r() is None for r in refs] == [True] * len(refs)

    refs = _double_backward_graph()
    gc.collect()
    assert [r() is None for r in refs] == [True] * len(refs)


def test_grad_with_create_graph_has_no_cycles(no_gc):
    refs = _double_backward_graph()
    alive = [r() is not None for r in refs]
    assert not any(alive), f"kept alive without gc: {alive}"


def test_retained_graph_and_hooks_have_no_cycles(no_gc):
    x = gk.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    h = x.exp()
    h.retain_grad()
    h.register_hook(lambda g: g * 2)
    y = (h * h).sum()
    y.backward(retain_graph=True)
    y.backward()
    refs = [weakref.ref(o) for o in (h, h.grad_fn, y, y.grad_fn, x)]
    del x, h, y
    assert [r() is None for r in refs] == [True] * len(refs)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_training_loop_frees_graphs_without_gc(no_gc, flavour):
    model = make_mlp(flavour, seed=0)
    data = make_data(1, n_batches=2)
    refs = []
    for step in range(20):
        x, y = data[step % 2]
        out = model.forward(x)
        loss = (out * 0.0).sum() + model.loss(x, y)
        loss.backward()
        model.update()
        refs += [weakref.ref(o) for o in (out, out.grad_fn, loss, loss.grad_fn)]
        del out, loss
    assert gc.isenabled() is False
    alive = [r() is not None for r in refs]
    assert not any(alive), f"{sum(alive)} graph objects kept"
    # and the number of tracked objects does not grow step after step
    n0 = len(gc.get_objects())
    for step in range(50):
        x, y = data[step % 2]
        model.step(x, y)
    assert len(gc.get_objects()) - n0 < 200
