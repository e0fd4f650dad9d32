"""Samplers (as torch.utils.data.sampler): which indices, in which order,
and how they are grouped into batches. Random ones draw from a
``gk.Generator`` (default: a fresh one seeded from ``gk.manual_seed``'s
generator at each pass, so ``gk.manual_seed(s)`` makes shuffles repeatable)."""
import bisect
import itertools

from ...generator import Generator
from ...tensor import Tensor
from .dataset import _randperm

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


class Sampler:
    """Base class: subclasses define ``__iter__`` (indices) and usually ``__len__``."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


def _generator(gen):
    return gen if gen is not None else Generator()


def _randint(gen, high, k):
    ri = getattr(gen, "randint", None)
    if ri is not None and not (type(gen).__module__ or "").startswith("torch"):
        return ri(high, k)
    import torch  # optional: a torch.Generator was passed
    return torch.randint(high=high, size=(k,), dtype=torch.int64, generator=gen).tolist()


class RandomSampler(Sampler):
    """A random order of the dataset's indices (each once per pass), or with
    ``replacement=True`` ``num_samples`` independent uniform draws."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        gen = _generator(self.generator)
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from _randint(gen, n, 32)
            yield from _randint(gen, n, self.num_samples % 32)
        else:
            for _ in range(self.num_samples // n):
                yield from _randperm(gen, n)
            yield from _randperm(gen, n)[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in _randperm(_generator(self.generator), len(self.indices)):
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to
    ``weights`` (with or without replacement)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = weights.tolist() if weights.__class__ is Tensor else list(weights)
        if any(x < 0 for x in w) or not any(x > 0 for x in w):
            raise ValueError("weights must be non-negative with at least one positive value")
        if not replacement and num_samples > sum(1 for x in w if x > 0):
            raise RuntimeError("WeightedRandomSampler: cannot draw more samples than there "
                               "are positive weights without replacement")
        self.weights = [float(x) for x in w]
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        gen = _generator(self.generator)
        w = self.weights
        if self.replacement:  # inverse CDF: one bisection per draw
            cum = list(itertools.accumulate(w))
            out = []
            for u in gen.random(self.num_samples):
                i = min(bisect.bisect_right(cum, u * cum[-1]), len(w) - 1)
                while w[i] == 0:  # never land on a zero weight at a float edge
                    i -= 1
                out.append(i)
            return iter(out)
        # without replacement: the k largest keys u ** (1 / w) (Efraimidis-Spirakis),
        # distributed as k successive weighted draws without putting back
        keys = [(u ** (1.0 / wi) if wi > 0 else -1.0, i)
                for i, (u, wi) in enumerate(zip(gen.random(len(w)), w))]
        keys.sort(reverse=True)
        return iter([i for _, i in keys[:self.num_samples]])

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last
    one shorter unless ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        n = len(self.sampler)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size
