"""Every collective of gradkit.distributed, for every dtype, against a NumPy
reference computed from every rank's (deterministic) input. Runs on each rank
of ``mpiexec -n N python -m pytest tests/distributed`` (and as one rank)."""
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'gradkit[mpi]'")

import gradkit as gk
import gradkit.distributed as dist
from gradkit.distributed import ReduceOp

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
FLOATS = ("float16", "float32", "float64")
SHAPE = (3, 5)


def rank_input(dtype, rank, shape=SHAPE, salt=0):
    """What rank ``rank`` contributes: small values, so that no sum or product
    over 3 ranks overflows int8/uint8 or rounds in float16."""
    rng = np.random.default_rng(1000 * rank + 17 * DTYPES.index(dtype) + salt)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in FLOATS:
        return (rng.integers(-4, 5, shape) / 2.0).astype(dtype)
    lo = 0 if dtype == "uint8" else -3
    return rng.integers(lo, 4, shape).astype(dtype)


def reference(dtype, op, n, **kw):
    xs = [rank_input(dtype, r, **kw) for r in range(n)]
    if dtype == "bool":
        f = {"SUM": np.logical_or, "MAX": np.logical_or, "BOR": np.logical_or,
             "PRODUCT": np.logical_and, "MIN": np.logical_and, "BAND": np.logical_and,
             "BXOR": np.logical_xor}[op]
    else:
        f = {"SUM": np.add, "AVG": np.add, "PRODUCT": np.multiply, "MIN": np.minimum,
             "MAX": np.maximum, "BAND": np.bitwise_and, "BOR": np.bitwise_or,
             "BXOR": np.bitwise_xor}[op]
    out = xs[0]
    for x in xs[1:]:
        out = f(out, x).astype(dtype)
    if op == "AVG":
        out = (out / n).astype(dtype)
    return out


def ops_for(dtype):
    if dtype in FLOATS:
        return ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]
    return ["SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"]


def check(got, want, dtype):
    assert got.dtype == want.dtype and got.shape == want.shape
    if dtype == "float16":
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_reduce_every_op(world, dtype):
    rank, n = world
    for op in ops_for(dtype):
        t = gk.from_numpy(rank_input(dtype, rank).copy())
        v = t._vc[0]
        assert dist.all_reduce(t, op=getattr(ReduceOp, op)) is None
        check(t.numpy(), reference(dtype, op, n), dtype)
        assert t._vc[0] > v                      # in place: the version moved


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_from_every_rank(world, dtype):
    rank, n = world
    for src in range(n):
        t = gk.from_numpy(rank_input(dtype, rank, salt=src).copy())
        dist.broadcast(t, src=src)
        check(t.numpy(), rank_input(dtype, src, salt=src), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_gather(world, dtype):
    rank, n = world
    out = [gk.zeros(*SHAPE, dtype=dtype) for _ in range(n)]
    dist.all_gather(out, gk.from_numpy(rank_input(dtype, rank)))
    for r in range(n):
        check(out[r].numpy(), rank_input(dtype, r), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_all_gather_into_tensor_stacked_and_concatenated(world, dtype):
    rank, n = world
    want = np.stack([rank_input(dtype, r) for r in range(n)])
    stacked = gk.zeros(n, *SHAPE, dtype=dtype)
    dist.all_gather_into_tensor(stacked, gk.from_numpy(rank_input(dtype, rank)))
    check(stacked.numpy(), want, dtype)
    cat = gk.zeros(n * SHAPE[0], SHAPE[1], dtype=dtype)
    dist.all_gather_into_tensor(cat, gk.from_numpy(rank_input(dtype, rank)))
    check(cat.numpy(), want.reshape(n * SHAPE[0], SHAPE[1]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduce_scatter_tensor(world, dtype):
    rank, n = world
    shape = (n * 2, 4)
    for op in ("SUM", "MAX") + (("AVG",) if dtype in FLOATS else ()):
        out = gk.zeros(2, 4, dtype=dtype)
        dist.reduce_scatter_tensor(out, gk.from_numpy(rank_input(dtype, rank, shape=shape)),
                                   op=getattr(ReduceOp, op))
        want = reference(dtype, op, n, shape=shape)[2 * rank:2 * rank + 2]
        check(out.numpy(), want, dtype)
    stacked_in = gk.from_numpy(rank_input(dtype, rank, shape=(n, 3)))
    out = gk.zeros(3, dtype=dtype)
    dist.reduce_scatter_tensor(out, stacked_in)
    check(out.numpy(), reference(dtype, "SUM", n, shape=(n, 3))[rank], dtype)


def test_non_contiguous_and_scalar_tensors(world):
    rank, n = world
    base = gk.from_numpy(rank_input("float64", rank, shape=(4, 6)).copy())
    view = base.T                                  # not C-contiguous: copied in and back
    dist.all_reduce(view)
    np.testing.assert_array_equal(base.numpy(), reference("float64", "SUM", n, shape=(4, 6)))
    s = gk.tensor(float(rank + 1), dtype=gk.float64)
    dist.all_reduce(s, op=ReduceOp.MAX)
    assert s.item() == n


def test_async_work_and_barrier(world):
    rank, n = world
    t = gk.ones(1000, dtype=gk.float32) * (rank + 1)
    w = dist.all_reduce(t, async_op=True)
    assert isinstance(w, dist.Work)
    assert w.wait() is True and w.is_completed()
    assert t.numpy()[0] == n * (n + 1) / 2
    assert dist.barrier() is None


def test_query_functions(world):
    rank, n = world
    assert dist.is_initialized() and dist.is_available()
    assert 0 <= rank < n and dist.get_backend() == "mpi"
    assert 0 <= dist.get_node_local_rank() < n


def test_bad_arguments_raise_clearly(world):
    rank, n = world
    with pytest.raises(RuntimeError, match=r"all_reduce: ReduceOp.AVG is not supported for int64"):
        dist.all_reduce(gk.zeros(2, dtype=gk.int64), op=ReduceOp.AVG)
    with pytest.raises(RuntimeError, match=r"ReduceOp.BAND is not supported for float32"):
        dist.all_reduce(gk.zeros(2), op=ReduceOp.BAND)
    with pytest.raises(RuntimeError, match=r"broadcast: src=%d is not a rank" % n):
        dist.broadcast(gk.zeros(2), src=n)
    with pytest.raises(RuntimeError, match=r"all_gather: tensor_list must be a list of "
                                           r"world_size=%d tensors" % n):
        dist.all_gather([gk.zeros(2)] * (n + 1), gk.zeros(2))
    with pytest.raises(RuntimeError, match=r"all_gather_into_tensor: output_tensor has shape"):
        dist.all_gather_into_tensor(gk.zeros(n + 1, 2), gk.zeros(2))
    with pytest.raises(TypeError, match=r"all_reduce: tensor must be a gradkit Tensor"):
        dist.all_reduce(np.zeros(2))
    with pytest.raises(RuntimeError, match=r"twice"):
        dist.init_process_group()


def test_debug_mode_names_every_ranks_call(world, monkeypatch):
    rank, n = world
    from gradkit.distributed import _pg  # noqa: F401  (the group exists)
    monkeypatch.setattr(dist._pg, "debug", True)
    t = gk.zeros(2, 3)
    dist.all_reduce(t)                             # agreeing ranks pass the check
    if n == 1:
        return
    bad = gk.zeros(2 + rank, dtype=gk.float32 if rank else gk.float64)
    with pytest.raises(dist.DistError) as e:
        dist.all_reduce(bad)
    msg = str(e.value)
    assert "the ranks disagree" in msg
    assert "rank 0: all_reduce(shape (2,), float64, op ReduceOp.SUM)" in msg
    assert "rank 1: all_reduce(shape (3,), float32, op ReduceOp.SUM)" in msg
    with pytest.raises(dist.DistError, match="rank 0: broadcast"):
        if rank == 0:
            dist.broadcast(t, src=0)
        else:
            dist.all_reduce(t)


def test_timeout_names_rank_and_collective(world):
    """Rank 0 waits for a collective that the others join only later: its wait
    times out with an error naming the rank and the collective; the late
    collective then completes, and the job goes on."""
    rank, n = world
    if n == 1:
        pytest.skip("a timeout needs a second rank that arrives late (run under mpiexec -n 2)")
    t = gk.ones(4) * (rank + 1)
    if rank == 0:
        w = dist.all_reduce(t, async_op=True)
        with pytest.raises(dist.DistTimeoutError,
                           match=r"gradkit.distributed.all_reduce: rank 0 timed out after 0.3 s"):
            w.wait(timeout=0.3)
        w.wait()
    else:
        time.sleep(1.0)
        dist.all_reduce(t)
    assert t.numpy()[0] == n * (n + 1) / 2
    # the blocking form: rank 0 gives up, the others come later and it all still lines up
    u = gk.ones(2)
    if rank == 0:
        with pytest.raises(TimeoutError, match=r"rank 0 timed out.*all_reduce|all_reduce: rank 0"):
            dist.all_reduce(u, timeout=0.3)
    else:
        time.sleep(0.6 if rank else 0)
        dist.all_reduce(u)
    dist.barrier()
    if rank:
        assert u.numpy()[0] == n
