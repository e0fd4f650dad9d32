"""Datasets (as torch.utils.data.dataset): ``Dataset``, ``IterableDataset``,
``TensorDataset``, ``Subset``, ``ConcatDataset``, ``ChainDataset``,
``StackDataset`` and ``random_split``."""
import bisect
import math
import warnings

from ...generator import Generator
from ...tensor import Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "ChainDataset", "StackDataset", "random_split"]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` (and
    usually ``__len__``); ``a + b`` concatenates."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is an iterable of samples: subclasses define ``__iter__``.
    With ``num_workers > 0`` each worker iterates its own copy; split the work
    with ``get_worker_info()`` (as torch)."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are ``(t[0][i], t[1][i], ...)``: the tensors are indexed along
    their first dimension, which must agree."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("gradkit.utils.data.TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if t.__class__ is not Tensor:
                raise TypeError(f"gradkit.utils.data.TensorDataset: argument {i} is a "
                                f"{type(t).__name__}, not a Tensor (use gk.as_tensor)")
            if t.ndim == 0:
                raise ValueError("gradkit.utils.data.TensorDataset: tensors must have a first "
                                 "(sample) dimension, got a 0-d tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise AssertionError("Size mismatch between tensors: first dimensions are "
                                 + ", ".join(str(t.shape[0]) for t in tensors))
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class StackDataset(Dataset):
    """Samples of several datasets of one length together: ``StackDataset(a, b)``
    gives ``(a[i], b[i])``, ``StackDataset(x=a, y=b)`` gives ``{"x": a[i], "y": b[i]}``."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via "
                             "``kwargs``) like input/output, but both types are given.")
        self.datasets = args if args else kwargs
        items = list(args) if args else list(kwargs.values())
        if not items:
            raise ValueError("At least one dataset should be passed")
        n = len(items[0])
        if any(len(d) != n for d in items):
            raise ValueError("Size mismatch between datasets")
        self._length = n

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


class ConcatDataset(Dataset):
    """The datasets one after another (map-style; indices run on through them)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        i = bisect.bisect_right(self.cumulative_sizes, idx)
        start = 0 if i == 0 else self.cumulative_sizes[i - 1]
        return self.datasets[i][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """``dataset`` seen through ``indices``: ``Subset(d, idx)[i] == d[idx[i]]``."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping ``Subset``s of the given lengths
    (or fractions summing to 1: the remainder goes round-robin to the first
    splits, as torch). The permutation comes from ``generator`` (a
    ``gk.Generator``; default: one seeded from ``gk.manual_seed``'s generator)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(int(math.floor(n * frac)))
        remainder = n - sum(sizes)
        for i in range(remainder):
            sizes[i % len(sizes)] += 1
        for i, s in enumerate(sizes):
            if s == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.", stacklevel=2)
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    gen = generator if generator is not None else Generator()
    perm = _randperm(gen, n)
    out, offset = [], 0
    for k in lengths:
        out.append(Subset(dataset, perm[offset:offset + k]))
        offset += k
    return out


def _randperm(gen, n):
    """A permutation of range(n) as a list, from a gk.Generator (or any object
    with ``randperm(n)`` returning a list, e.g. a torch.Generator via torch)."""
    rp = getattr(gen, "randperm", None)
    if rp is not None:
        return list(rp(n))
    mod = type(gen).__module__ or ""
    if mod.startswith("torch"):
        import torch  # optional: only when the caller passed a torch.Generator
        return torch.randperm(n, generator=gen).tolist()
    raise TypeError(f"gradkit.utils.data: generator must be a gradkit.Generator, got "
                    f"{type(gen).__name__}")
