"""DistributedSampler without MPI (num_replicas and rank given): torch's padding,
drop_last and round-robin split; every rank's share together is the dataset."""
import pytest

from gradkit.utils.data.distributed import DistributedSampler


def shares(size, n, epoch=3, **kw):
    out = []
    for r in range(n):
        s = DistributedSampler(range(size), num_replicas=n, rank=r, **kw)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


def test_torch_layout_without_shuffle():
    # torch: 10 items over 3 ranks pads with the first 2 items, then deals round-robin
    assert shares(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    assert shares(10, 3, shuffle=False, drop_last=True) == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    # more padding than data: the list repeats
    assert shares(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]


@pytest.mark.parametrize("size", [1, 7, 12, 13, 100])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_partition_is_exact(size, n, shuffle):
    got = shares(size, n, shuffle=shuffle, seed=11)
    assert len({len(s) for s in got}) == 1
    flat = [i for s in got for i in s]
    assert set(flat) == set(range(size))
    assert len(flat) == n * -(-size // n)                     # padded to a multiple of n
    dropped = shares(size, n, shuffle=shuffle, seed=11, drop_last=True)
    flat = [i for s in dropped for i in s]
    assert len(flat) == len(set(flat)) == n * (size // n)     # disjoint, tail dropped


def test_shuffle_depends_on_seed_and_epoch_only():
    a = DistributedSampler(range(50), num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(range(50), num_replicas=2, rank=0, seed=1)
    assert list(a) == list(b) and list(a) != list(range(0, 50, 2))
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    other = DistributedSampler(range(50), num_replicas=2, rank=1, seed=1)
    other.set_epoch(1)
    assert sorted(list(a) + list(other)) == list(range(50))
    assert list(DistributedSampler(range(50), num_replicas=2, rank=0, seed=2)) != first


def test_errors():
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(RuntimeError, match="init_process_group"):
        import gradkit.distributed as dist
        if dist.is_initialized():
            raise RuntimeError("init_process_group (already initialized in this process)")
        DistributedSampler(range(5))
