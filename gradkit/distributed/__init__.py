"""``gradkit.distributed``: data-parallel communication, as ``torch.distributed``.

``import gradkit.distributed as dist``. Processes are started by MPI
(``mpiexec -n 4 python train.py``, ``python -m gradkit.distributed.run -n 4
train.py``, or a cluster scheduler); ``dist.init_process_group()`` then needs no
arguments: rank and world size come from MPI. Two backends, as torch's:

- ``"mpi"`` (the default): CPU tensors, through mpi4py's buffer interface on
  the NumPy arrays themselves (no pickling, no copies for contiguous tensors).
- ``"nccl"``: CUDA tensors through NCCL (CuPy's ``cupy.cuda.nccl``), on the
  tensor's device and current stream, with no host round trip; rank 0 makes
  the NCCL unique id and MPI sends it to everyone; each rank uses the GPU
  ``local_rank % device_count`` unless ``device_id`` says otherwise. CPU
  tensors still go through MPI in an "nccl" group.

Collectives work in place on gradkit tensors, like torch's: ``all_reduce``,
``broadcast``, ``all_gather``, ``all_gather_into_tensor``,
``reduce_scatter_tensor``, ``barrier``. They are not differentiable (no graph
is recorded) and bump the tensor's version. With ``async_op=True`` they return a
``Work`` whose ``wait()`` completes them. Every blocking wait has a timeout (the
group's, 30 minutes by default, or ``timeout=`` on the call: a gradkit
extension) and raises ``DistTimeoutError`` naming the rank and the collective.

``GRADKIT_DISTRIBUTED_DEBUG=1`` makes every collective first check that all
ranks called the same one with the same shape, dtype, op and root, and raise a
clear error listing each rank's call if not (it costs one extra small message).

Once the group exists (and the job has more than one rank), an uncaught
exception on any rank prints that rank's traceback and aborts the whole job
with ``MPI.COMM_WORLD.Abort``, so the other ranks never hang waiting for it.
"""
import enum
import importlib.util
import os
from datetime import timedelta

from ..backends import nccl_comm
from ..errors import GradkitError
from ..tensor import Tensor
from ._group import (ProcessGroup, Work, DistError, DistBackendError, DistTimeoutError,
                     _seconds)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size",
           "get_backend", "get_node_local_rank", "barrier", "all_reduce", "broadcast",
           "all_gather", "all_gather_into_tensor", "reduce_scatter_tensor", "ReduceOp",
           "Work", "DistError", "DistBackendError", "DistTimeoutError", "group"]

#: torch's defaults: 30 minutes for the CPU backends, 10 for NCCL
default_pg_timeout = timedelta(minutes=30)
default_pg_nccl_timeout = timedelta(minutes=10)


class ReduceOp(enum.Enum):
    """Reduction ops (as ``torch.distributed.ReduceOp``). On bool tensors SUM and
    MAX are logical or, PRODUCT and MIN logical and; AVG needs a floating dtype."""
    SUM = "SUM"
    AVG = "AVG"
    PRODUCT = "PRODUCT"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"

    def __repr__(self):
        return f"ReduceOp.{self.name}"


class group:
    """``dist.group.WORLD``: the default group (the only one gradkit has)."""
    WORLD = None


_pg = None


def is_available():
    """True when mpi4py is installed (``pip install 'gradkit[mpi]'``)."""
    return importlib.util.find_spec("mpi4py") is not None


is_mpi_available = is_available


def is_nccl_available():
    """True when CuPy can load NCCL (the GPU backend)."""
    return nccl_comm.available()


def is_initialized():
    """Whether ``init_process_group`` has run (and the group is not destroyed)."""
    return _pg is not None


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Join the job's process group (as ``torch.distributed.init_process_group``).

    Args: ``backend`` "mpi" (default; CPU tensors) or "nccl" (CUDA tensors; CPU
    tensors still use MPI); ``timeout`` a ``timedelta`` or seconds for every
    blocking collective (default 30 min, NCCL 10 min); ``device_id`` (nccl) the
    GPU index or device, default ``local_rank % device_count``. ``world_size``
    and ``rank``, when given, must match MPI's (MPI assigns them; launch with
    ``mpiexec -n N``). ``init_method`` may be None or "env://" (rendezvous is MPI's);
    ``store``, ``group_name`` and ``pg_options`` are not supported. Returns None.
    """
    global _pg
    if _pg is not None:
        raise GradkitError("gradkit.distributed.init_process_group: trying to initialize the "
                           "default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend not in ("mpi", "nccl"):
        raise GradkitError(
            f"gradkit.distributed.init_process_group: unknown backend {backend!r}; gradkit has "
            "'mpi' (CPU tensors, through mpi4py) and 'nccl' (CUDA tensors, through CuPy); "
            "torch's 'gloo' corresponds to 'mpi'")
    if init_method not in (None, "env://"):
        raise GradkitError(
            f"gradkit.distributed.init_process_group: init_method={init_method!r} is not "
            "supported: MPI does the rendezvous; start the job with mpiexec -n N python "
            "train.py (or python -m gradkit.distributed.run -n N train.py)")
    if store is not None or pg_options is not None:
        raise GradkitError("gradkit.distributed.init_process_group: store and pg_options are "
                           "not supported (MPI does the rendezvous)")
    if timeout is None:
        timeout = default_pg_nccl_timeout if backend == "nccl" else default_pg_timeout
    pg = ProcessGroup(backend, _seconds(timeout), device_id)
    for name, want, got in (("world_size", world_size, pg.size), ("rank", rank, pg.rank)):
        if want is not None and int(want) >= 0 and int(want) != got:
            pg.close()
            raise GradkitError(
                f"gradkit.distributed.init_process_group: {name}={want} was passed but MPI "
                f"says {got}; MPI assigns ranks: leave {name} out, or launch with "
                f"mpiexec -n {world_size if name == 'world_size' else '<N>'}")
    pg.install_excepthook()
    _pg = pg


def destroy_process_group(group=None):
    """Leave the process group (the MPI library itself stays up until exit)."""
    global _pg
    if _pg is not None:
        pg, _pg = _pg, None
        pg.close()


def _get(grp, what):
    if _pg is None:
        raise ValueError(f"gradkit.distributed.{what}: Default process group has not been "
                         "initialized, please make sure to call init_process_group.")
    if grp is not None and grp is not _pg:
        raise GradkitError(f"gradkit.distributed.{what}: only the default group (group=None) "
                           "is supported")
    return _pg


def get_rank(group=None):
    """This process's rank, 0 .. world_size-1."""
    return _get(group, "get_rank").rank


def get_world_size(group=None):
    """The number of processes in the job."""
    return _get(group, "get_world_size").size


def get_backend(group=None):
    """"mpi" or "nccl"."""
    return _get(group, "get_backend").backend


def get_node_local_rank(fallback_rank=None):
    """This process's rank among the processes on its machine (from MPI once the
    group exists; before that from LOCAL_RANK or the launcher's variables)."""
    if _pg is not None:
        return _pg.local_rank
    for v in ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
              "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"):
        if v in os.environ:
            return int(os.environ[v])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("gradkit.distributed.get_node_local_rank: no local rank is known: "
                       "call init_process_group() first or set LOCAL_RANK")


# ----------------------------------------------------------------- helpers
_INT_OK = ("SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
_FLOAT_OK = ("SUM", "AVG", "PRODUCT", "MIN", "MAX")


def _check(t, what, arg="tensor"):
    if t.__class__ is not Tensor:
        raise TypeError(f"gradkit.distributed.{what}: {arg} must be a gradkit Tensor, got "
                        f"{type(t).__name__}")
    if t._B.type not in ("cpu", "cuda"):
        raise GradkitError(f"gradkit.distributed.{what}: {arg} is on {t._B.device_str}; "
                           "collectives run on cpu (MPI) and cuda (NCCL) tensors")


def _same(a, b, what, arg):
    if a._B is not b._B or a.dtype_name != b.dtype_name:
        raise GradkitError(
            f"gradkit.distributed.{what}: {arg} is {b.dtype_name} on {b._B.device_str} but the "
            f"input is {a.dtype_name} on {a._B.device_str}; they must match")


def _opname(op, t, what):
    name = op.name if isinstance(op, ReduceOp) else str(op).rpartition(".")[2].upper()
    dt = t.dtype_name
    ok = _FLOAT_OK if dt.startswith("float") else _INT_OK
    if name not in ok:
        if name == "AVG":
            hint = "; use ReduceOp.SUM and divide by the world size in a floating dtype"
        else:
            hint = ""
        raise GradkitError(f"gradkit.distributed.{what}: ReduceOp.{name} is not supported for "
                           f"{dt} tensors{hint}")
    return name


def _timeout(pg, timeout):
    return pg.timeout if timeout is None else _seconds(timeout)


def _contig(B, a):
    """(buffer, needs_copy_back): MPI and NCCL need C-contiguous memory."""
    if a.flags.c_contiguous:
        return a, False
    return B.xp.ascontiguousarray(a), True


def _bump(*ts):
    for t in ts:
        t._vc[0] += 1


def _nccl(pg, t, what):
    if pg.nccl is None:
        raise GradkitError(
            f"gradkit.distributed.{what}: the tensor is on {t._B.device_str} but the process "
            f"group uses backend {pg.backend!r} (CPU tensors); for CUDA tensors call "
            "init_process_group('nccl'), or move the tensor to the CPU")
    return pg.nccl


#: collectives whose blocking wait timed out: MPI may still write into their
#: buffers when the late ranks arrive, so they are kept alive here
_abandoned = []


def _finish(pg, reqs, fin, what, timeout, async_op):
    w = Work(pg, reqs, fin, what, timeout)
    if async_op:
        return w
    try:
        w.wait()
    except DistTimeoutError:
        _abandoned.append(w)
        raise
    return None


# ----------------------------------------------------------------- collectives
def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False, *, timeout=None):
    """Reduce ``tensor`` over all ranks, in place: afterwards every rank holds
    the SUM (AVG, PRODUCT, MIN, MAX, BAND, BOR, BXOR) of all ranks' tensors. As
    ``torch.distributed.all_reduce``; returns None, or a Work with ``async_op``."""
    pg = _get(group, "all_reduce")
    _check(tensor, "all_reduce")
    name = _opname(op, tensor, "all_reduce")
    t_s = _timeout(pg, timeout)
    B = tensor._B
    if pg.debug:
        pg.check_same("all_reduce", tensor.array, tensor.dtype_name, name, timeout=t_s)
    a, back = _contig(B, tensor.array)
    if B.type == "cuda":
        _nccl(pg, tensor, "all_reduce").all_reduce(a, name)
        reqs = []
        avg = False
    else:
        reqs = [pg.all_reduce(a, name)]
        avg = name == "AVG"

    def fin():
        if avg:
            B.idiv(a, pg.size)
        if back:
            B.setitem(tensor.array, Ellipsis, a)
        _bump(tensor)
    return _finish(pg, reqs, fin, "all_reduce", t_s, async_op)


def broadcast(tensor, src, group=None, async_op=False, *, timeout=None, group_src=None):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank, in place (as
    ``torch.distributed.broadcast``)."""
    pg = _get(group, "broadcast")
    _check(tensor, "broadcast")
    if group_src is not None:
        src = group_src
    src = int(src)
    if not 0 <= src < pg.size:
        raise GradkitError(f"gradkit.distributed.broadcast: src={src} is not a rank of this "
                           f"job (world size {pg.size})")
    t_s = _timeout(pg, timeout)
    B = tensor._B
    if pg.debug:
        pg.check_same("broadcast", tensor.array, tensor.dtype_name, src=src, timeout=t_s)
    a, back = _contig(B, tensor.array)
    if B.type == "cuda":
        _nccl(pg, tensor, "broadcast").broadcast(a, src)
        reqs = []
    else:
        reqs = [pg.broadcast(a, src)]

    def fin():
        if back:
            B.setitem(tensor.array, Ellipsis, a)
        _bump(tensor)
    return _finish(pg, reqs, fin, "broadcast", t_s, async_op)


def _gather_shapes_ok(out_shape, in_shape, n):
    """torch accepts the output as the inputs stacked (n, *in) or concatenated
    along dim 0 (n*d0, *rest)."""
    if tuple(out_shape) == (n,) + tuple(in_shape):
        return True
    return (len(in_shape) >= 1 and len(out_shape) == len(in_shape)
            and out_shape[0] == n * in_shape[0] and tuple(out_shape[1:]) == tuple(in_shape[1:]))


def all_gather(tensor_list, tensor, group=None, async_op=False, *, timeout=None):
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank (as
    ``torch.distributed.all_gather``): a list of world_size tensors of the
    input's shape, dtype and device."""
    pg = _get(group, "all_gather")
    _check(tensor, "all_gather")
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != pg.size:
        n = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else type(tensor_list).__name__
        raise GradkitError(f"gradkit.distributed.all_gather: tensor_list must be a list of "
                           f"world_size={pg.size} tensors, got {n}")
    for i, o in enumerate(tensor_list):
        _check(o, "all_gather", f"tensor_list[{i}]")
        _same(tensor, o, "all_gather", f"tensor_list[{i}]")
        if tuple(o.array.shape) != tuple(tensor.array.shape):
            raise GradkitError(f"gradkit.distributed.all_gather: tensor_list[{i}] has shape "
                               f"{tuple(o.array.shape)} but the input has shape "
                               f"{tuple(tensor.array.shape)}")
    t_s = _timeout(pg, timeout)
    B = tensor._B
    if pg.debug:
        pg.check_same("all_gather", tensor.array, tensor.dtype_name, timeout=t_s)
    a, _ = _contig(B, tensor.array)
    buf = B.empty((pg.size,) + tuple(a.shape), a.dtype)
    if B.type == "cuda":
        _nccl(pg, tensor, "all_gather").all_gather(a, buf)
        reqs = []
    else:
        reqs = [pg.all_gather(a, buf)]

    def fin():
        for i, o in enumerate(tensor_list):
            B.setitem(o.array, Ellipsis, buf[i])
        _bump(*tensor_list)
    return _finish(pg, reqs, fin, "all_gather", t_s, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False, *,
                           timeout=None):
    """Gather every rank's ``input_tensor`` into ``output_tensor``, rank order,
    either stacked ``(world_size, *input.shape)`` or concatenated along dim 0 (as
    ``torch.distributed.all_gather_into_tensor``)."""
    pg = _get(group, "all_gather_into_tensor")
    _check(input_tensor, "all_gather_into_tensor", "input_tensor")
    _check(output_tensor, "all_gather_into_tensor", "output_tensor")
    _same(input_tensor, output_tensor, "all_gather_into_tensor", "output_tensor")
    if not _gather_shapes_ok(output_tensor.array.shape, input_tensor.array.shape, pg.size):
        raise GradkitError(
            f"gradkit.distributed.all_gather_into_tensor: output_tensor has shape "
            f"{tuple(output_tensor.array.shape)}; for an input of shape "
            f"{tuple(input_tensor.array.shape)} and world size {pg.size} it must be "
            "(world_size, *input.shape) or (world_size * input.shape[0], *input.shape[1:])")
    t_s = _timeout(pg, timeout)
    B = input_tensor._B
    if pg.debug:
        pg.check_same("all_gather_into_tensor", input_tensor.array, input_tensor.dtype_name,
                      timeout=t_s)
    a, _ = _contig(B, input_tensor.array)
    out, back = _contig(B, output_tensor.array)
    if B.type == "cuda":
        _nccl(pg, input_tensor, "all_gather_into_tensor").all_gather(a, out)
        reqs = []
    else:
        reqs = [pg.all_gather(a, out)]

    def fin():
        if back:
            B.setitem(output_tensor.array, Ellipsis, out)
        _bump(output_tensor)
    return _finish(pg, reqs, fin, "all_gather_into_tensor", t_s, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False, *,
                          timeout=None):
    """Reduce ``input`` over all ranks and give rank r the r-th block of the
    result in ``output`` (as ``torch.distributed.reduce_scatter_tensor``):
    ``input`` is ``(world_size, *output.shape)`` or ``(world_size * output.shape[0],
    *output.shape[1:])``."""
    pg = _get(group, "reduce_scatter_tensor")
    _check(input, "reduce_scatter_tensor", "input")
    _check(output, "reduce_scatter_tensor", "output")
    _same(input, output, "reduce_scatter_tensor", "output")
    if not _gather_shapes_ok(input.array.shape, output.array.shape, pg.size):
        raise GradkitError(
            f"gradkit.distributed.reduce_scatter_tensor: input has shape "
            f"{tuple(input.array.shape)}; for an output of shape {tuple(output.array.shape)} "
            f"and world size {pg.size} it must be (world_size, *output.shape) or "
            "(world_size * output.shape[0], *output.shape[1:])")
    name = _opname(op, output, "reduce_scatter_tensor")
    t_s = _timeout(pg, timeout)
    B = output._B
    if pg.debug:
        pg.check_same("reduce_scatter_tensor", input.array, input.dtype_name, name, timeout=t_s)
    a, _ = _contig(B, input.array)
    out, back = _contig(B, output.array)
    if B.type == "cuda":
        _nccl(pg, output, "reduce_scatter_tensor").reduce_scatter(a, out, name)
        reqs = []
        avg = False
    else:
        reqs = [pg.reduce_scatter(a, out, name)]
        avg = name == "AVG"

    def fin():
        if avg:
            B.idiv(out, pg.size)
        if back:
            B.setitem(output.array, Ellipsis, out)
        _bump(output)
    return _finish(pg, reqs, fin, "reduce_scatter_tensor", t_s, async_op)


def _all_reduce_bucket(tensor):
    """DDP's bucket all-reduce (SUM, started now, returns a Work). On CPU it runs
    on the group's communication thread (see ``_group._CommThread``), on CUDA on
    NCCL's own stream, so that it progresses while backward computes; the Work's
    ``wait`` joins it (on CUDA: the current stream waits, the host does not). In
    debug mode it is ``all_reduce(tensor, async_op=True)``."""
    pg = _get(None, "all_reduce")
    what = "all_reduce (a DDP gradient bucket)"
    if pg.debug or not tensor.array.flags.c_contiguous:
        return all_reduce(tensor, ReduceOp.SUM, async_op=True)
    if tensor._B.type == "cuda":
        nccl = _nccl(pg, tensor, "all_reduce")
        done = nccl.all_reduce_on_side_stream(tensor.array, "SUM")

        def fin():
            nccl.join(done)
            _bump(tensor)
        return Work(pg, [], fin, what, pg.timeout)
    job = pg.background_all_reduce(tensor.array, "SUM")
    if job is not None:
        return Work(pg, job, lambda: _bump(tensor), what, pg.timeout)
    return all_reduce(tensor, ReduceOp.SUM, async_op=True)


def barrier(group=None, async_op=False, device_ids=None, *, timeout=None):
    """Wait until every rank has reached this call (as ``torch.distributed.barrier``).
    In an "nccl" group this rank's GPU work queued so far finishes first."""
    pg = _get(group, "barrier")
    t_s = _timeout(pg, timeout)
    if pg.debug:
        pg.check_same("barrier", timeout=t_s)
    if pg.nccl is not None:
        try:
            pg.nccl.synchronize(t_s, "barrier", pg.rank)
        except TimeoutError as e:
            raise DistTimeoutError(str(e)) from None
    return _finish(pg, [pg.barrier()], None, "barrier", t_s, async_op)
