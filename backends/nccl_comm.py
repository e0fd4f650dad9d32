"""NCCL collectives on CuPy arrays, for ``gradkit.distributed`` (backend "nccl").

Only this file touches ``cupy.cuda.nccl`` (CuPy's binding of NVIDIA's NCCL,
``NcclCommunicator(ndev, commId, rank)`` with ``allReduce``, ``broadcast``,
``allGather``, ``reduceScatter`` taking device pointers, element counts, NCCL
datatype and op codes and a stream pointer). Every call runs on the array's own
device and on that device's *current* stream, so it is ordered after the kernels
that produced the data and nothing waits on the host.

NCCL wheels: ``nvidia-nccl-cu12`` / ``nvidia-nccl-cu13`` (the ``cuda12`` /
``cuda13`` extras), which CuPy loads when ``cupy.cuda.nccl`` is imported.
"""
import time


def _nccl():
    """``cupy.cuda.nccl``, or a clear error when CuPy or NCCL is missing."""
    try:
        from cupy.cuda import nccl  # optional dependency (CUDA): imported lazily
    except Exception as e:   # no cupy, or a broken install
        raise RuntimeError(
            f"gradkit.distributed: backend 'nccl' needs CuPy with NCCL ({type(e).__name__}: {e}); "
            "install it with pip install 'gradkit[cuda12]' (or [cuda13])") from e
    if not getattr(nccl, "available", False):
        raise RuntimeError(
            "gradkit.distributed: backend 'nccl' needs the NCCL library, which CuPy could not "
            "load; install it with pip install nvidia-nccl-cu12 (CUDA 12) or nvidia-nccl-cu13 "
            "(CUDA 13), both part of gradkit's cuda extras")
    return nccl


def available():
    try:
        _nccl()
        return True
    except RuntimeError:
        return False


def unique_id():
    """A new NCCL unique id, as CuPy gives it (made on rank 0, sent to all): bytes
    on CuPy 14 (whose NcclCommunicator also takes bytes), a tuple of 128 chars as
    ints on older CuPy."""
    return _nccl().get_unique_id()


# pack_unique_id's last byte: the form CuPy gave the id in, so every rank hands
# NcclCommunicator that same form
_TUPLE, _TUPLE_SIGNED, _BYTES = 0, 1, 2


def pack_unique_id(uid):
    """The unique id as 129 bytes for an MPI broadcast: its 128 values as unsigned
    bytes, then the form CuPy gave it in (bytes; or a tuple of ints, signed chars
    -128..127 or not). The H200 run (cupy-cuda13x 14.2) gave bytes, whose values
    above 127 a signed ``array('b')`` refused, and its NcclCommunicator refused a
    tuple."""
    if isinstance(uid, (bytes, bytearray)):
        form, vals = _BYTES, tuple(uid)
    else:
        vals = tuple(int(v) for v in uid)
        form = _TUPLE_SIGNED if any(v < 0 for v in vals) else _TUPLE
    if len(vals) != 128 or any(v < -128 or v > 255 for v in vals):
        raise ValueError("gradkit.distributed: an NCCL unique id is 128 byte values, got "
                         f"{len(vals)} values in [{min(vals, default=0)}, {max(vals, default=0)}]")
    return bytes(v & 0xFF for v in vals) + bytes([form])


def unpack_unique_id(data):
    """Inverse of :func:`pack_unique_id`: the id in the form NcclCommunicator takes."""
    data = bytes(data)
    if data[128] == _BYTES:
        return data[:128]
    signed = data[128] == _TUPLE_SIGNED
    return tuple(v - 256 if signed and v > 127 else v for v in data[:128])


def device_count():
    import cupy as cp  # optional dependency (CUDA): imported lazily
    return cp.cuda.runtime.getDeviceCount()


# dtype name -> NCCL datatype attribute name (bool travels as uint8)
_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
           "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
           "int64": "NCCL_INT64", "bool": "NCCL_UINT8"}
# gradkit op name -> NCCL op attribute name. On bool (uint8 0/1): SUM is OR (MAX)
# and PRODUCT/MIN are AND (MIN), as torch's NCCL backend does.
_OPS = {"SUM": "NCCL_SUM", "PRODUCT": "NCCL_PROD", "MIN": "NCCL_MIN", "MAX": "NCCL_MAX",
        "AVG": "NCCL_AVG"}
_BOOL_OPS = {"SUM": "NCCL_MAX", "MAX": "NCCL_MAX", "BOR": "NCCL_MAX",
             "PRODUCT": "NCCL_MIN", "MIN": "NCCL_MIN", "BAND": "NCCL_MIN"}


class NcclComm:
    """One rank's NCCL communicator, bound to one CUDA device."""

    def __init__(self, world_size, uid, rank, device_index):
        import cupy as cp  # optional dependency (CUDA): imported lazily
        self.cp = cp
        self.nccl = _nccl()
        self.device_index = device_index
        self.rank = rank
        self.size = world_size
        self._side = None
        with cp.cuda.Device(device_index):
            self.comm = self.nccl.NcclCommunicator(world_size, uid, rank)

    def _args(self, a, what):
        cp = self.cp
        if a.device.id != self.device_index:
            raise RuntimeError(
                f"gradkit.distributed.{what}: the tensor is on cuda:{a.device.id} but this rank's "
                f"NCCL communicator is on cuda:{self.device_index}; move the tensor there "
                f"(init_process_group(device_id=...) picks the device)")
        name = a.dtype.name
        code = _DTYPES.get(name)
        if code is None:
            raise TypeError(f"gradkit.distributed.{what}: NCCL has no datatype for {name}")
        return getattr(self.nccl, code), cp.cuda.get_current_stream().ptr

    def _op(self, op, dtype_name, what):
        table = _BOOL_OPS if dtype_name == "bool" else _OPS
        code = table.get(op)
        if code is None or not hasattr(self.nccl, code):
            raise RuntimeError(f"gradkit.distributed.{what}: ReduceOp.{op} is not supported by "
                               f"NCCL for {dtype_name} tensors")
        return getattr(self.nccl, code)

    def all_reduce(self, a, op):
        with self.cp.cuda.Device(self.device_index):
            dt, stream = self._args(a, "all_reduce")
            self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, dt,
                                self._op(op, a.dtype.name, "all_reduce"), stream)

    def all_reduce_on_side_stream(self, a, op):
        """Start an all-reduce of ``a`` on this communicator's own stream, after the
        work queued so far on the current stream (which produced ``a``); returns
        an event for ``join``. Backward's kernels keep running on the current
        stream meanwhile: this is how DDP overlaps communication on a GPU."""
        cp = self.cp
        with cp.cuda.Device(self.device_index):
            if self._side is None:
                self._side = cp.cuda.Stream(non_blocking=True)
            dt, cur = self._args(a, "all_reduce")
            ready = cp.cuda.Event(disable_timing=True)
            ready.record(cp.cuda.get_current_stream())
            self._side.wait_event(ready)
            self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, dt,
                                self._op(op, a.dtype.name, "all_reduce"), self._side.ptr)
            done = cp.cuda.Event(disable_timing=True)
            done.record(self._side)
            return done

    def join(self, done):
        """Make the current stream wait (on the GPU, not the host) for an event
        from ``all_reduce_on_side_stream``."""
        cp = self.cp
        with cp.cuda.Device(self.device_index):
            cp.cuda.get_current_stream().wait_event(done)

    def broadcast(self, a, root):
        with self.cp.cuda.Device(self.device_index):
            dt, stream = self._args(a, "broadcast")
            self.comm.broadcast(a.data.ptr, a.data.ptr, a.size, dt, root, stream)

    def all_gather(self, src, dst):
        with self.cp.cuda.Device(self.device_index):
            dt, stream = self._args(src, "all_gather")
            self.comm.allGather(src.data.ptr, dst.data.ptr, src.size, dt, stream)

    def reduce_scatter(self, src, dst, op):
        with self.cp.cuda.Device(self.device_index):
            dt, stream = self._args(dst, "reduce_scatter_tensor")
            self.comm.reduceScatter(src.data.ptr, dst.data.ptr, dst.size, dt,
                                    self._op(op, dst.dtype.name, "reduce_scatter_tensor"), stream)

    def synchronize(self, timeout, what, rank):
        """Wait on the host until this device's current stream is done, at most
        ``timeout`` seconds; then abort the communicator and raise TimeoutError
        (NCCL kernels waiting for a peer that never comes spin forever)."""
        cp = self.cp
        with cp.cuda.Device(self.device_index):
            ev = cp.cuda.Event(disable_timing=True)
            ev.record(cp.cuda.get_current_stream())
        deadline = time.monotonic() + timeout
        while not ev.done:
            self.comm.check_async_error()
            if time.monotonic() > deadline:
                self.comm.abort()
                raise TimeoutError(
                    f"gradkit.distributed.{what}: rank {rank} timed out after {timeout:g} s waiting "
                    f"for NCCL work on cuda:{self.device_index}; another rank did not join the "
                    "collective (it failed, or called a different one). The NCCL communicator "
                    "was aborted: destroy the process group and restart the job.")
            time.sleep(0.0005)

    def destroy(self):
        if self.comm is not None:
            self.comm.destroy()
            self.comm = None
