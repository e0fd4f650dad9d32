"""``gradkit.utils.data`` (as ``torch.utils.data``): datasets, samplers,
``DataLoader`` and ``default_collate``, producing gradkit tensors. Code
written for ``torch.utils.data`` ports by changing its import line.
``DistributedSampler`` lives in ``gradkit.utils.data.distributed`` (loaded on
first use)."""
from .dataset import (Dataset, IterableDataset, TensorDataset, Subset, ConcatDataset,
                      ChainDataset, StackDataset, random_split)
from .sampler import (Sampler, SequentialSampler, RandomSampler, SubsetRandomSampler,
                      WeightedRandomSampler, BatchSampler)
from .collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "ChainDataset", "StackDataset", "random_split", "Sampler", "SequentialSampler",
           "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
           "default_collate", "default_convert", "DataLoader", "get_worker_info"]


def __getattr__(name):
    if name == "DistributedSampler":
        from .distributed import DistributedSampler
        return DistributedSampler
    raise AttributeError(f"module 'gradkit.utils.data' has no attribute {name!r}")
