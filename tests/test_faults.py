"""Faults and concurrency (issue 11, items 11 and 21-23): shared leaves under
threads, out-of-memory errors, failed backwards, hooks on the wrong device."""
import sys
import threading

import numpy as np
import pytest

import gradkit as gk


# ------------------------------------------------- item 21: atomic .grad accumulation
def test_threads_accumulating_into_one_leaf_lose_nothing():
    # 4 threads x 40 backward passes of (w * x).sum() into one 1M-element leaf:
    # NumPy releases the GIL inside +=, so an unlocked read-modify-write loses updates
    n, threads, steps = 1_000_000, 4, 40
    w = gk.zeros(n, requires_grad=True)
    x = gk.ones(n)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    barrier = threading.Barrier(threads)
    errors = []

    def body():
        try:
            barrier.wait(10)
            for _ in range(steps):
                (w * x).sum().backward()
        except BaseException as e:   # pragma: no cover - reported below
            errors.append(e)
    try:
        ths = [threading.Thread(target=body) for _ in range(threads)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    g = w.grad.numpy()
    assert g.min() == g.max() == threads * steps, (g.min(), g.max())


# ------------------------------------------------------ item 22: out of memory
class FakeCupyOOM(MemoryError):
    """Shaped like cupy.cuda.memory.OutOfMemoryError: a MemoryError whose
    constructor takes (size, total)."""

    def __init__(self, size, total):
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes).")


def _raiser(exc):
    def kernel(*args, **kwargs):
        raise exc
    return kernel


@pytest.mark.parametrize("exc", [MemoryError("Unable to allocate 8.00 GiB for an array"),
                                 FakeCupyOOM(8 << 30, 1 << 30)], ids=["MemoryError", "cupy-like"])
def test_out_of_memory_in_forward_stays_a_memory_error(exc, monkeypatch):
    a = gk.ones(3, 4, requires_grad=True)
    monkeypatch.setattr(a._B, "mul", _raiser(exc))
    with pytest.raises(MemoryError) as info:
        a * a
    e = info.value
    assert isinstance(e, type(exc))          # except cupy's OutOfMemoryError still works
    assert isinstance(e, gk.OutOfMemoryError)
    assert "gradkit.mul" in str(e) and "(3, 4)" in str(e) and "float32" in str(e)
    assert "8" in str(e) and e.original is exc


def test_out_of_memory_in_backward_names_the_op(monkeypatch):
    a = gk.ones(5, 2, requires_grad=True)
    y = (a.exp() * a).sum()
    monkeypatch.setattr(a._B, "mul", _raiser(MemoryError("Unable to allocate 1 TiB")))
    with pytest.raises(MemoryError, match=r"gradkit.mul: out of memory in the backward.*\(5, 2\)"):
        y.backward()


# ---------------------------------------------- item 23: a failed backward, then a retry
class Boom(gk.autograd.Function):
    fail = True

    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, g):
        if Boom.fail:
            raise ValueError("injected failure")
        return g


def test_failed_backward_leaves_grads_untouched_and_retry_says_why():
    a = gk.tensor([1.0, 2.0], requires_grad=True)
    b = gk.tensor([3.0, 4.0], requires_grad=True)
    a.grad = gk.tensor([10.0, 10.0])
    # b's path runs first (later ops have higher sequence numbers), then Boom fails
    y = (Boom.apply(a * 2.0) * 3.0).sum() + (b * b).sum()
    Boom.fail = True
    with pytest.raises(ValueError, match="injected failure"):
        y.backward()
    assert a.grad.tolist() == [10.0, 10.0] and b.grad is None   # all or nothing
    Boom.fail = False
    with pytest.raises(RuntimeError) as info:
        y.backward()
    msg = str(info.value)
    assert "previous backward" in msg and "failed" in msg and "injected failure" in msg
    assert "second time" not in msg
    # a fresh forward works
    y = (Boom.apply(a * 2.0) * 3.0).sum() + (b * b).sum()
    y.backward()
    assert a.grad.tolist() == [16.0, 16.0] and b.grad.tolist() == [6.0, 8.0]


@pytest.mark.parametrize("bad_on", ["a", "b"])
def test_failing_leaf_hook_changes_no_grad(bad_on):
    a = gk.tensor([1.0], requires_grad=True)
    b = gk.tensor([2.0], requires_grad=True)

    def bad(g):
        raise KeyError("hook failed")
    (b if bad_on == "a" else a).register_hook(lambda g: g * 2)
    (a if bad_on == "a" else b).register_hook(bad)
    with pytest.raises(KeyError):
        (a * b).sum().backward(retain_graph=True)
    assert a.grad is None and b.grad is None


def test_second_backward_still_says_retain_graph():
    a = gk.tensor([1.0], requires_grad=True)
    y = (a * a).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_failed_backward_with_retain_graph_can_be_retried():
    a = gk.tensor([1.0, 2.0], requires_grad=True)
    y = Boom.apply(a * a).sum()
    Boom.fail = True
    with pytest.raises(ValueError):
        y.backward(retain_graph=True)
    Boom.fail = False
    y.backward()
    assert a.grad.tolist() == [2.0, 4.0]


# ------------------------------------------ item 11: a hook's gradient on another device
def test_hook_returning_another_device_or_dtype_is_refused():
    a = gk.ones(3, device="fake", requires_grad=True)
    y = a * 2.0
    y.register_hook(lambda g: gk.ones(3))   # on cpu
    with pytest.raises(RuntimeError, match="hook.*cpu.*fake.*"):
        y.sum().backward()
    a = gk.ones(3, requires_grad=True)
    y = a * 2.0
    y.register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match="changed the type.*float32.*float64"):
        y.sum().backward()
