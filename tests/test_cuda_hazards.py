"""CUDA defects caught without a GPU: the fake accelerator reproduces CuPy's
hazards (a current device, fused kernels that refuse mixed dtypes, writable
broadcast views, wrapping out-of-range indices; backends/strict_backend.py), so
each test here fails on the code that would crash or be silently wrong on a GPU.
Items refer to gradkit issue 9."""
import threading

import numpy as np
import pytest

import gradkit as gk
import gradkit.nn.functional as F
from helpers import to_np

try:
    from gradkit.backends import strict_backend as sb
except ImportError:   # no array_api_strict (as on the GPU machine): the fake cases skip
    sb = None

fake_only = pytest.mark.skipif(sb is None, reason="array_api_strict is not installed "
                                                  "(the fake accelerator)")
DEVS = ["cpu", "fake", "fake:1", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVS)
def dev(request):
    d = request.param
    if d.startswith("fake") and sb is None:
        pytest.skip("array_api_strict is not installed (the fake accelerator)")
    if d == "cuda" and not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    return d


# ------------------------------------------------------------ the fake itself
@fake_only
def test_fake_refuses_a_kernel_for_another_device():
    """The fake is faithful: a raw kernel on a fake:1 array while fake:0 is
    current fails (on CuPy it would land on device 0)."""
    B = gk.ones(3, device="fake:1")._B
    with sb.FakeDevice(1):
        a = sb.xps.ones((3,), device=sb._DEVICES[1])
    with pytest.raises(sb.WrongDeviceError, match="fake:1.*fake:0 is current"):
        a * 2
    with sb.FakeDevice(1):
        assert (a * 2).device == sb._DEVICES[1]
    assert B.index == 1


@fake_only
def test_fake_fused_kernels_refuse_mixed_dtypes():
    B = gk.ones(1, device="fake")._B
    y = B.ones((3,), B.dtypes["float32"])
    g = B.ones((3,), B.dtypes["float64"])
    with pytest.raises(TypeError, match="Type is mismatched"):
        B.tanh_backward(y, g)
    with pytest.raises(TypeError, match="Type is mismatched"):
        B.mask_mul(y, y)   # bool m


@fake_only
def test_fake_broadcast_views_are_writable_and_indices_wrap():
    B = gk.ones(1, device="fake")._B
    x = B.zeros((1, 3), B.dtypes["float32"])
    v = B.expand(x, (4, 3))
    B.setitem(v, (0, 0), 5.0)        # no read-only flag: writes through
    assert to_np_raw(B, x)[0, 0] == 5.0
    idx = B.asarray([0, 4], B.dtypes["int64"])
    np.testing.assert_array_equal(to_np_raw(B, B.getitem(B.arange(0, 3, 1, B.dtypes["int64"]),
                                                         (idx,))), [0, 1])   # 4 wraps to 1


def to_np_raw(B, a):
    return B._raw_to_host(a)


# ---------------------------------------------- item 1: seed and .grad dtypes
@pytest.mark.parametrize("op", ["tanh", "sigmoid", "relu", "sqrt", "gelu"])
def test_item1_seed_gradient_is_cast_to_the_output_dtype(dev, op):
    x = gk.tensor([0.5, 1.0, 2.0], device=dev, requires_grad=True)
    y = getattr(F, op)(x) if op == "gelu" else getattr(x, op)()
    y.backward(gradient=gk.ones(3, dtype=gk.float64, device=dev))
    assert x.grad.dtype == gk.float32
    x2 = gk.tensor([0.5, 1.0, 2.0], device=dev, requires_grad=True)
    y2 = getattr(F, op)(x2) if op == "gelu" else getattr(x2, op)()
    y2.backward(gradient=gk.ones(3, device=dev))
    np.testing.assert_array_equal(to_np(x.grad), to_np(x2.grad))


def test_item1_seed_gradient_still_checked_for_shape_and_device(dev):
    x = gk.ones(3, device=dev, requires_grad=True)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(gk.ones(2, dtype=gk.float64, device=dev))
    if dev == "cpu" and sb is None:
        pytest.skip("array_api_strict is not installed (the fake accelerator)")
    other = "cpu" if dev != "cpu" else "fake"
    with pytest.raises(RuntimeError, match="device"):
        (x * 2).backward(gk.ones(3, device=other))


@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "adam", "adamw_amsgrad"])
def test_item1_optimizers_take_a_grad_of_another_dtype(dev, opt):
    def run(grad_dtype):
        p = gk.nn.Parameter(gk.tensor([1.0, -2.0, 3.0], device=dev))
        o = {"sgd": lambda: gk.optim.SGD([p], lr=0.1),
             "sgd_momentum": lambda: gk.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
             "adam": lambda: gk.optim.Adam([p], lr=0.1),
             "adamw_amsgrad": lambda: gk.optim.AdamW([p], lr=0.1, amsgrad=True)}[opt]()
        for _ in range(2):
            g = gk.tensor([0.5, 0.25, -1.0], dtype=grad_dtype, device=dev)
            try:
                p.grad = g
            except Exception:  # a .grad setter that refuses the dtype is fine too
                return None
            o.step()
        assert p.dtype == gk.float32
        return to_np(p)
    ref = run(gk.float32)
    got = run(gk.float64)
    if got is not None:
        np.testing.assert_allclose(got, ref, rtol=1e-6)


# ------------------------------------------------- item 6: library dtypes
def test_item6_erf_keeps_the_input_dtype_when_the_library_promotes():
    """cupyx.scipy.special.erf maps float16 to float64 ('e->d'); the backend
    must return float16 as the CPU does (a NumPy stand-in for the library)."""
    from gradkit.backends.cupy_backend import CupyBackend

    B = object.__new__(CupyBackend)
    B.xp = np
    B.cp = np
    B.dtypes = {n: np.dtype(n) for n in ("float16", "float32", "float64")}
    B._sp_erf = lambda x: (lambda y: np.vectorize(__import__("math").erf)(y))(
        x.astype(np.float64) if x.dtype == np.float16 else x)
    x = np.array([0.5, -1.0], dtype=np.float16)
    out = B.erf(x)
    assert out.dtype == np.float16
    assert gk.erf(gk.tensor([0.5], dtype=gk.float16)).dtype == gk.float16


# ---------------------------------------------- item 7: multi-device placement
def _program(dev):
    gk.manual_seed(0)
    x = gk.tensor(np.linspace(-1, 1, 12).reshape(3, 4), device=dev, requires_grad=True)
    w = gk.tensor(np.linspace(0.5, -0.5, 8).reshape(4, 2), device=dev, requires_grad=True)
    h = F.gelu(x @ w).tanh() + x[:, :2].sigmoid() * x[gk.tensor([0, 2, 1], device=dev)][:, 1:3]
    h = h.relu() + gk.erf(h) + h.softmax(-1) + h.sqrt().nan_to_num() if hasattr(h, "nan_to_num") \
        else h.relu() + gk.erf(h) + h.softmax(-1)
    loss = F.cross_entropy(h, gk.tensor([0, 1, 1], device=dev)) + h.sum(0).max()
    loss.backward()
    opt = gk.optim.AdamW([x, w], lr=0.1)
    opt.step()
    return loss, x, w


@fake_only
def test_item7_every_kernel_runs_on_its_own_device():
    loss0, x0, w0 = _program("cpu")
    loss1, x1, w1 = _program("fake:1")
    assert loss1.device == gk.device("fake:1") and x1.grad.device == gk.device("fake:1")
    np.testing.assert_allclose(loss1.item(), loss0.item(), rtol=1e-5)
    np.testing.assert_allclose(to_np(x1), to_np(x0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(w1), to_np(w0), rtol=1e-5, atol=1e-6)
    assert sb.current_device() == 0   # restored


@pytest.mark.cuda
def test_item7_on_a_second_gpu():
    if gk.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    loss0, x0, w0 = _program("cpu")
    loss1, x1, w1 = _program("cuda:1")
    assert x1.grad.device == gk.device("cuda:1")
    np.testing.assert_allclose(loss1.item(), loss0.item(), rtol=1e-5)
    np.testing.assert_allclose(to_np(x1), to_np(x0), rtol=1e-5, atol=1e-6)
    y = x1.detach().to("cuda:0")
    np.testing.assert_array_equal(to_np(y), to_np(x1))


@fake_only
def test_item7_device_current_in_other_threads_and_under_another_current():
    out = []

    def work():
        out.append(_program("fake:1")[0].item())
    t = threading.Thread(target=work)
    t.start()
    t.join()
    with sb.FakeDevice(1):
        out.append(_program("fake")[0].item())
    assert len(out) == 2
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)


@fake_only
def test_item7_cross_device_copy_goes_device_to_device():
    x = gk.tensor([1.0, 2.0], device="fake", requires_grad=True)
    with gk.no_host_sync():
        y = x.to("fake:1")
        (y * 3).sum().backward()
    assert y.device == gk.device("fake:1") and x.grad.device == gk.device("fake")
    np.testing.assert_array_equal(to_np(y), [1.0, 2.0])
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 3.0])


def test_item7_import_of_a_cuda_array_from_device_1_lands_on_device_1():
    from gradkit import creation

    class TorchDevice:   # torch.device exposes .index, CuPy's Device .id
        type, index = "cuda", 1

    class TorchLike:
        __cuda_array_interface__ = {}
        device = TorchDevice()

    class CupyDevice:
        id = 1

    class CupyLike:
        __cuda_array_interface__ = {}
        device = CupyDevice()
    assert creation._infer_device(TorchLike()) == "cuda:1"
    assert creation._infer_device(CupyLike()) == "cuda:1"


# ------------------------------------------- item 8: out-of-range indices
_OOB = {
    "getitem": lambda x, i: x[i],
    "gather": lambda x, i: gk.gather(x, 0, gk.stack([i, i], 1)),
    "index_add": lambda x, i: gk.index_add(x, 0, i, gk.ones(2, 2, device=x.device)),
    "embedding": lambda x, i: F.embedding(i, x),
    "cross_entropy": lambda x, i: F.cross_entropy(x, i),
    "nll_loss": lambda x, i: F.nll_loss(x, i),
}


@pytest.mark.parametrize("op", sorted(_OOB))
@pytest.mark.parametrize("sync", ["item", "numpy", "tolist", "cpu"])
def test_item8_out_of_range_indices_raise_naming_the_op(dev, op, sync):
    x = gk.ones(2, 2, device=dev)
    i = gk.tensor([0, 7], device=dev)
    if dev == "cpu":   # the host checks for free: at the op
        with pytest.raises(IndexError, match=op):
            _OOB[op](x, i)
        return
    with gk.no_host_sync():
        y = _OOB[op](x, i)   # no sync: the check runs on the device
    with pytest.raises(IndexError, match=f"gradkit.*{op}.*out of range"):
        s = y.sum()
        # numpy(force=True): a cuda tensor's plain numpy() raises TypeError first, as
        # torch's does (the H200 run caught the test calling it)
        {"item": s.item, "numpy": lambda: s.numpy(force=True), "tolist": s.tolist,
         "cpu": s.cpu}[sync]()
    assert gk.ones(1, device=dev).item() == 1.0   # reported once


def test_item8_in_range_and_negative_indices_pass(dev):
    x = gk.arange(6, device=dev).reshape(3, 2).float()
    y = x[gk.tensor([-1, 0, 2], device=dev)]
    np.testing.assert_array_equal(to_np(y), [[4, 5], [0, 1], [4, 5]])
    assert F.cross_entropy(x, gk.tensor([0, -100, 1], device=dev)).item() > 0


@fake_only
def test_item8_eager_mode_raises_at_the_op():
    x = gk.ones(2, 2, device="fake")
    gk.set_index_checks("eager")
    try:
        with pytest.raises(IndexError, match="gather"):
            gk.gather(x, 0, gk.tensor([[0, 9]], device="fake"))
    finally:
        gk.set_index_checks("deferred")


# ------------------------------------------ item 9: in place on a broadcast
@pytest.mark.parametrize("how", ["add_", "mul_", "fill_", "setitem", "zero_"])
def test_item9_inplace_on_an_expanded_tensor_raises(dev, how):
    base = gk.ones(1, 3, device=dev)
    x = base.expand(4, 3)
    with pytest.raises(RuntimeError, match="more than one element"):
        if how == "setitem":
            x[0] = 5.0
        elif how == "fill_":
            x.fill_(2.0)
        elif how == "zero_":
            x.zero_()
        else:
            getattr(x, how)(2.0)
    np.testing.assert_array_equal(to_np(base), [[1, 1, 1]])


@fake_only
def test_item8_many_pending_checks_fold_and_report_the_first_failure():
    x = gk.ones(4, device="fake")
    n0 = len(getattr(x._B, "_slots", {}))
    for _ in range(100):
        x[gk.tensor([1, 2], device="fake")]
    x[gk.tensor([0, 9], device="fake")]
    for _ in range(100):
        gk.gather(x, 0, gk.tensor([3], device="fake"))
    assert len(x._B._slots) <= n0 + 2    # one device flag per (op, range), no sync so far
    with pytest.raises(IndexError, match="getitem.*out of range"):
        x.sum().item()
    x[gk.tensor([0, 9], device="fake")]                 # after a failing gather:
    gk.gather(x, 0, gk.tensor([7], device="fake"))
    with pytest.raises(IndexError, match="getitem"):   # the earliest failure wins
        x.sum().item()


# --------------------------- items 2, 3: CuPy library dtypes (NumPy stand-ins)
def _cupy_shell():
    """A CupyBackend on NumPy arrays, for the dtype logic around CuPy's library."""
    from gradkit.backends import cupy_backend

    B = object.__new__(cupy_backend.CupyBackend)
    B.xp = B.cp = np
    B.dtypes = {n: np.dtype(n) for n in ("float16", "float32", "float64", "int8", "int16",
                                         "int32", "int64", "uint8", "bool")}
    import kernel_host
    B.cuda_device = kernel_host._Nothing()
    return B, cupy_backend


class _CupyGenerator:
    """cupy.random.Generator's dtype rules: floats in float32/float64 only,
    integers() refuses bool."""

    def __init__(self):
        self.r = np.random.default_rng(0)

    def standard_normal(self, size, dtype):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"Unsupported dtype {np.dtype(dtype)} for standard_normal")
        return self.r.standard_normal(size).astype(dtype)

    def random(self, size, dtype):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"Unsupported dtype {np.dtype(dtype)} for random")
        return self.r.random(size).astype(dtype)

    def integers(self, low, high, size, dtype):
        if np.dtype(dtype) == np.bool_:
            raise TypeError("Unsupported dtype bool for integers")
        return self.r.integers(low, high, size=size).astype(dtype)


@pytest.mark.parametrize("draw", ["randn", "rand"])
def test_item2_float16_random_on_cuda(draw):
    B, _ = _cupy_shell()
    B.rng = _CupyGenerator()
    out = getattr(B, draw)((3, 4), B.dtypes["float16"])
    assert out.dtype == np.float16 and out.shape == (3, 4)


def test_item12_randint_bool_on_cuda():
    B, _ = _cupy_shell()
    B.rng = _CupyGenerator()
    out = B.randint(0, 2, (50,), B.dtypes["bool"])
    assert out.dtype == np.bool_ and out.any() and not out.all()


def _cupyx_scatter_add(version):
    """cupyx.scatter_add's dtype rule (atomicAdd): CuPy 13 lacks int64."""
    ok = {"float16", "float32", "float64", "int32", "uint32", "uint64"}
    if version >= 14:
        ok.add("int64")

    def f(a, idx, v):
        if v.dtype.name not in ok:
            raise TypeError(f"scatter_add only supports {sorted(ok)} as data type")
        np.add.at(a, idx, v)
    return f


@pytest.mark.parametrize("version", [13, 14])
@pytest.mark.parametrize("dt", ["float16", "float32", "float64", "int8", "int16", "int32",
                                "int64", "uint8", "bool"])
def test_item3_scatter_add_every_dtype_as_numpy(version, dt):
    B, cb = _cupy_shell()
    B._scatter_add = _cupyx_scatter_add(version)
    B._scatter_native = cb.scatter_native(f"{version}.0.0")
    idx = (np.array([0, 2, 2, 1, 2]),)
    g = (np.array([1, 1, 1, 0, 1]) if dt == "bool" else np.array([100, -3, 120, 5, 60])).astype(dt)
    ref = np.zeros(3, dt)
    np.add.at(ref, idx, g)
    got = B.scatter_add(np.zeros(3, dt), idx, g)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)


# ------------------------------------------------- item 11: the host-sync guard
@fake_only
@pytest.mark.parametrize("how", ["tensor", "as_tensor", "module_to", "save", "bool_index",
                                 "numpy"])
def test_item11_host_sync_guard_sees_every_device_to_host_copy(how, tmp_path):
    x = gk.ones(3, device="fake")
    m = gk.nn.Linear(2, 2).to("fake")
    with pytest.raises(gk.HostSyncError):
        with gk.no_host_sync():
            {"tensor": lambda: gk.tensor(x, device="cpu"),
             "as_tensor": lambda: gk.as_tensor(x, device="cpu"),
             "module_to": lambda: m.to("cpu"),
             "save": lambda: gk.save({"x": x}, str(tmp_path / "x.npz")),
             "bool_index": lambda: x[True],
             "numpy": lambda: x.numpy()}[how]()


@fake_only
def test_item11_one_host_sync_error_class():
    assert sb.HostSyncError is gk.HostSyncError
    with pytest.raises(gk.HostSyncError):
        float(gk.ones((), device="fake").array)


# ------------------------------------- item 10: Python scalars on CuPy 13
def test_item10_python_scalars_keep_nep50_dtypes_on_cupy13():
    """CuPy 13 promotes a Python scalar with a 0-d array by value (float32 0-d *
    0.5 -> float64, as NumPy 1.x); the backend keeps the array's dtype."""
    B, cb = _cupy_shell()

    def value_based(f):   # CuPy 13's rule for a 0-d array and a Python scalar
        def g(a, b):
            if isinstance(b, float) and np.ndim(a) == 0 and a.dtype.kind == "f":
                return f(a.astype(np.float64), b)
            if isinstance(a, float) and np.ndim(b) == 0 and b.dtype.kind == "f":
                return f(a, b.astype(np.float64))
            return f(a, b)
        return g
    for name, uf in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                     ("div", np.divide), ("pow", np.power), ("maximum", np.maximum),
                     ("minimum", np.minimum), ("eq", np.equal), ("ne", np.not_equal),
                     ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                     ("ge", np.greater_equal), ("logical_and", np.logical_and),
                     ("logical_or", np.logical_or)):
        setattr(B, name, value_based(uf))
    B.where = lambda c, a, b: np.where(c, a, b)
    x = np.array(2.0, np.float32)
    assert B.mul(x, 0.5).dtype == np.float64   # the CuPy 13 hazard, as emulated
    cb.weak_scalars(B)
    for op in ("add", "sub", "mul", "div", "pow", "maximum", "minimum"):
        assert getattr(B, op)(x, 0.5).dtype == np.float32, op
        assert getattr(B, op)(0.5, x).dtype == np.float32, op
    assert B.where(np.array(True), x, 0.5).dtype == np.float32


# ------------------------------------------------------- item 12: smaller
def test_item12_cuda_status_names_the_failed_step_and_the_fix(monkeypatch):
    import sys
    import types
    from gradkit import backends

    class CompileException(Exception):
        pass

    cp = types.ModuleType("cupy")
    cp.float32 = np.float32

    class Device:
        def __init__(self, i):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False
    cp.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1))
    cp.empty = lambda n, dtype=None: np.empty(n, dtype)

    def arange(*a, **k):
        raise CompileException("catastrophic error: cannot open source file cuda_fp16.h")
    cp.arange = arange
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setattr(backends, "_cuda_status", None)
    monkeypatch.delenv("GRADKIT_DEVICE", raising=False)
    ok, why, n = backends.cuda_status()
    assert not ok and n == 1
    assert "compiling a test kernel (NVRTC) failed" in why and "cuda_fp16.h" in why
    assert "nvidia-cuda-nvrtc-cu12" in why and "[ctk]" in why


@pytest.mark.parametrize("arg,want", [(None, "cuda:0"), (0, "cuda:0"), (1, "cuda:1"),
                                      ("cuda:1", "cuda:1")])
def test_item12_synchronize_takes_an_int(monkeypatch, arg, want):
    import sys
    gc, gd = sys.modules["gradkit.cuda"], sys.modules["gradkit.device"]
    seen = []

    class B:
        def synchronize(self):
            seen.append("synced")
        cuda_device = property(lambda self: self)
    real_device = gd.device   # resolves the spec as backend_of does (an int is no spec)
    monkeypatch.setattr(gc, "is_available", lambda: True)
    monkeypatch.setattr(gd, "backend_of", lambda d: seen.append(str(real_device(d))) or B())
    gk.cuda.synchronize(arg)
    assert seen == [want, "synced"]


# ------------------- item 6 on a real GPU: every op keeps float16 as on the CPU
def _f16_out(op, device):
    from op_table import draw
    rng = np.random.default_rng(0)
    ts = []
    for i, s in enumerate(op.shapes):
        a = draw(rng, s, op.domain[i] if i < len(op.domain) else "any")
        ts.append(gk.tensor(a.astype(np.float16) if a.dtype.kind == "f" else a, device=device))
    with np.errstate(all="ignore"):
        return op.fn(*ts)


def _op_ids():
    from op_table import OPS
    return [op.name for op in OPS]


@pytest.mark.cuda
@pytest.mark.parametrize("name", _op_ids())
def test_item6_every_op_returns_the_cpu_dtype_in_float16(name):
    """cupyx's erf promoted float16 to float64: each op's float16 result dtype on
    CUDA must be the CPU's (the fake accelerator has no float16)."""
    from op_table import OPS
    if not gk.cuda.is_available():
        pytest.skip(f"CUDA is not usable here: {gk.cuda.why_unavailable()}")
    device = "cuda"
    op = next(o for o in OPS if o.name == name)
    try:
        ref = _f16_out(op, "cpu")
    except Exception as e:   # the op refuses float16 on the CPU too: nothing to compare
        pytest.skip(f"{name} refuses float16 on the CPU ({type(e).__name__})")
    out = _f16_out(op, device)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)
    assert [o.dtype for o in outs] == [r.dtype for r in refs]
