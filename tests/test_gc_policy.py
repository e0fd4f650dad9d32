"""gradkit's collection policy for large graphs (gradkit/autograd/gc_policy.py)."""
import gc
import sys
import weakref

import numpy as np
import pytest

import gradkit as gk
from gradkit.autograd import gc_policy


@pytest.fixture
def small_min(monkeypatch):
    monkeypatch.setattr(gc_policy, "MIN_NODES", 50)
    prev = gc_policy.set_gc_policy(True)
    gc_policy.release()
    yield
    gc_policy.release()
    gc_policy.set_gc_policy(prev)


def _chain(n):
    x = gk.tensor(np.full(4, 0.3, np.float32), requires_grad=True)
    h = x
    for _ in range(n):
        h = gk.tanh(h * 0.9 + 0.1)
    return x, h


class _Cycle:
    pass


def _cycle():
    a = _Cycle()
    a.me = a
    return weakref.ref(a)


def test_large_graph_is_frozen_during_build_and_released_by_backward(small_min):
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else; the policy stays out of the way")
    x, h = _chain(100)
    garbage = _cycle()          # cyclic garbage alive when the graph is frozen
    gc.collect()                # a full collection: the policy freezes instead
    assert gc_policy.is_frozen() and gc.get_freeze_count() > 0
    assert garbage() is not None   # deferred, not lost
    h.sum().backward()
    assert not gc_policy.is_frozen() and gc.get_freeze_count() == 0
    gc.collect()
    assert garbage() is None
    # the gradient is the chain's, policy or not
    g = np.ones(4, np.float32)
    v = np.full(4, 0.3, np.float32)
    vals = []
    for _ in range(100):
        vals.append(np.tanh(v * 0.9 + 0.1))
        v = vals[-1]
    for t in reversed(vals):
        g = g * (1 - t * t) * 0.9
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-4, atol=1e-30)


def test_small_graph_never_frozen(small_min):
    x, h = _chain(10)
    gc.collect()
    assert not gc_policy.is_frozen()
    del x, h


def test_dropped_graph_is_released_at_next_full_collection(small_min):
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else")
    x, h = _chain(100)
    gc.collect()
    assert gc_policy.is_frozen()
    del x, h                    # no backward: the graph dies by reference counting
    garbage = _cycle()
    gc.collect()                # the policy hands everything back and this one collects
    assert not gc_policy.is_frozen() and gc.get_freeze_count() == 0
    assert garbage() is None


def test_young_collections_freeze_while_a_large_graph_grows(small_min, monkeypatch):
    """Once a large graph is seen (at a generation-1 collection, without waiting
    for a full one), every young collection that finds new nodes freezes
    instead of scanning the graph again; cyclic garbage made meanwhile waits
    for the backward, which collects once enough was frozen (HEAP_FACTOR)."""
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else")
    x, h = _chain(100)
    gc.collect(1)               # a generation-1 collection finds the graph
    assert gc_policy.is_frozen()
    n0 = gc.get_freeze_count()
    garbage = _cycle()
    for _ in range(20):
        h = gk.tanh(h * 0.9 + 0.1)
    gc.collect(0)               # new nodes since: frozen too, not scanned
    assert gc.get_freeze_count() > n0
    assert garbage() is not None
    monkeypatch.setattr(gc_policy, "HEAP_FACTOR", 0)   # the full collection is due
    h.sum().backward()
    assert not gc_policy.is_frozen() and gc.get_freeze_count() == 0
    assert garbage() is None    # collected by the backward's full collection
    assert gc_policy._state["young"] == 0


def test_young_collections_run_as_usual_when_no_node_is_recorded(small_min):
    """A large graph is held, but nothing is recorded since the freeze (the
    program does other work): young collections collect as usual."""
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else")
    x, h = _chain(100)
    gc.collect(1)
    assert gc_policy.is_frozen()
    gc.collect(0)               # the first young one after the freeze: nothing new
    garbage = _cycle()
    gc.collect(0)
    assert garbage() is None
    assert gc_policy.is_frozen()
    h.sum().backward()
    assert not gc_policy.is_frozen()


def test_cyclic_garbage_of_large_forwards_stays_bounded(monkeypatch):
    """Objects frozen at young collections skip Python's count for a full
    collection; the backward's own full collection (every HEAP_FACTOR x the
    heap in frozen objects) keeps cyclic garbage made in forwards bounded
    instead of growing step after step."""
    if gc.get_freeze_count():
        pytest.skip("objects are frozen by someone else")
    prev = gc_policy.set_gc_policy(True)
    monkeypatch.setattr(gc_policy, "MIN_NODES", 200)
    # a step here freezes ~12,000 objects; pytest's heap is ~10^5 objects: with the
    # default factor (8) a collection would come every ~60 steps, so scale it down
    monkeypatch.setattr(gc_policy, "HEAP_FACTOR", 0.05)
    monkeypatch.setitem(gc_policy._state, "heap", 1)
    monkeypatch.setitem(gc_policy._state, "young", 0)
    try:
        x = gk.tensor(np.full(4, 0.3, np.float32), requires_grad=True)
        refs = []
        alive = []
        for _ in range(12):
            h = x
            for i in range(3000):
                h = gk.tanh(h * 0.9 + 0.1)
                if i % 300 == 0:
                    refs.append(_cycle())
            h.sum().backward()
            x.grad = None
            alive.append(sum(r() is not None for r in refs))
        assert gc_policy._state["heap"] > 1_000   # the backward collected and counted
        assert max(alive[6:]) <= 3 * 10, alive   # at most a few steps' garbage, not growing
    finally:
        gc_policy.set_gc_policy(prev)


def test_policy_off_and_users_freeze_are_respected(small_min):
    gc_policy.set_gc_policy(False)
    x, h = _chain(100)
    gc.collect()
    assert not gc_policy.is_frozen()
    gc_policy.set_gc_policy(True)
    gc.freeze()                 # the user's own freeze: gradkit leaves it alone
    try:
        gc.collect()
        assert not gc_policy.is_frozen()
        h.sum().backward()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_objects_the_collector_tracks_per_op():
    """Every object a recorded op leaves tracked is scanned by each young
    collection while the graph grows (benchmarks/scale.py: 15-20% of the
    forward). A tanh(h * w + b) chain keeps, per three ops, the three Nodes,
    their edge tuples and edges tuples, mul's version tuple, and tanh's version
    tuple with the output's version counter (the saved tuples hold arrays only,
    and a tuple of untracked items stops being tracked at its first
    collection): 12, 4.00 per op.
    This pins the count so a new per-op object is a decision, not an accident."""
    rng = np.random.default_rng(0)
    x = gk.tensor(rng.standard_normal(16).astype(np.float32), requires_grad=True)
    w = gk.tensor(rng.standard_normal(16).astype(np.float32))
    b = gk.tensor(rng.standard_normal(16).astype(np.float32))
    n = 3000
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects(0)) + len(gc.get_objects(1))
        h = x
        for _ in range(n // 3):
            h = gk.tanh(h * w + b)
        gc.collect(0)   # a young collection untracks tuples that hold only untracked items
        after = len(gc.get_objects(0)) + len(gc.get_objects(1))
    finally:
        if was:
            gc.enable()
    per_op = (after - before) / n
    assert 3.9 < per_op < 4.1, per_op
    h.sum().backward()
    assert x.grad is not None


def test_edges_share_interned_shapes(monkeypatch):
    """An edge keeps its input's shape tuple; ``.shape`` makes a new tuple per
    call, so the recorder interns it (~10% of a recorded chain's bytes). Equal
    shapes are one object; once the table is full, shapes stay correct and
    are simply not shared (the table never grows past its bound)."""
    from gradkit.ops import core
    x = gk.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = gk.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    a, b = gk.tanh(x), x * y
    ea, eb = a.grad_fn.edges[0], b.grad_fn.edges[1]
    assert ea[2] == (3, 4) and ea[2] is eb[2] is core._SHAPES[(3, 4)]
    monkeypatch.setattr(core, "_SHAPES", {})
    monkeypatch.setattr(core, "_MAX_SHAPES", 2)
    z = x
    for shape in ((12,), (2, 6), (6, 2), (4, 3), (1, 12)):   # more shapes than the table holds
        z = gk.exp(z.reshape(shape) * 0.5)
    assert len(core._SHAPES) == 2
    z.sum().backward()
    v, ref = np.ones((3, 4)), np.ones((3, 4))
    for _ in range(5):   # z_k = exp(z_{k-1} / 2): dz_k/dz_{k-1} = z_k / 2
        v = np.exp(0.5 * v)
        ref = ref * 0.5 * v
    got = x.grad.numpy()
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def _faults():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="minor page faults are counted by getrusage on Linux")
def test_large_graph_arenas_are_kept_for_the_next_step():
    """Without the kept blocks every step of a 30,000-op graph unmaps its
    arenas in the backward and page-faults them again in the next forward
    (~0.1 faults per op); with them the second step onwards reuses them."""
    prev = gc_policy.set_gc_policy(True)
    try:
        x = gk.tensor(np.full(16, 0.3, np.float32), requires_grad=True)
        w = gk.tensor(np.full(16, 0.9, np.float32))
        n = 10_000

        def step():
            h = x
            for _ in range(n):
                h = gk.tanh(h * w + 0.1)
            h.sum().backward()

        step()
        assert gc_policy.pinned_blocks() > 0
        step()
        f0 = _faults()
        step()
        per_op = (_faults() - f0) / (3 * n)
        assert per_op < 0.01, per_op
        # turning the policy off hands the arenas back
        gc_policy.set_gc_policy(False)
        assert gc_policy.pinned_blocks() == 0
    finally:
        gc_policy.set_gc_policy(prev)


def test_kept_blocks_rotate_with_each_backward():
    """Only the blocks of the last two graphs are kept: a large one-off graph's
    arenas go back once two more graphs were built and differentiated."""
    prev = gc_policy.set_gc_policy(True)
    try:
        gc_policy.set_gc_policy(False)
        gc_policy.set_gc_policy(True)
        x = gk.tensor(np.full(4, 0.3, np.float32), requires_grad=True)

        def graph(n):
            h = x
            for _ in range(n):
                h = h.tanh()
            h.sum().backward()
            return gc_policy.pinned_blocks()

        big = graph(60_000)
        small = [graph(6_000) for _ in range(3)]
        assert big > 2 * small[-1] > 0, (big, small)
        assert len(gc_policy._pins[0]) == 0   # rotated by the backward
        assert gc_policy._pins[0].maxlen == gc_policy.MAX_PINS
    finally:
        gc_policy.set_gc_policy(prev)
