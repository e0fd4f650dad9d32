"""``DataLoader`` (as torch.utils.data.DataLoader): batches of gradkit
tensors from a map-style or iterable dataset.

Differences from torch, on purpose:
- ``num_workers > 0`` runs the workers as threads in this process (NumPy
  releases the GIL in its kernels, and nothing is pickled), prefetching
  ``prefetch_factor`` batches per worker and yielding them in order;
  ``get_worker_info()`` and ``worker_init_fn`` work as in torch.
- ``device=`` (gradkit's addition) moves each collated batch's tensors to
  that device; ``pin_memory`` is accepted and ignored.
- ``generator`` is a ``gk.Generator`` (a torch.Generator works too).
"""
import itertools
import queue
import threading

from ...generator import default_seed
from ...tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info"]

_local = threading.local()


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker: ``id``,
    ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, "
                f"seed={self.seed}, dataset={type(self.dataset).__name__})")


def get_worker_info():
    """The current worker's ``WorkerInfo``, or None in the main thread."""
    return getattr(_local, "info", None)


class _InfiniteConstantSampler:
    def __iter__(self):
        while True:
            yield None


def _to_device(batch, device):
    if batch.__class__ is Tensor:
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)({k: _to_device(v, device) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class DataLoader:
    """``DataLoader(dataset, batch_size=1, shuffle=None, sampler=None,
    batch_sampler=None, num_workers=0, collate_fn=None, pin_memory=False,
    drop_last=False, timeout=0, worker_init_fn=None, multiprocessing_context=None,
    generator=None, *, prefetch_factor=None, persistent_workers=False,
    pin_memory_device="", in_order=True, device=None)``; iterate it for batches.
    Argument checks and their messages are torch's."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True, device=None):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             "let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self.device = device
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if isinstance(shuffle, bool) and shuffle:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    # ------------------------------------------------------------ iteration
    def _fetch(self, it_ds, index):
        """One batch: from the dataset iterator (iterable) or by indices."""
        if self._iterable:
            if self._auto_collation:
                data = list(itertools.islice(it_ds, len(index) if index else self.batch_size))
                if not data or (self.drop_last and len(data) < self.batch_size):
                    raise StopIteration
            else:
                data = next(it_ds)
        elif self._auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            data = getitems(index) if callable(getitems) else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        batch = self.collate_fn(data)
        return _to_device(batch, self.device) if self.device is not None else batch

    def __iter__(self):
        if self.num_workers == 0:
            return self._single()
        return self._threaded()

    def _single(self):
        it_ds = iter(self.dataset) if self._iterable else None
        if self._iterable:
            while True:
                try:
                    yield self._fetch(it_ds, [None] * self.batch_size
                                      if self._auto_collation else None)
                except StopIteration:
                    return
        for index in self._index_sampler:
            yield self._fetch(None, index)

    def _threaded(self):
        """Workers as threads; batches come back in sampler order."""
        n = self.num_workers
        base_seed = default_seed() if self.generator is None else (
            self.generator.initial_seed() if hasattr(self.generator, "initial_seed") else 0)
        stop = threading.Event()
        outs = [queue.Queue(maxsize=self.prefetch_factor) for _ in range(n)]
        tasks = [queue.Queue() for _ in range(n)]
        done = object()

        def put(q, item):
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def worker(wid):
            _local.info = WorkerInfo(wid, n, base_seed + wid, self.dataset)
            try:
                if self.worker_init_fn is not None:
                    self.worker_init_fn(wid)
                it_ds = iter(self.dataset) if self._iterable else None
                while not stop.is_set():
                    if self._iterable:
                        index = [None] * self.batch_size if self._auto_collation else None
                    else:
                        index = tasks[wid].get()
                        if index is done:
                            break
                    try:
                        item = ("ok", self._fetch(it_ds, index))
                    except StopIteration:
                        break
                    put(outs[wid], item)
                put(outs[wid], ("end", None))
            except BaseException as e:  # re-raised in the main thread
                put(outs[wid], ("err", e))
            finally:
                _local.info = None

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(n)]
        for t in threads:
            t.start()
        timeout = self.timeout if self.timeout > 0 else None
        try:
            if self._iterable:
                live = list(range(n))
                while live:
                    for w in list(live):
                        kind, val = outs[w].get(timeout=timeout)
                        if kind == "end":
                            live.remove(w)
                        elif kind == "err":
                            raise val
                        else:
                            yield val
                return
            for k, index in enumerate(self._index_sampler):
                tasks[k % n].put(index)
            for w in range(n):
                tasks[w].put(done)
            total = len(self._index_sampler)
            for k in range(total):
                kind, val = outs[k % n].get(timeout=timeout)
                if kind == "err":
                    raise val
                yield val
        except queue.Empty:
            raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") from None
        finally:
            stop.set()
            for w in range(n):
                tasks[w].put(done)
