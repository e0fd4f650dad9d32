"""backends/nccl_comm.py against a stand-in for ``cupy.cuda.nccl`` that records
its calls: no GPU here, so this checks the plumbing (device pointers, element
counts, NCCL datatype and op codes, the current or side stream, the device
context, the error messages) against the signatures of CuPy's binding
(``NcclCommunicator(ndev, commId, rank)``, ``allReduce(sendbuf, recvbuf, count,
datatype, op, stream)``, ``broadcast(sendbuf, recvbuf, count, datatype, root,
stream)``, ``allGather(sendbuf, recvbuf, count, datatype, stream)``,
``reduceScatter(sendbuf, recvbuf, recvcount, datatype, op, stream)``).
The real NCCL path runs only on a GPU machine."""
import sys
import types

import pytest

from gradkit.backends import nccl_comm

# cupy_backends/cuda/libs/nccl.pxd's enum values
CODES = dict(NCCL_SUM=0, NCCL_PROD=1, NCCL_MAX=2, NCCL_MIN=3, NCCL_AVG=4, NCCL_INT8=0,
             NCCL_UINT8=1, NCCL_INT32=2, NCCL_UINT32=3, NCCL_INT64=4, NCCL_UINT64=5,
             NCCL_FLOAT16=6, NCCL_FLOAT32=7, NCCL_FLOAT64=8, NCCL_BFLOAT16=9)


class FakeStream:
    def __init__(self, ptr, log):
        self.ptr = ptr
        self.log = log

    def wait_event(self, ev):
        self.log.append(("wait_event", self.ptr, ev.stream))


class FakeEvent:
    def __init__(self, disable_timing=False):
        self.stream = None
        self.done = True

    def record(self, stream):
        self.stream = stream.ptr


def fake_cupy(log, current_device):
    nccl = types.ModuleType("cupy.cuda.nccl")
    nccl.available = True
    vars(nccl).update(CODES)
    # bytes with values above 127, as cupy-cuda13x 14.2 gave on an H200 (a signed byte
    # array broke, and its NcclCommunicator refused a tuple)
    nccl.get_unique_id = lambda: bytes(range(128, 256))

    class NcclCommunicator:
        def __init__(self, ndev, commId, rank):
            if not isinstance(commId, bytes):
                raise TypeError(f"Argument 'commId' has incorrect type (expected bytes, got "
                                f"{type(commId).__name__})")
            log.append(("init", ndev, len(commId), rank, current_device[0]))

        def __getattr__(self, name):
            def call(*args):
                log.append((name, current_device[0]) + args)
            return call
    nccl.NcclCommunicator = NcclCommunicator

    class Device:
        def __init__(self, i):
            self.i = i

        def __enter__(self):
            self.prev = current_device[0]
            current_device[0] = self.i

        def __exit__(self, *exc):
            current_device[0] = self.prev

    current = FakeStream(1111, log)
    cuda = types.ModuleType("cupy.cuda")
    cuda.nccl = nccl
    cuda.Device = Device
    cuda.get_current_stream = lambda: current
    cuda.Event = FakeEvent
    cuda.Stream = lambda non_blocking=False: FakeStream(2222, log)
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 2)
    cp = types.ModuleType("cupy")
    cp.cuda = cuda
    return cp


class FakeArray:
    def __init__(self, dtype, size, device=1, ptr=0xABC0):
        self.dtype = types.SimpleNamespace(name=dtype)
        self.size = size
        self.device = types.SimpleNamespace(id=device)
        self.data = types.SimpleNamespace(ptr=ptr)


@pytest.fixture
def comm(monkeypatch):
    log, dev = [], [0]
    cp = fake_cupy(log, dev)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cp.cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", cp.cuda.nccl)
    assert nccl_comm.available() and len(nccl_comm.unique_id()) == 128
    # the id through the byte broadcast, as ProcessGroup._init_nccl does
    uid = nccl_comm.unpack_unique_id(nccl_comm.pack_unique_id(nccl_comm.unique_id()))
    c = nccl_comm.NcclComm(4, uid, 2, device_index=1)
    assert log.pop() == ("init", 4, 128, 2, 1)     # made on its own device
    return c, log


@pytest.mark.parametrize("uid", [tuple(range(128, 256)), tuple(range(-128, 0)),
                                 tuple(range(128)), (255, 0, 127, 128) * 32,
                                 bytes(range(128, 256)), bytes(range(128))])
def test_unique_id_survives_the_byte_broadcast(uid):
    # the 129 bytes rank 0 broadcasts give back the very values CuPy made, in its sign
    # convention (the H200 run: values above 127 made array('b') raise OverflowError)
    packed = nccl_comm.pack_unique_id(uid)
    assert len(packed) == 129
    from array import array
    assert nccl_comm.unpack_unique_id(array("B", packed)) == uid
    with pytest.raises(ValueError, match="128 byte values"):
        nccl_comm.pack_unique_id(uid[:5])


def test_calls_carry_pointers_counts_codes_and_the_current_stream(comm):
    c, log = comm
    c.all_reduce(FakeArray("float32", 10, ptr=100), "SUM")
    assert log.pop() == ("allReduce", 1, 100, 100, 10, CODES["NCCL_FLOAT32"], CODES["NCCL_SUM"],
                         1111)
    c.all_reduce(FakeArray("float16", 3, ptr=7), "AVG")
    assert log.pop()[5:7] == (CODES["NCCL_FLOAT16"], CODES["NCCL_AVG"])
    c.broadcast(FakeArray("int64", 5, ptr=8), 3)
    assert log.pop() == ("broadcast", 1, 8, 8, 5, CODES["NCCL_INT64"], 3, 1111)
    c.all_gather(FakeArray("float64", 6, ptr=9), FakeArray("float64", 24, ptr=10))
    assert log.pop() == ("allGather", 1, 9, 10, 6, CODES["NCCL_FLOAT64"], 1111)
    c.reduce_scatter(FakeArray("int32", 8, ptr=11), FakeArray("int32", 2, ptr=12), "MAX")
    assert log.pop() == ("reduceScatter", 1, 11, 12, 2, CODES["NCCL_INT32"], CODES["NCCL_MAX"],
                         1111)


def test_bool_travels_as_uint8_with_or_and_semantics(comm):
    c, log = comm
    c.all_reduce(FakeArray("bool", 4), "SUM")
    assert log.pop()[5:7] == (CODES["NCCL_UINT8"], CODES["NCCL_MAX"])     # SUM on bool: or
    c.all_reduce(FakeArray("bool", 4), "PRODUCT")
    assert log.pop()[5:7] == (CODES["NCCL_UINT8"], CODES["NCCL_MIN"])     # PRODUCT: and
    with pytest.raises(RuntimeError, match="ReduceOp.BXOR is not supported by NCCL for int32"):
        c.all_reduce(FakeArray("int32", 4), "BXOR")


def test_side_stream_for_ddp_buckets(comm):
    c, log = comm
    done = c.all_reduce_on_side_stream(FakeArray("float32", 10, ptr=5), "SUM")
    # the side stream waits for the current stream's work, NCCL runs on the side stream
    assert log[-2] == ("wait_event", 2222, 1111)
    assert log[-1] == ("allReduce", 1, 5, 5, 10, CODES["NCCL_FLOAT32"], CODES["NCCL_SUM"], 2222)
    c.join(done)
    assert log[-1] == ("wait_event", 1111, 2222)    # the current stream waits, not the host


def test_wrong_device_is_named(comm):
    c, _ = comm
    with pytest.raises(RuntimeError, match=r"all_reduce: the tensor is on cuda:0 but this "
                                           r"rank's NCCL communicator is on cuda:1"):
        c.all_reduce(FakeArray("float32", 3, device=0), "SUM")


def test_missing_nccl_says_what_to_install(monkeypatch):
    nccl = types.ModuleType("cupy.cuda.nccl")
    nccl.available = False
    cuda = types.ModuleType("cupy.cuda")
    cuda.nccl = nccl
    cp = types.ModuleType("cupy")
    cp.cuda = cuda
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)
    assert not nccl_comm.available()
    with pytest.raises(RuntimeError, match="pip install nvidia-nccl-cu12"):
        nccl_comm.unique_id()
