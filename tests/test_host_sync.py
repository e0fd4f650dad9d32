"""The host-sync guard ``gk.no_host_sync()`` (issue 6, Reliability).

Every device -> host conversion raises under the guard on the fake accelerator
(and cuda when usable), naming the op and the line of this file that did it;
nothing raises on the cpu; the flag is per thread; a whole MLP training step
runs clean under it."""
import operator
import threading

import numpy as np
import pytest

import gradkit as gk
from gradkit.reliability import HostSyncError, is_host_sync_guarded

from reliability_mlp import FLAVOURS, make_data, make_mlp


@pytest.fixture(params=["fake", pytest.param("cuda", marks=pytest.mark.cuda)])
def accel(request):
    if request.param == "cuda" and not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    return request.param


def _ifelse(t):
    if t.sum() > 0:  # implicit bool() of a device tensor
        return 1
    return 0


# (name, what the message must name, conversion). One per line: the expected
# file:line in the error is the line of the lambda.
CONVERSIONS = [
    ("item", "item()", lambda t, i: t.sum().item()),
    ("float", "float()", lambda t, i: float(t.sum())),
    ("int", "int()", lambda t, i: int(i.sum())),
    ("bool", "bool()", lambda t, i: bool(t.sum() > 0)),
    ("index", "__index__", lambda t, i: [10, 20, 30][i[0]]),
    ("range", "__index__", lambda t, i: range(i[1])),
    ("operator.index", "__index__", lambda t, i: operator.index(i[0])),
    ("np.asarray", "__array__", lambda t, i: np.asarray(t)),
    ("numpy", "numpy()", lambda t, i: t.numpy()),
    ("tolist", "tolist()", lambda t, i: t.tolist()),
    ("cpu", "to(cpu)", lambda t, i: t.cpu()),
    ("to_cpu", "to(cpu)", lambda t, i: t.to("cpu")),
    ("repr", "repr", lambda t, i: repr(t)),
    ("str", "repr", lambda t, i: str(t)),
    ("fstring", "repr", lambda t, i: f"{t}"),
    ("bool_mask", "boolean-mask indexing", lambda t, i: t[t > 0]),
    ("tensor_of_tensors", "item()", lambda t, i: gk.tensor([t[0], t[1]])),
]


def _inputs(device):
    t = gk.tensor([1.5, -2.0, 3.0], device=device)
    i = gk.tensor([1, 2, 0], device=device)
    return t, i


@pytest.mark.parametrize("name,op,fn", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_conversion_raises_on_device(accel, name, op, fn):
    t, i = _inputs(accel)
    with gk.no_host_sync():
        with pytest.raises(HostSyncError) as ei:
            fn(t, i)
    msg = str(ei.value)
    assert op in msg, msg
    assert f"test_host_sync.py:{fn.__code__.co_firstlineno}" in msg, msg
    assert not is_host_sync_guarded()
    if not (accel == "cuda" and name in ("numpy", "np.asarray")):  # cuda: TypeError, by design
        fn(t, i)  # outside the guard the same conversion works


def test_implicit_if_names_the_if_line(accel):
    t, _ = _inputs(accel)
    with gk.no_host_sync(), pytest.raises(HostSyncError) as ei:
        _ifelse(t)
    assert f"test_host_sync.py:{_ifelse.__code__.co_firstlineno + 1}" in str(ei.value)
    assert "bool()" in str(ei.value)


@pytest.mark.parametrize("name,op,fn", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_nothing_raises_on_cpu(name, op, fn):
    t, i = _inputs("cpu")
    with gk.no_host_sync():
        fn(t, i)
        _ifelse(t)


def test_cuda_synchronize_is_guarded():
    if not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    with gk.no_host_sync(), pytest.raises(HostSyncError, match="synchronize"):
        gk.cuda.synchronize()
    gk.cuda.synchronize()


def test_decorator_and_restore(accel):
    t, _ = _inputs(accel)

    @gk.no_host_sync()
    def f():
        return t.sum().item()

    with pytest.raises(HostSyncError):
        f()
    assert not is_host_sync_guarded()
    assert t.sum().item() == pytest.approx(2.5)
    # nesting restores the outer value, also after an error
    with gk.no_host_sync():
        with gk.no_host_sync(False):
            assert t.sum().item() == pytest.approx(2.5)
        assert is_host_sync_guarded()
        with pytest.raises(HostSyncError):
            with gk.no_host_sync():
                t.sum().item()
        assert is_host_sync_guarded()
    assert not is_host_sync_guarded()


def test_guard_is_thread_local(accel):
    t, _ = _inputs(accel)
    seen = {}

    def other():
        try:
            seen["guarded"] = is_host_sync_guarded()
            seen["value"] = t.sum().item()
        except Exception as e:  # pragma: no cover - reported below
            seen["error"] = e

    with gk.no_host_sync():
        th = threading.Thread(target=other)
        th.start()
        th.join()
        with pytest.raises(HostSyncError):
            t.sum().item()
    assert "error" not in seen, seen
    assert seen == {"guarded": False, "value": pytest.approx(2.5)}

    # and the other way round: a guarded thread leaves this one alone
    ready, done = threading.Event(), threading.Event()
    box = {}

    def guarded():
        with gk.no_host_sync():
            ready.set()
            done.wait(5)
            try:
                t.sum().item()
            except HostSyncError:
                box["raised"] = True

    th = threading.Thread(target=guarded)
    th.start()
    ready.wait(5)
    assert not is_host_sync_guarded()
    assert t.sum().item() == pytest.approx(2.5)
    done.set()
    th.join()
    assert box == {"raised": True}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_training_step_runs_clean(accel, flavour):
    model = make_mlp(flavour, seed=0, device=accel)
    data = make_data(1, device=accel, n_batches=3)
    losses = []
    with gk.no_host_sync():
        for x, y in data:
            losses.append(model.step(x, y))
        total = gk.stack(losses).sum()  # still on the device
    ref = make_mlp(flavour, seed=0, device="cpu")
    ref_losses = [ref.step(gk.tensor(x.detach()._B.to_host(x.array)),
                           gk.tensor(y._B.to_host(y.array))).item()
                  for x, y in data]
    assert total.item() == pytest.approx(sum(ref_losses), rel=1e-5)
    for a, b in zip(model.state(), ref.state()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_w2_benchmark_step_runs_clean(accel):
    """The performance issue's W2 step (MLP 784-1024-1024-10, batch 256, cross
    entropy, SGD in place), exactly as the benchmark runs it."""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.frameworks import build
    from benchmarks.workloads.w2_mlp import WORKLOAD, make_inputs
    params, consts = make_inputs(np.random.default_rng(0))
    bench = build("gradkit", WORKLOAD, accel, params, consts)
    with gk.no_host_sync():
        loss, grads = bench.grads()
        bench.update(grads)
    bench.sync()  # an explicit wait on the device: outside the guard
    ref_loss, ref_grads = WORKLOAD.numpy_impl(np, dict(params), consts)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-4)
    for name, p in zip(params, bench.params()):
        np.testing.assert_allclose(p._B.to_host(p.detach().array),
                                   params[name] - WORKLOAD.lr * ref_grads[name],
                                   rtol=1e-3, atol=1e-5)
