"""DistributedDataParallel on every rank of an MPI job: training on shards equals
single-process training on the whole batch (float64, 1e-10), rank 0's weights
win at construction, no_sync accumulation equals the large-batch step, unused
parameters, bucketing overlap, and the sampler's exact partition."""
import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'gradkit[mpi]'")

import gradkit as gk
import gradkit.distributed as dist
import gradkit.nn as nn
import gradkit.nn.functional as F
from gradkit.nn.parallel import DistributedDataParallel as DDP
from gradkit.utils.data.distributed import DistributedSampler

TOL = 1e-10


class Net(nn.Module):
    """An MLP with a buffer (a per-feature input scale) used in forward."""

    def __init__(self, seed, n_in=6, hidden=9, n_out=4):
        super().__init__()
        gk.manual_seed(seed)
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)
        self.register_buffer("scale", gk.rand(n_in) + 0.5)
        self.double()

    def forward(self, x):
        h = (x * self.scale).tanh()
        return self.out(F.relu(self.fc2(self.fc1(h).tanh())))


def data(n_rows, seed=123):
    rng = np.random.default_rng(seed)
    x = gk.from_numpy(rng.standard_normal((n_rows, 6)))
    y = gk.from_numpy(rng.integers(0, 4, n_rows))
    return x, y


def max_diff(m1, m2):
    return max(float((a - b).abs().max().item()) for a, b in
               zip(list(m1.parameters()) + list(m1.buffers()),
                   list(m2.parameters()) + list(m2.buffers())))


@pytest.mark.parametrize("bucket_cap_mb", [25, 0.0004])
def test_shards_equal_the_whole_batch(world, bucket_cap_mb):
    rank, n = world
    per_rank = 5
    x, y = data(per_rank * n)
    ref = Net(seed=0)
    ref_opt = gk.optim.SGD(ref.parameters(), lr=0.2, momentum=0.9)
    model = DDP(Net(seed=rank), bucket_cap_mb=bucket_cap_mb)   # rank 1 starts elsewhere
    assert max_diff(model.module, ref) == 0.0                    # ...until the broadcast
    if bucket_cap_mb < 1:
        assert len(model._buckets) > 1
    opt = gk.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    for _ in range(4):
        ref_opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        ref_opt.step()
        opt.zero_grad()
        F.cross_entropy(model(x[mine]), y[mine]).backward()
        opt.step()
        assert max_diff(model.module, ref) < TOL
    every = [gk.zeros(3, dtype=gk.float64) for _ in range(n)]
    dist.all_gather(every, model.module.out.weight[0, :3].detach().clone())
    assert all(float((e - every[0]).abs().max().item()) == 0.0 for e in every)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_gradient_as_bucket_view(world, set_to_none):
    rank, n = world
    per_rank = 3
    x, y = data(per_rank * n, seed=9)
    ref = Net(seed=0)
    ref_opt = gk.optim.Adam(ref.parameters(), lr=0.01)
    model = DDP(Net(seed=rank), gradient_as_bucket_view=True, bucket_cap_mb=0.0004)
    opt = gk.optim.Adam(model.parameters(), lr=0.01)
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    for _ in range(3):
        ref_opt.zero_grad()
        F.cross_entropy(ref(x), y).backward()
        ref_opt.step()
        opt.zero_grad(set_to_none=set_to_none)
        F.cross_entropy(model(x[mine]), y[mine]).backward()
        opt.step()
        assert max_diff(model.module, ref) < TOL
    b = model._buckets[0]
    p = model._params[b.params[0]]
    assert p.grad.array is b.views[0]              # the gradient lives in the bucket


def test_no_sync_accumulation_equals_the_large_batch_step(world):
    rank, n = world
    micro, per = 3, 4
    x, y = data(micro * per * n, seed=7)
    ref = Net(seed=10)                             # rank 0's initial weights
    F.cross_entropy(ref(x), y).backward()
    model = DDP(Net(seed=10 + rank))
    model.zero_grad()
    # rank r's micro-batch k is the block (k * n + r) of the global batch
    for k in range(micro):
        rows = slice((k * n + rank) * per, (k * n + rank + 1) * per)
        loss = F.cross_entropy(model(x[rows]), y[rows]) / micro
        if k < micro - 1:
            with model.no_sync():
                loss.backward()
        else:
            loss.backward()
    for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=TOL,
                                   err_msg=name)


def test_gradients_inside_no_sync_stay_local(world):
    rank, n = world
    model = DDP(Net(seed=3))
    x, y = data(4, seed=50 + rank)                 # a different batch on every rank
    with model.no_sync():
        F.cross_entropy(model(x), y).backward()
    local = Net(seed=3)
    F.cross_entropy(local(x), y).backward()
    for p, q in zip(model.module.parameters(), local.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=TOL)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        gk.manual_seed(5)
        self.body = nn.Linear(3, 3)
        self.head_a = nn.Linear(3, 1)
        self.head_b = nn.Linear(3, 1)     # used by rank 0 only
        self.never = nn.Linear(3, 1)      # used by no rank
        self.double()

    def forward(self, x, use_b):
        h = self.body(x).tanh()
        out = self.head_a(h)
        return out + self.head_b(h) if use_b else out


def test_find_unused_parameters(world):
    rank, n = world
    model = DDP(TwoHeads(), find_unused_parameters=True, bucket_cap_mb=0.00005)
    x = gk.from_numpy(np.linspace(-1, 1, 6).reshape(2, 3) * (rank + 1))
    for _ in range(2):                               # twice: the state resets per step
        model.zero_grad()
        model(x, use_b=(rank == 0)).sum().backward()
    assert model.module.never.weight.grad is None    # unused on every rank: untouched
    # head_b: only rank 0's gradient, averaged over n ranks, on every rank
    ref = TwoHeads()
    x0 = gk.from_numpy(np.linspace(-1, 1, 6).reshape(2, 3))
    ref(x0, use_b=True).sum().backward()
    np.testing.assert_allclose(model.module.head_b.weight.grad.numpy(),
                               ref.head_b.weight.grad.numpy() / n, rtol=0, atol=TOL)


def test_unused_parameter_without_detection_raises_at_next_forward(world):
    model = DDP(TwoHeads())
    x = gk.ones(2, 3, dtype=gk.float64)
    model(x, use_b=False).sum().backward()            # head_b and never get no gradient
    with pytest.raises(RuntimeError, match=r"Expected to have finished reduction in the prior "
                                           r"iteration.*find_unused_parameters=True.*head_b"):
        model(x, use_b=False)


def test_a_second_backward_through_one_forward_raises(world):
    model = DDP(Net(seed=0))
    x, y = data(4)
    loss = F.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match=r"received a gradient after this iteration's "
                                           r"gradients were already averaged"):
        loss.backward()


def test_buckets_start_while_backward_runs(world):
    """With several buckets, the last layers' bucket is all-reduced before
    backward reaches the first layer."""
    model = DDP(Net(seed=0), bucket_cap_mb=0.0004)
    assert len(model._buckets) >= 2
    seen = []
    x, y = data(4)
    h = model.module.fc1(x)
    h.register_hook(lambda g: seen.append(model._next_bucket))
    loss = F.cross_entropy(model.module.out(F.relu(model.module.fc2(h.tanh()))), y)
    model._prepare_for_backward()
    model.__dict__["_sync_now"] = True
    loss.backward()
    assert seen and seen[0] >= 1                     # a bucket had started before fc1's VJP
    assert model._next_bucket == len(model._buckets) and not model._sync_now


def test_state_dict_keys_and_module(world):
    inner = Net(seed=0)
    model = DDP(inner)
    assert model.module is inner
    keys = list(model.state_dict())
    assert keys == ["module." + k for k in inner.state_dict()]
    assert "module.fc1.weight" in keys and "module.scale" in keys
    plain = Net(seed=9)
    plain.load_state_dict({k[len("module."):]: v for k, v in model.state_dict().items()})
    assert max_diff(plain, inner) == 0.0
    assert [n for n, _ in model.named_parameters()][0] == "module.fc1.weight"


def test_mismatched_models_are_refused(world):
    rank, n = world
    if n == 1:
        pytest.skip("needs two ranks with different models (run under mpiexec -n 2)")
    with pytest.raises(RuntimeError, match=r"the ranks' modules have different parameters"):
        DDP(Net(seed=0, hidden=8 + rank))


@pytest.mark.parametrize("size", [10, 11, 12, 1])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_partitions_exactly_across_ranks(world, size, drop_last):
    rank, n = world
    ds = list(range(size))
    s = DistributedSampler(ds, shuffle=True, seed=4, drop_last=drop_last)
    s.set_epoch(2)
    mine = list(s)
    assert len(mine) == len(s)
    out = gk.zeros(n, len(s), dtype=gk.int64)
    dist.all_gather_into_tensor(out, gk.tensor(mine, dtype=gk.int64).reshape(len(s)))
    allidx = [i for row in out.tolist() for i in row]
    if drop_last:
        assert len(set(allidx)) == len(allidx) == n * (size // n)   # disjoint, tail dropped
    else:
        assert set(allidx) == set(range(size)) and len(allidx) == n * -(-size // n)
