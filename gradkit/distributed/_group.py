"""The process group behind ``gradkit.distributed``: MPI (mpi4py) for startup,
rendezvous and CPU collectives, NCCL (``gradkit.backends.nccl_comm``) for CUDA
tensors when the group was made with backend "nccl".

CPU collectives hand the NumPy arrays themselves to MPI's buffer interface
(``Iallreduce``, ``Ibcast``, ``Iallgather``, ``Ireduce_scatter_block``: the
uppercase, non-pickling calls) and wait by polling ``Test`` against a deadline,
so that a collective whose peers never come raises ``DistTimeoutError`` naming
the rank and the collective instead of hanging.
"""
import os
import queue
import sys
import threading
import time
import traceback
from array import array

from ..backends import nccl_comm   # imports CuPy only when an "nccl" group is made
from ..errors import GradkitError

_mpi = None


def mpi():
    """``mpi4py.MPI`` (initializes MPI on first use), or a clear error."""
    global _mpi
    if _mpi is None:
        try:
            from mpi4py import MPI  # optional dependency (the mpi extra): imported when first used
        except ImportError as e:
            raise GradkitError(
                "gradkit.distributed needs mpi4py and an MPI library: pip install "
                "'gradkit[mpi]' (mpi4py + MPICH from PyPI; on a cluster, build mpi4py against "
                f"the system MPI instead). ({e})") from e
        _mpi = MPI
    return _mpi


class DistError(GradkitError):
    """An error in a distributed call (as ``torch.distributed.DistError``)."""


class DistBackendError(DistError):
    """The communication backend failed (as ``torch.distributed.DistBackendError``)."""


class DistTimeoutError(DistBackendError, TimeoutError):
    """A blocking collective did not complete within its timeout."""


def _mpi_ops(MPI):
    """The ops by name: MPI's op for numbers, and for bools (torch: SUM on bool is
    logical or, PRODUCT and MIN logical and)."""
    num = {"SUM": MPI.SUM, "PRODUCT": MPI.PROD, "MIN": MPI.MIN, "MAX": MPI.MAX,
           "BAND": MPI.BAND, "BOR": MPI.BOR, "BXOR": MPI.BXOR, "AVG": MPI.SUM}
    boolean = {"SUM": MPI.LOR, "MAX": MPI.LOR, "BOR": MPI.LOR, "PRODUCT": MPI.LAND,
               "MIN": MPI.LAND, "BAND": MPI.LAND, "BXOR": MPI.LXOR}
    return num, boolean


def _timeout_error(what, rank, timeout):
    return DistTimeoutError(
        f"gradkit.distributed.{what}: rank {rank} timed out after {timeout:g} s waiting "
        "for the other ranks; one of them failed, is stuck, or called a different "
        "collective (run with GRADKIT_DISTRIBUTED_DEBUG=1 to check that every rank calls "
        "the same collectives with the same shapes). Pass a larger timeout= to "
        "init_process_group or to the call if the work before it is just slow.")


def wait_requests(reqs, what, rank, timeout):
    """Poll MPI requests until all are done; raise DistTimeoutError after
    ``timeout`` seconds. Spins first (latency), then yields the CPU (an
    oversubscribed machine), then naps."""
    MPI = _mpi
    testall = MPI.Request.Testall
    if testall(reqs):
        return
    t0 = time.monotonic()
    deadline = t0 + timeout
    spins = 0
    while not testall(reqs):
        spins += 1
        if spins & 63:
            continue
        now = time.monotonic()
        if now > deadline:
            raise _timeout_error(what, rank, timeout)
        if now - t0 > 0.1:
            time.sleep(0.0002)
        elif now - t0 > 0.001:
            os.sched_yield()


class Work:
    """A started collective (as ``torch.distributed.Work``): ``wait()`` blocks
    until it is done (then the output tensors hold the result), ``is_completed()``
    polls. ``wait(timeout=seconds)`` raises DistTimeoutError when it takes longer."""
    __slots__ = ("_reqs", "_finish", "_what", "_group", "_timeout", "_done")

    def __init__(self, group, reqs, finish, what, timeout):
        self._group = group
        self._reqs = reqs
        self._finish = finish
        self._what = what
        self._timeout = timeout
        self._done = False

    def wait(self, timeout=None):
        if not self._done:
            t = self._timeout if timeout is None else _seconds(timeout)
            reqs = self._reqs
            if reqs.__class__ is _Job:
                if not reqs.event.wait(t):
                    raise _timeout_error(self._what, self._group.rank, t)
                if reqs.error is not None:
                    raise DistBackendError(f"gradkit.distributed.{self._what}: rank "
                                           f"{self._group.rank}: {reqs.error}") from reqs.error
            elif reqs:
                wait_requests(reqs, self._what, self._group.rank, t)
            self._complete()
        return True

    def is_completed(self):
        if not self._done:
            reqs = self._reqs
            if (reqs.event.is_set() if reqs.__class__ is _Job
                    else not reqs or _mpi.Request.Testall(reqs)):
                self.wait()
        return self._done

    def _complete(self):
        self._done = True
        self._reqs = None
        if self._finish is not None:
            f, self._finish = self._finish, None
            f()


class _Job:
    """A collective handed to the group's communication thread."""
    __slots__ = ("event", "error", "args")

    def __init__(self, args):
        self.event = threading.Event()
        self.error = None
        self.args = args


class _CommThread:
    """Runs blocking all-reduces one after another on a thread of their own, on a
    communicator of their own (so their order never mixes with the main
    thread's collectives, and is the same on every rank). MPI releases the GIL
    while it communicates and NumPy while it computes, so a bucket's all-reduce
    proceeds while backward goes on: this is how DDP overlaps on CPUs (MPI's
    nonblocking calls only progress inside MPI calls)."""

    def __init__(self, comm):
        self.comm = comm.Dup()
        self.queue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="gradkit-distributed-comm",
                                       daemon=True)
        self.thread.start()

    def _run(self):
        MPI = _mpi
        while True:
            job = self.queue.get()
            if job is None:
                return
            arr, op = job.args
            job.args = None
            try:
                self.comm.Allreduce(MPI.IN_PLACE, arr, op)
            except BaseException as e:   # reported by Work.wait on the main thread
                job.error = e
            job.event.set()

    def submit(self, arr, op):
        job = _Job((arr, op))
        self.queue.put(job)
        return job

    def close(self):
        self.queue.put(None)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.comm.Free()


def _seconds(timeout):
    if hasattr(timeout, "total_seconds"):
        return float(timeout.total_seconds())
    t = float(timeout)
    if not t > 0:
        raise ValueError(f"gradkit.distributed: timeout must be positive, got {timeout!r}")
    return t


# ------------------------------------------------------------------ debug checks
_DEBUG_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                 "uint8", "bool")
_COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
                "reduce_scatter_tensor", "barrier")
_OPNAMES = ("", "SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR")
_MAXDIM = 8


def _describe(meta):
    what = _COLLECTIVES[meta[0]]
    if what == "barrier":
        return "barrier()"
    ndim = meta[2]
    shape = tuple(meta[3:3 + ndim]) if ndim <= _MAXDIM else f"<{ndim} dims>"
    s = f"{what}(shape {shape}, {_DEBUG_DTYPES[meta[1]]}"
    if meta[11]:
        s += f", op ReduceOp.{_OPNAMES[meta[11]]}"
    if what == "broadcast":
        s += f", src {meta[12]}"
    return s + ")"


# ------------------------------------------------------------------ the group
class ProcessGroup:
    """The default (world) group: every rank of the MPI job."""

    def __init__(self, backend, timeout, device_id=None):
        MPI = mpi()
        self.MPI = MPI
        self._ops, self._bool_ops = _mpi_ops(MPI)
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.backend = backend
        self.timeout = timeout
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = local.Get_rank()
        self.local_size = local.Get_size()
        local.Free()
        self.debug = os.environ.get("GRADKIT_DISTRIBUTED_DEBUG", "") not in ("", "0")
        self.nccl = None
        self.device_id = None
        if backend == "nccl":
            self._init_nccl(device_id)
        self._prev_hook = None
        self._comm_thread = None

    def _init_nccl(self, device_id):
        n = nccl_comm.device_count()
        if device_id is None:
            device_id = self.local_rank % max(n, 1)
        elif hasattr(device_id, "index"):
            device_id = device_id.index or 0
        uid = array("B", nccl_comm.pack_unique_id(nccl_comm.unique_id())
                    if self.rank == 0 else bytes(129))
        req = self.comm.Ibcast(uid, root=0)
        wait_requests([req], "init_process_group", self.rank, self.timeout)
        self.device_id = int(device_id)
        self.nccl = nccl_comm.NcclComm(self.size, nccl_comm.unpack_unique_id(uid), self.rank,
                                       self.device_id)

    # ----------------------------------------------------------- abort on error
    def install_excepthook(self):
        """An uncaught exception on this rank prints its traceback (each line
        tagged with the rank) and aborts the whole MPI job, so the other ranks do
        not wait for this one forever in their next collective."""
        if self.size == 1:
            return
        self._prev_hook = sys.excepthook
        rank, size, MPI = self.rank, self.size, self.MPI

        def hook(exc_type, exc, tb):
            try:
                text = "".join(traceback.format_exception(exc_type, exc, tb))
                sys.stderr.write("".join(f"[rank {rank}] {ln}\n" for ln in text.splitlines()))
                sys.stderr.write(
                    f"[rank {rank}] gradkit.distributed: rank {rank} of {size} raised "
                    f"{exc_type.__name__}; aborting the whole job (MPI.COMM_WORLD.Abort) so "
                    "that the other ranks do not wait for it forever\n")
                sys.stderr.flush()
                sys.stdout.flush()
                # MPICH's launcher forwards a rank's output through its proxy, and
                # Abort can kill the proxy before it has: a CI run once saw a timed-out
                # job end with no output at all. A short grace period lets it through.
                time.sleep(0.25)
            finally:
                MPI.COMM_WORLD.Abort(1)
        sys.excepthook = hook

    def close(self):
        if self._prev_hook is not None and sys.excepthook is not self._prev_hook:
            sys.excepthook = self._prev_hook
        if self._comm_thread is not None:
            self._comm_thread.close()
            self._comm_thread = None
        if self.nccl is not None:
            self.nccl.destroy()
            self.nccl = None
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    # ----------------------------------------------------------- debug mode
    def check_same(self, what, arr=None, dtype_name=None, op=None, src=-1, timeout=None):
        """GRADKIT_DISTRIBUTED_DEBUG=1: every rank must be in the same collective
        with the same shape, dtype, op and root, or every rank raises an error
        that lists what each rank passed."""
        meta = array("q", [0] * 13)
        meta[0] = _COLLECTIVES.index(what)
        if arr is not None:
            meta[1] = _DEBUG_DTYPES.index(dtype_name)
            meta[2] = arr.ndim
            for i, d in enumerate(arr.shape[:_MAXDIM]):
                meta[3 + i] = d
        meta[11] = _OPNAMES.index(op) if op else 0
        meta[12] = src
        allm = array("q", [0] * (13 * self.size))
        req = self.comm.Iallgather(meta, allm)
        wait_requests([req], what, self.rank, timeout or self.timeout)
        rows = [list(allm[13 * r:13 * (r + 1)]) for r in range(self.size)]
        if all(r == rows[0] for r in rows):
            return
        lines = "\n".join(f"  rank {r}: {_describe(m)}" for r, m in enumerate(rows))
        raise DistError(
            f"gradkit.distributed.{what}: the ranks disagree (GRADKIT_DISTRIBUTED_DEBUG=1 "
            f"checked before communicating):\n{lines}\nEvery rank must call the same collectives "
            "in the same order with tensors of the same shape and dtype (and the same op/src).")

    # ----------------------------------------------------------- CPU collectives
    def all_reduce(self, a, op):
        """Start an in-place all-reduce of a contiguous NumPy array."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, a, self._op(a, op))

    def broadcast(self, a, src):
        return self.comm.Ibcast(a, root=src)

    def all_gather(self, src, dst):
        return self.comm.Iallgather(src, dst)

    def reduce_scatter(self, src, dst, op):
        return self.comm.Ireduce_scatter_block(src, dst, self._op(src, op))

    def barrier(self):
        return self.comm.Ibarrier()

    def _op(self, a, op):
        return (self._bool_ops if a.dtype.kind == "b" else self._ops)[op]

    def background_all_reduce(self, a, op):
        """Start an in-place all-reduce of a contiguous NumPy array on the
        communication thread; returns a _Job, or None when MPI was not started
        with MPI_THREAD_MULTIPLE (then use ``all_reduce``)."""
        if self._comm_thread is None:
            MPI = self.MPI
            if MPI.Query_thread() != MPI.THREAD_MULTIPLE:
                return None
            self._comm_thread = _CommThread(self.comm)
        return self._comm_thread.submit(a, self._op(a, op))
