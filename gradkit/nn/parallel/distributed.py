"""``gk.nn.parallel.DistributedDataParallel``: data-parallel training, as torch's.

Each rank (process) holds a replica of the module and runs forward and backward
on its own shard of the batch; DDP averages the gradients over the ranks during
backward, so after ``loss.backward()`` every rank holds the gradient of the
mean loss over the whole (global) batch and the optimizers step in lockstep.

How (as torch's Reducer): the parameters are split into buckets of about
``bucket_cap_mb`` (25 MB; the first 1 MB so communication starts early), in
reverse order of registration, which is roughly the order backward produces
their gradients. A post-accumulate-grad hook on each parameter
(``Tensor.register_post_accumulate_grad_hook``, called by the engine as soon
as that parameter's gradient is complete) copies the gradient into its
bucket's flat buffer; when a bucket is full it is all-reduced asynchronously
while backward goes on; when the last bucket has started, DDP waits for all of
them and writes the averaged gradients back into ``.grad``. Buckets start in
index order on every rank, so ranks always issue the same collectives in the
same order.
"""
import contextlib
import time

from ... import distributed as dist
from ...graph import mode as _grad_mode, Node
from ...creation import tensor as _tensor
from ...ops.core import const
from ...tensor import Tensor, GradkitError
from ..module import Module

_MB = 1024 * 1024
_FIRST_BUCKET_BYTES = 1 * _MB   # torch's dist._DEFAULT_FIRST_BUCKET_BYTES


class _Bucket:
    __slots__ = ("B", "dtype", "params", "offsets", "flat", "views", "pending", "ready", "work",
                 "nbytes")

    def __init__(self, B, dtype):
        self.B = B
        self.dtype = dtype
        self.params = []     # indices into DDP._params
        self.offsets = []    # (start, numel) in flat
        self.flat = None
        self.pending = 0
        self.ready = None
        self.work = None
        self.nbytes = 0


def _tensors_in(obj, out):
    """The tensors in a forward's output (nested tuples, lists, dicts)."""
    if obj.__class__ is Tensor:
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _tensors_in(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _tensors_in(x, out)
    return out


def _reachable_leaves(outputs):
    """ids of the leaf tensors that the graphs of ``outputs`` reach."""
    found = set()
    seen = set()
    stack = []
    for t in outputs:
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t.requires_grad:
            found.add(id(t))
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for e in n.edges:
            if e is None:
                continue
            t = e[0]
            if t.__class__ is Node:
                stack.append(t)
            else:
                t = t if t.__class__ is Tensor else t()   # a weak leaf edge
                if t is not None:
                    found.add(id(t))
    return found


def _broadcast_coalesced(tensors, src):
    """Broadcast many tensors from ``src`` with one collective per (device, dtype)."""
    groups = {}
    for t in tensors:
        groups.setdefault((t._B, t.dtype_name), []).append(t)
    me = dist.get_rank()
    for (B, _), ts in groups.items():
        total = sum(t.numel() for t in ts)
        flat = B.empty((total,), ts[0].array.dtype)
        o = 0
        for t in ts:
            n = t.numel()
            B.setitem(flat, slice(o, o + n), B.reshape(t.array, (n,)))
            o += n
        dist.broadcast(const(B, flat), src)
        if me == src:
            continue
        o = 0
        for t in ts:
            n = t.numel()
            B.setitem(t.array, Ellipsis, B.reshape(flat[o:o + n], t.array.shape))
            t._vc[0] += 1
            o += n


class DistributedDataParallel(Module):
    """``DistributedDataParallel(module, ...)`` (as ``torch.nn.parallel.
    DistributedDataParallel``): wraps ``module`` for data-parallel training over
    the ranks of ``gradkit.distributed`` (call ``init_process_group`` first).

    At construction it checks that every rank has the same parameters and
    copies rank 0's parameters and buffers to all ranks. ``forward`` runs the
    module (after broadcasting rank 0's buffers when ``broadcast_buffers``);
    backward then leaves in every parameter's ``.grad`` the gradient averaged
    over the ranks. ``no_sync()`` skips that for gradient accumulation.

    Args: ``module``; ``device_ids``/``output_device`` accepted for torch
    compatibility (the module must already be on its device: one device per
    process); ``broadcast_buffers=True``; ``bucket_cap_mb=25``;
    ``find_unused_parameters=False`` (True: parameters that the forward's output
    does not reach are marked ready at the end of forward, so backward does not
    wait for them; a parameter unused on every rank keeps ``.grad`` as it was);
    ``gradient_as_bucket_view=False`` (True: after the first synced backward each
    ``.grad`` is a view into its bucket, which saves a copy per step; a ``.grad``
    kept from an earlier step then changes with the next one, as in torch);
    ``static_graph`` accepted (no effect). ``process_group`` must be None.
    ``.module`` is the wrapped module;
    ``state_dict`` keys start with ``module.`` as in torch. Devices: cpu (MPI),
    cuda (NCCL).
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not dist.is_initialized():
            raise ValueError("gradkit.nn.parallel.DistributedDataParallel: Default process group "
                             "has not been initialized, please make sure to call "
                             "init_process_group.")
        if not isinstance(module, Module):
            raise TypeError(f"gradkit.nn.parallel.DistributedDataParallel: expected a Module, "
                            f"got {type(module).__name__}")
        if process_group is not None:
            raise GradkitError("gradkit.nn.parallel.DistributedDataParallel: only the default "
                               "process group is supported (process_group=None)")
        self.module = module
        d = self.__dict__
        d["gradient_as_bucket_view"] = bool(gradient_as_bucket_view)
        d["broadcast_buffers"] = bool(broadcast_buffers)
        d["find_unused_parameters"] = bool(find_unused_parameters)
        d["static_graph"] = bool(static_graph)
        d["require_backward_grad_sync"] = True
        d["world_size"] = dist.get_world_size()
        cap = 25 if bucket_cap_mb is None else float(bucket_cap_mb)
        d["bucket_bytes_cap"] = int(cap * _MB)
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        d["_params"] = [p for _, p in named]
        d["_names"] = [n for n, _ in named]
        devices = {p._B.device_str for p in self._params}
        if len(devices) > 1:
            raise GradkitError(f"gradkit.nn.parallel.DistributedDataParallel: the module's "
                               f"parameters are on several devices {sorted(devices)}; DDP needs "
                               "one device per process (move the module with .to(device) first)")
        self._verify_same_parameters()
        # every rank starts from rank 0's weights and buffers
        _broadcast_coalesced([p for _, p in module.named_parameters()]
                             + list(module.buffers()), 0)
        self._build_buckets()
        d["_hook_handles"] = [p.register_post_accumulate_grad_hook(self._make_hook(i))
                              for i, p in enumerate(self._params)]
        d["_sync_now"] = False       # this backward all-reduces (decided at forward)
        d["_reduced"] = False        # ... and it has (a further gradient is an error)
        d["_next_bucket"] = 0
        d["_used"] = None
        # seconds, summed over steps: communication in flight while backward still
        # computed (from the first bucket's start to the end of backward's compute),
        # and the wait for it afterwards
        d["stats"] = {"buckets": len(self._buckets), "comm_overlapped_s": 0.0,
                      "comm_wait_s": 0.0}
        d["_t_first_launch"] = None

    # ------------------------------------------------------------ set-up
    def _verify_same_parameters(self):
        n = self.world_size
        # shapes and dtypes as tuples of ints: their hash is the same in every process
        codes = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8")
        shapes = [tuple(p.shape) + (codes.index(p.dtype_name),) for p in self._params]
        sig = sum((i + 1) * (hash(s) % 1000003) for i, s in enumerate(shapes)) % (2 ** 61)
        mine = _tensor([len(shapes), sum(p.numel() for p in self._params), sig])
        every = _tensor([0] * (3 * n)).reshape(n, 3)
        dist.all_gather_into_tensor(every, mine)
        rows = every.tolist()
        if any(r != rows[0] for r in rows):
            lines = "\n".join(f"  rank {r}: {row[0]} parameters, {row[1]} elements"
                              for r, row in enumerate(rows))
            raise GradkitError("gradkit.nn.parallel.DistributedDataParallel: the ranks' modules "
                               f"have different parameters (count, shapes or order):\n{lines}\n"
                               "Build the same model on every rank.")

    def _build_buckets(self):
        buckets = []
        open_ = {}
        cap = min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap)
        loc = [None] * len(self._params)
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            key = (p._B, p.dtype_name)
            b = open_.get(key)
            if b is None:
                b = open_[key] = _Bucket(p._B, p.array.dtype)
                buckets.append(b)
            n = p.numel()
            start = sum(k for _, k in b.offsets)
            loc[i] = (buckets.index(b), len(b.params))
            b.params.append(i)
            b.offsets.append((start, n))
            b.nbytes += n * p.array.itemsize
            if b.nbytes >= cap:
                del open_[key]
                cap = self.bucket_bytes_cap
        for b in buckets:
            total = sum(k for _, k in b.offsets)
            b.flat = b.B.zeros((total,), b.dtype)
            b.views = [b.B.reshape(b.flat[s:s + n], self._params[i].array.shape)
                       for i, (s, n) in zip(b.params, b.offsets)]
        d = self.__dict__
        d["_buckets"] = buckets
        d["_loc"] = loc

    # ------------------------------------------------------------ forward
    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward accumulates gradients locally without communicating;
        the first backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.__dict__["require_backward_grad_sync"] = False
        try:
            yield
        finally:
            self.__dict__["require_backward_grad_sync"] = old

    def forward(self, *inputs, **kwargs):
        sync = bool(_grad_mode.enabled and self.require_backward_grad_sync)
        if sync:
            self._prepare_for_backward()
        self.__dict__["_sync_now"] = sync
        self.__dict__["_reduced"] = False
        if self.broadcast_buffers and self.world_size > 1:
            bufs = list(self.module.buffers())
            if bufs:
                _broadcast_coalesced(bufs, 0)
        out = self.module(*inputs, **kwargs)
        if sync and self.find_unused_parameters:
            reached = _reachable_leaves(_tensors_in(out, []))
            for i, p in enumerate(self._params):
                if id(p) not in reached:
                    self._mark_ready(i, None)
        return out

    def _prepare_for_backward(self):
        if any(b.ready is not None and any(b.ready) for b in self._buckets):
            unready = [self._names[i] for b in self._buckets for k, i in enumerate(b.params)
                       if b.ready is not None and not b.ready[k]]
            raise GradkitError(
                "gradkit.nn.parallel.DistributedDataParallel: Expected to have finished reduction "
                "in the prior iteration before starting a new one. This error indicates that "
                "your module has parameters that were not used in producing loss. You can "
                "enable unused parameter detection by passing the keyword argument "
                "`find_unused_parameters=True` to DistributedDataParallel, and by making sure "
                "all `forward` function outputs participate in calculating loss. Parameters "
                f"that got no gradient: {unready}")
        for b in self._buckets:
            b.pending = len(b.params)
            b.ready = [False] * len(b.params)
            b.work = None
        d = self.__dict__
        d["_next_bucket"] = 0
        d["_used"] = [False] * len(self._params) if self.find_unused_parameters else None

    # ------------------------------------------------------------ backward
    def _make_hook(self, i):
        def hook(p):
            if self._sync_now:
                self._mark_ready(i, p)
            elif self._reduced:
                raise GradkitError(
                    f"gradkit.nn.parallel.DistributedDataParallel: parameter {self._names[i]!r} "
                    "received a gradient after this iteration's gradients were already "
                    "averaged (a second backward through the same forward); run the DDP "
                    "module's forward again before each backward, or use no_sync()")
        return hook

    def _mark_ready(self, i, p):
        bi, k = self._loc[i]
        b = self._buckets[bi]
        if b.ready[k]:
            raise GradkitError(
                f"gradkit.nn.parallel.DistributedDataParallel: parameter {self._names[i]!r} "
                "received its gradient twice in one iteration (a second backward through the "
                "same forward, or a parameter used in two separate backward calls); call the "
                "DDP module's forward again before each backward, or use no_sync()")
        start, n = b.offsets[k]
        if p is not None and p.grad is not None:
            if p.grad.array is not b.views[k]:     # a bucket view already holds it
                b.B.setitem(b.flat, slice(start, start + n), b.B.reshape(p.grad.array, (n,)))
            if self._used is not None:
                self._used[i] = True
        else:
            b.B.setitem(b.flat, slice(start, start + n), 0)
        b.ready[k] = True
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()
        else:
            self._progress()

    def _progress(self):
        """Let MPI move the outstanding buckets along (it progresses inside calls)."""
        for b in self._buckets[:self._next_bucket]:
            if b.B.type == "cuda":       # joining would make backward's stream wait
                break
            if b.work is not None and not b.work.is_completed():
                break

    def _launch_ready(self):
        bs = self._buckets
        j = self._next_bucket
        if j == 0 and bs and bs[0].pending == 0:
            self.__dict__["_t_first_launch"] = time.perf_counter()
        while j < len(bs) and bs[j].pending == 0:
            b = bs[j]
            b.work = dist._all_reduce_bucket(const(b.B, b.flat))
            j += 1
        self.__dict__["_next_bucket"] = j
        if j == len(bs):
            self._finalize()

    def _finalize(self):
        t0 = time.perf_counter()
        for b in self._buckets:
            b.work.wait()
        self.stats["comm_wait_s"] += time.perf_counter() - t0
        if self._t_first_launch is not None:
            self.stats["comm_overlapped_s"] += t0 - self._t_first_launch
        used_anywhere = None
        if self._used is not None:
            u = _tensor([int(x) for x in self._used], dtype="int32")
            dist.all_reduce(u, dist.ReduceOp.MAX)
            used_anywhere = u.tolist()
        inv = 1.0 / self.world_size
        for b in self._buckets:
            B = b.B
            if self.world_size > 1:
                B.imul(b.flat, inv)
            for k, i in enumerate(b.params):
                p = self._params[i]
                view = b.views[k]
                if used_anywhere is not None and not used_anywhere[i]:
                    continue              # unused on every rank: .grad stays as it was
                g = p.grad
                if self.gradient_as_bucket_view:
                    if g is None or g.array is not view:
                        p.grad = const(B, view)
                    else:
                        g._vc[0] += 1
                elif g is None or g.grad_fn is not None or g._B is not B:
                    p.grad = const(B, B.copy(view))
                else:
                    B.setitem(g.array, Ellipsis, view)
                    g._vc[0] += 1
            b.work = None
        d = self.__dict__
        d["_sync_now"] = False
        d["_reduced"] = True
        for b in self._buckets:
            b.ready = None

    def extra_repr(self):
        return f"world_size={self.world_size}, buckets={len(self._buckets)}"
