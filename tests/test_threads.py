"""Threads (issue 6, Reliability): concurrent training is bit-identical to
sequential training, grad mode is per thread, and a backward in one thread
never touches another thread's graph."""
import sys
import threading

import numpy as np
import pytest

import gradkit as gk

from reliability_mlp import FLAVOURS, make_data, make_mlp

STEPS = 40


@pytest.fixture(autouse=True)
def fast_switching():
    """Switch threads as often as possible so that they interleave inside ops."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _run_threads(fns, timeout=60):
    """Run the callables at the same time (released together by a barrier);
    re-raise the first error; return their results."""
    barrier = threading.Barrier(len(fns))
    out, errs = [None] * len(fns), []

    def body(i, fn):
        try:
            barrier.wait(10)
            out[i] = fn()
        except BaseException as e:  # pragma: no cover - reported below
            errs.append(e)

    ths = [threading.Thread(target=body, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout)
        assert not t.is_alive(), "a training thread hung"
    if errs:
        raise errs[0]
    return out


def _train(flavour, seed, device):
    model = make_mlp(flavour, seed=seed, device=device, lr=0.05)
    data = make_data(100 + seed, device=device, n_batches=4)
    losses = [model.step(*data[i % 4]) for i in range(STEPS)]
    return [l._B.to_host(l.array).copy() for l in losses], model.state()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_two_threads_bit_identical_to_sequential(flavour, device):
    seq = [_train(flavour, s, device) for s in (1, 2)]
    par = _run_threads([lambda s=s: _train(flavour, s, device) for s in (1, 2)])
    for (ls, ws), (lp, wp) in zip(seq, par):
        for a, b in zip(ls + ws, lp + wp):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b), "a concurrently trained model differs from sequential"
    assert not np.array_equal(seq[0][1][0], seq[1][1][0])  # the two models really differ


def test_grad_mode_is_per_thread():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    entered, release = threading.Event(), threading.Event()
    seen = {}

    def in_no_grad():
        with gk.no_grad():
            entered.set()
            release.wait(10)
            seen["other_enabled"] = gk.is_grad_enabled()
            seen["other_requires_grad"] = (x * 2).requires_grad

    th = threading.Thread(target=in_no_grad)
    th.start()
    assert entered.wait(10)
    # the other thread is inside no_grad right now; this one is unaffected
    assert gk.is_grad_enabled()
    y = x * 3
    assert y.requires_grad and y.grad_fn is not None
    release.set()
    th.join(10)
    assert seen == {"other_enabled": False, "other_requires_grad": False}

    # and the reverse: no_grad here, a fresh thread records graphs
    with gk.no_grad():
        box = {}
        th = threading.Thread(target=lambda: box.update(
            enabled=gk.is_grad_enabled(), rg=(x * 2).requires_grad))
        th.start()
        th.join(10)
        assert not (x * 2).requires_grad
    assert box == {"enabled": True, "rg": True}

    # set_grad_enabled(False) as a plain call is per thread as well
    def plain_call():
        gk.set_grad_enabled(False)
        box["plain"] = gk.is_grad_enabled()

    th = threading.Thread(target=plain_call)
    th.start()
    th.join(10)
    assert box["plain"] is False and gk.is_grad_enabled()


def test_backward_never_sees_another_threads_graph(device):
    """Both threads differentiate graphs that share one leaf, over and over, at
    the same time; each must get exactly its own gradient every time."""
    rng = np.random.default_rng(0)
    w = gk.tensor(rng.standard_normal((6, 5)), device=device, requires_grad=True)
    xs = [gk.tensor(rng.standard_normal((4, 6)), device=device) for _ in range(2)]
    def chain(h, w, k):  # deep graphs: the two backwards overlap in time
        for i in range(12):
            h = (h @ w).tanh() @ w.T * 0.5 + h * k
        return h

    fns = [lambda x, w: (chain(x, w, 0.9) ** 2).sum(),
           lambda x, w: chain(x, w, -0.3).exp().mean() * 3.0]
    expect = []
    for f, x in zip(fns, xs):
        g, = gk.grad(f(x, w), w)
        expect.append(g._B.to_host(g.array).copy())
    assert not np.allclose(expect[0], expect[1])
    own = [gk.tensor(w._B.to_host(w.detach().array), device=device, requires_grad=True)
           for _ in range(2)]

    def worker(k):
        bad = 0
        for _ in range(40):
            g, = gk.grad(fns[k](xs[k], w), w)      # shared leaf, gk.grad
            bad += not np.array_equal(g._B.to_host(g.array), expect[k])
            v = own[k]                             # own leaf, .backward()
            v.grad = None
            fns[k](xs[k], v).backward()
            bad += not np.array_equal(v.grad._B.to_host(v.grad.array), expect[k])
        return bad

    bad = _run_threads([lambda: worker(0), lambda: worker(1)])
    assert bad == [0, 0], f"gradients mixed between threads: {bad} wrong results"
    assert w.grad is None  # gk.grad touches no .grad
