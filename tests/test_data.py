"""gradkit.utils.data: datasets, samplers, collate, DataLoader; structure,
lengths, order and errors compared with torch.utils.data when torch is
installed (shuffles are compared for reproducibility, not torch's values:
gk.Generator is its own stream)."""
from collections import namedtuple

import numpy as np
import pytest

import gradkit as gk
from gradkit.utils import data as D
from helpers import to_np


def _torch():
    return pytest.importorskip("torch")


def _np(x):
    if isinstance(x, gk.Tensor):
        return ("T", str(x.dtype).split(".")[-1], to_np(x).tolist())
    if type(x).__module__.startswith("torch"):
        return ("T", str(x.dtype).split(".")[-1], x.numpy().tolist())
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__,) + tuple(_np(v) for v in x)
    if isinstance(x, (list, tuple)):
        return [type(x).__name__] + [_np(v) for v in x]
    return x


P = namedtuple("P", "a b")


def _samples():
    return [{"x": 1.5, "i": 3, "b": True, "s": "a", "arr": np.ones((2,), np.float32),
             "n": np.float32(2.0), "t": (1, [2.0, 3.0]), "p": P(1, 2.0)},
            {"x": -0.5, "i": 4, "b": False, "s": "b", "arr": np.zeros((2,), np.float32),
             "n": np.float32(4.0), "t": (5, [6.0, 7.0]), "p": P(3, 4.0)}]


def test_default_collate_matches_torch():
    _torch()
    from torch.utils.data import default_collate as tc
    assert _np(D.default_collate(_samples())) == _np(tc(_samples()))
    g = D.default_collate([gk.ones(2, 3), gk.zeros(2, 3)])
    assert g.shape == (2, 2, 3)
    with pytest.raises(RuntimeError, match="equal size"):
        D.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        D.default_collate([object(), object()])
    from torch.utils.data import default_convert as tconv
    s = {"a": np.arange(3), "b": (np.ones(2), "x")}
    assert _np(D.default_convert(s)) == _np(tconv(s))


def _tds(lib):
    return lib.utils.data.TensorDataset(lib.arange(10).float(), lib.arange(10) * 2)


@pytest.mark.parametrize("kw", [dict(batch_size=3), dict(batch_size=4, drop_last=True),
                                dict(batch_size=None), dict(batch_size=1)])
def test_sequential_loader_matches_torch(kw):
    torch = _torch()
    g = list(D.DataLoader(_tds(gk), **kw))
    t = list(torch.utils.data.DataLoader(_tds(torch), **kw))
    assert _np(g) == _np(t)
    assert len(D.DataLoader(_tds(gk), **kw)) == len(torch.utils.data.DataLoader(_tds(torch), **kw))


def test_samplers_and_batch_sampler_match_torch():
    torch = _torch()
    tu = torch.utils.data
    ds = list(range(7))
    for gk_s, t_s in [(D.BatchSampler(D.SequentialSampler(ds), 3, False),
                       tu.BatchSampler(tu.SequentialSampler(ds), 3, False)),
                      (D.BatchSampler(range(7), 2, True), tu.BatchSampler(range(7), 2, True))]:
        assert list(gk_s) == list(t_s) and len(gk_s) == len(t_s)
    g = list(D.DataLoader(ds, batch_sampler=D.BatchSampler(range(7), 3, False)))
    t = list(tu.DataLoader(ds, batch_sampler=tu.BatchSampler(range(7), 3, False)))
    assert _np(g) == _np(t)
    g = list(D.DataLoader(ds, sampler=[6, 0, 3], batch_size=2))
    t = list(tu.DataLoader(ds, sampler=[6, 0, 3], batch_size=2))
    assert _np(g) == _np(t)


def test_shuffle_is_a_reproducible_permutation():
    ds = _tds(gk)
    runs = []
    for _ in range(2):
        gen = gk.Generator().manual_seed(123)
        dl = D.DataLoader(ds, batch_size=4, shuffle=True, generator=gen)
        runs.append([to_np(x).tolist() for x, _ in dl] + [to_np(x).tolist() for x, _ in dl])
    assert runs[0] == runs[1]
    first = sum(runs[0][:3], [])
    assert sorted(first) == list(range(10)) and first != list(range(10))
    assert runs[0][:3] != runs[0][3:]          # the next epoch is another permutation
    gk.manual_seed(7)
    a = [i for b in D.DataLoader(range(10), batch_size=5, shuffle=True) for i in b.tolist()]
    gk.manual_seed(7)
    b = [i for b in D.DataLoader(range(10), batch_size=5, shuffle=True) for i in b.tolist()]
    assert a == b and sorted(a) == list(range(10))


def test_random_sampler_replacement_and_weighted():
    gen = gk.Generator().manual_seed(0)
    s = list(D.RandomSampler(range(5), replacement=True, num_samples=70, generator=gen))
    assert len(s) == 70 and set(s) <= set(range(5))
    w = list(D.WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 50, generator=gen))
    assert set(w) <= {1, 3} and w.count(3) > w.count(1)
    w = list(D.WeightedRandomSampler([1.0, 1.0, 0.0, 3.0], 3, replacement=False, generator=gen))
    assert sorted(w) == [0, 1, 3]
    assert sorted(D.SubsetRandomSampler([4, 8, 9], generator=gen)) == [4, 8, 9]


def test_random_split_subset_concat():
    torch = _torch()
    gen = gk.Generator().manual_seed(3)
    parts = D.random_split(range(10), [0.5, 0.3, 0.2], generator=gen)
    tparts = torch.utils.data.random_split(range(10), [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [len(p) for p in tparts]
    assert sorted(sum((list(p) for p in parts), [])) == list(range(10))
    parts2 = D.random_split(range(10), [5, 3, 2], generator=gk.Generator().manual_seed(3))
    assert [list(p) for p in parts] == [list(p) for p in parts2]
    assert [len(p) for p in D.random_split(range(11), [0.5, 0.5])] == \
        [len(p) for p in torch.utils.data.random_split(range(11), [0.5, 0.5])]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        D.random_split(range(10), [3, 3])
    c = D.TensorDataset(gk.zeros(3)) + D.TensorDataset(gk.ones(2))
    assert len(c) == 5 and c[3][0].item() == 1.0 and c[-1][0].item() == 1.0
    sub = D.Subset(_tds(gk), [9, 0])
    assert sub[0][1].item() == 18 and len(sub) == 2
    st = D.StackDataset(x=range(3), y=range(10, 13))
    assert st[1] == {"x": 1, "y": 11}
    with pytest.raises(AssertionError, match="Size mismatch"):
        D.TensorDataset(gk.zeros(3), gk.zeros(4))


class _Range(D.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = D.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


def _tRange(torch, n):
    class R(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(start, n, step))

        def __len__(self):
            return n
    return R()


def test_iterable_dataset_matches_torch():
    torch = _torch()
    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        g = list(D.DataLoader(_Range(10), **kw))
        t = list(torch.utils.data.DataLoader(_tRange(torch, 10), **kw))
        assert _np(g) == _np(t), kw
        assert len(D.DataLoader(_Range(10), **kw)) == \
            len(torch.utils.data.DataLoader(_tRange(torch, 10), **kw))
    # workers: torch's interleaving of per-worker batches (torch uses processes)
    g = list(D.DataLoader(_Range(10), batch_size=3, num_workers=2))
    t = list(torch.utils.data.DataLoader(_tRange(torch, 10), batch_size=3, num_workers=2))
    assert _np(g) == _np(t)


def test_workers_keep_order_and_raise_errors():
    ds = _tds(gk)
    seen = []
    dl = D.DataLoader(ds, batch_size=3, num_workers=3, worker_init_fn=seen.append)
    assert [to_np(b[0]).tolist() for b in dl] == [to_np(b[0]).tolist()
                                                 for b in D.DataLoader(ds, batch_size=3)]
    assert sorted(seen) == [0, 1, 2]

    class Bad(D.Dataset):
        def __getitem__(self, i):
            if i == 4:
                raise KeyError("sample 4 is broken")
            return i

        def __len__(self):
            return 8
    with pytest.raises(KeyError, match="sample 4"):
        list(D.DataLoader(Bad(), batch_size=2, num_workers=2))
    it = iter(D.DataLoader(ds, batch_size=1, num_workers=2))
    next(it)
    it.close()                         # abandoning an epoch stops the workers


def test_argument_errors_match_torch():
    torch = _torch()
    ds_g, ds_t = list(range(4)), list(range(4))
    for kw in (dict(sampler=[0], shuffle=True), dict(batch_sampler=[[0]], batch_size=2),
               dict(batch_size=None, drop_last=True), dict(num_workers=-1)):
        with pytest.raises(ValueError) as eg:
            D.DataLoader(ds_g, **kw)
        with pytest.raises(ValueError) as et:
            torch.utils.data.DataLoader(ds_t, **kw)
        assert str(eg.value).split(";")[0][:30] == str(et.value).split(";")[0][:30]
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        D.DataLoader(_Range(3), shuffle=True)


def test_loader_device_argument(device):
    dl = D.DataLoader(D.TensorDataset(gk.arange(4).float()), batch_size=2, device=device)
    (b,) = next(iter(dl))
    assert b.device == device or str(b.device).startswith(device)
    assert to_np(b).tolist() == [0.0, 1.0]


def test_generator_api():
    g = gk.Generator().manual_seed(5)
    assert g.initial_seed() == 5
    st = g.get_state()
    a = g.randperm(6)
    g.set_state(st)
    assert g.randperm(6) == a and sorted(a) == list(range(6))
    gk.manual_seed(1)
    s1 = gk.Generator().initial_seed()
    gk.manual_seed(1)
    assert gk.Generator().initial_seed() == s1


def _train_script(lib, X, Y, W):
    """A PyTorch-style training script, run unchanged on gradkit and on torch."""
    nn, F = lib.nn, lib.nn.functional
    data = lib.utils.data
    ds = data.TensorDataset(lib.tensor(X), lib.tensor(Y))
    loader = data.DataLoader(ds, batch_size=16, shuffle=False, drop_last=False)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.LeakyReLU(0.1), nn.Dropout(0.0),
                          nn.Linear(16, 3))
    with lib.no_grad():
        for p, w in zip(model.parameters(), W):
            p.copy_(lib.tensor(w))
    model.double()
    opt = lib.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.5)
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    crit = nn.CrossEntropyLoss(label_smoothing=0.05)
    losses = []
    for epoch in range(2):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = crit(model(xb), yb) + 0.01 * F.smooth_l1_loss(model(xb)[:, 0], xb[:, 0, 0])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with lib.inference_mode():
            acc = (model(lib.tensor(X)).argmax(1) == lib.tensor(Y)).double().mean().item()
        losses.append(acc)
    return losses


def test_training_script_matches_torch():
    torch = _torch()
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 2, 4))
    Y = rng.integers(0, 3, 40)
    W = [rng.standard_normal(s) * 0.3 for s in [(16, 8), (16,), (3, 16), (3,)]]
    g = _train_script(gk, X, Y, W)
    t = _train_script(torch, X, Y, W)
    np.testing.assert_allclose(g, t, rtol=1e-10)


def test_distributed_sampler_through_the_loader_matches_torch():
    torch = _torch()
    for rank in (0, 1, 2):
        g = D.DataLoader(_tds(gk), batch_size=2,
                         sampler=D.DistributedSampler(_tds(gk), 3, rank, shuffle=False))
        t = torch.utils.data.DataLoader(
            _tds(torch), batch_size=2,
            sampler=torch.utils.data.DistributedSampler(_tds(torch), 3, rank, shuffle=False))
        assert _np(list(g)) == _np(list(t)) and len(g) == len(t)


def test_randperm_takes_a_generator(device):
    a = gk.randperm(7, generator=gk.Generator().manual_seed(4), device=device)
    b = gk.randperm(7, generator=gk.Generator().manual_seed(4), device=device)
    assert a.device == device and a.dtype == gk.int64
    assert to_np(a).tolist() == to_np(b).tolist() and sorted(to_np(a).tolist()) == list(range(7))
    with pytest.raises(TypeError, match="gk.Generator"):
        gk.randperm(3, generator=object())
