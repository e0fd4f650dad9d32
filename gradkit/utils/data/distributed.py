"""``DistributedSampler``: each rank of a data-parallel job gets its own share of
a dataset's indices (as ``torch.utils.data.distributed.DistributedSampler``)."""
import math
import random

from ... import distributed as dist


class DistributedSampler:
    """``DistributedSampler(dataset, num_replicas=None, rank=None, shuffle=True,
    seed=0, drop_last=False)``: yields the indices of ``dataset`` (anything with
    ``len()``) that belong to ``rank`` out of ``num_replicas`` ranks (default:
    ``gradkit.distributed``'s rank and world size).

    Every rank gets ``len(sampler)`` indices. Without ``drop_last`` the index
    list is padded by repeating its start until it divides evenly (a few samples
    then appear twice in an epoch); with ``drop_last`` the tail is dropped.
    With ``shuffle``, the order is a permutation seeded by ``seed + epoch``, the
    same on every rank, so the ranks' shares never overlap; call
    ``set_epoch(epoch)`` at the start of each epoch to get a new order. The
    ranks take indices round-robin from that list: rank r gets positions r,
    r + num_replicas, ... as torch's does. Not differentiable; device-free.
    Difference from torch: the permutation comes from Python's ``random``
    (identical on every machine), not from torch's generator, so the shuffled
    order is not torch's.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError(
                    "gradkit.utils.data.distributed.DistributedSampler: pass num_replicas and "
                    "rank, or call gradkit.distributed.init_process_group() first")
            if num_replicas is None:
                num_replicas = dist.get_world_size()
            if rank is None:
                rank = dist.get_rank()
        num_replicas, rank = int(num_replicas), int(rank)
        if num_replicas < 1:
            raise ValueError(f"gradkit.utils.data.distributed.DistributedSampler: num_replicas "
                             f"must be at least 1, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = bool(drop_last)
        n = len(dataset)
        if self.drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = bool(shuffle)
        self.seed = int(seed)

    def __iter__(self):
        n = len(self.dataset)
        indices = list(range(n))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(indices)
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            elif indices:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Use ``epoch`` in the shuffle's seed (call it before each epoch)."""
        self.epoch = int(epoch)
