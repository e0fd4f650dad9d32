"""Bad input, fuzzed (issue 6, Reliability).

Hypothesis throws argument lists at every public op: the functions of the
``gradkit`` namespace and the methods (and operators) of ``Tensor``. Arguments
are random tensors (shapes incl. 0-d and empty, dtypes bool/int32/int64/
float16/32/64, on cpu or the fake accelerator, with or without requires_grad),
dims (out of range, negative, tuples, floats), index tensors (out of range,
float, other device), dtypes, devices and Python objects of the wrong type
(None, strings, lists, dicts, slices, ...).

Every call must either
- return, and then agree with PyTorch (the reference) whenever PyTorch accepts
  the same call (values, shape and dtype; in-place ops: the receiver too); or
- raise a ``gradkit.GradkitError``, ``TypeError``, ``ValueError`` or
  ``IndexError`` whose message names gradkit or the op; never a bare NumPy /
  array_api_strict error from deep inside, an AttributeError/KeyError/..., a
  crash or a hang (each call runs under a 10 s alarm).

Bounded: ``GK_FUZZ_EXAMPLES`` examples per op (default 4; about 700 calls in
all, well under a minute); derandomized, so CI is reproducible. Set
``GK_FUZZ_EXAMPLES=100 GK_FUZZ_REPORT=1`` to explore: the report lists calls
that gradkit accepts and PyTorch refuses (and the reverse), for review.
"""
import math
import os
import re
import signal
import types
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import gradkit as gk
from gradkit.tensor import GradkitError

torch = pytest.importorskip("torch")

EXAMPLES = int(os.environ.get("GK_FUZZ_EXAMPLES", "4"))
REPORT = os.environ.get("GK_FUZZ_REPORT") == "1"

# ------------------------------------------------------------ the op list
# Not fuzzed: process-global state and the autograd API (tested elsewhere).
SKIP_FUNCS = {"manual_seed", "set_default_dtype", "grad", "device", "save", "load",
              "no_host_sync"}
SKIP_METHODS = {"cuda"}  # the same as .to("cuda"), which is fuzzed (no GPU here)
OPERATORS = ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
             "__truediv__", "__rtruediv__", "__pow__", "__rpow__", "__matmul__",
             "__rmatmul__", "__neg__", "__abs__", "__eq__", "__ne__", "__lt__", "__le__",
             "__gt__", "__ge__", "__invert__", "__and__", "__or__", "__getitem__",
             "__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__",
             "__len__", "__bool__", "__float__", "__int__", "__index__"]
RANDOM = {"rand", "randn", "randint", "rand_like", "randn_like", "empty", "empty_like"}


def _public_functions():
    out = []
    for name in dir(gk):
        obj = getattr(gk, name)
        if name.startswith("_") or name in SKIP_FUNCS:
            continue
        if callable(obj) and not isinstance(obj, (type, types.ModuleType)):
            out.append(name)
    return sorted(out)


def _public_methods():
    out = []
    for name in dir(gk.Tensor):
        if name.startswith("_") or name in SKIP_METHODS:
            continue
        if callable(getattr(gk.Tensor, name)):
            out.append(name)
    return sorted(out) + OPERATORS


FUNCS = _public_functions()
METHODS = _public_methods()

# --------------------------------------------------------- the strategies
DTYPES = ["bool", "int32", "int64", "float16", "float32", "float64"]
DEVICES = ["cpu", "fake"]


@st.composite
def tensors(draw, dtype=None, device=None, shape=None):
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    dt = dtype or draw(st.sampled_from(DTYPES))
    dev = device or draw(st.sampled_from(DEVICES))
    if dt == "float16":
        dev = "cpu"  # array_api_strict (the fake accelerator) has no float16
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if dt == "bool":
        a = rng.random(shape) > 0.5
    elif dt.startswith("int"):
        a = rng.integers(-4, 5, size=shape).astype(dt)
    else:
        a = (rng.standard_normal(shape) * 2).astype(dt)
    rg = dt.startswith("float") and draw(st.booleans())
    return gk.tensor(a, device=dev, requires_grad=rg)


ints = st.one_of(st.integers(-4, 4), st.sampled_from([7, -9, 2 ** 62]))
index_tensors = st.one_of(
    tensors(dtype="int64", shape=(3,)),                         # values in [-4, 4]
    tensors(dtype="float32", shape=(2,)),                       # float indices
    tensors(dtype="bool"),                                      # masks, maybe misshaped
    tensors(dtype="int64", device="fake", shape=(2,)))          # maybe another device
objects = st.sampled_from([
    None, "abc", "cpu", "fake", "cuda", "float64", "int64", [1, 2], [[1.0, 2.0]], [],
    {"a": 1}, (0, 1), (0, 5), (1, -1), (0, 0), 1.5, -0.5, float("nan"), float("inf"),
    True, False, slice(None, 2), slice(None, None, -1), Ellipsis, gk.float32, gk.int64,
    gk.bool, gk.float16, np.float64, np.array([1, 0]), np.float32(2.0), object(),
    gk.device("cpu"), lambda g: g])
values = st.one_of(tensors(), tensors(), index_tensors, ints, objects,
                   st.tuples(ints, ints), st.lists(ints, max_size=3))
KWARGS = ["dim", "keepdim", "dtype", "device", "alpha", "min", "max", "requires_grad",
          "correction", "out", "retain_graph"]


@st.composite
def calls(draw, receiver, kw=True):
    args = []
    if receiver:
        args.append(draw(tensors()))
    elif draw(st.booleans()):
        args.append(draw(tensors()))
    args += draw(st.lists(values, max_size=3))
    kwargs = {}
    if draw(st.integers(0, 3)) == 0 and kw:
        kwargs[draw(st.sampled_from(KWARGS))] = draw(values)
    return args, kwargs


# -------------------------------------------------------------- the checks
class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("op did not return within 10 s")


ALLOWED = (GradkitError, TypeError, ValueError, IndexError)
SIGNATURE = re.compile(r"^([\w.]+)\(\) (?:got an unexpected keyword|takes|missing|got multiple)")
FOREIGN = re.compile(r"ufunc|numpy|array_api|np\.|ndarray|operands could not|"
                     r"object has no attribute|unhashable|not subscriptable|"
                     r"not supported between instances|unsupported operand type")


def _clean_error(names, e):
    """None if ``e`` is an acceptable error for the op called by one of
    ``names``, else what is wrong."""
    if isinstance(e, Hang):
        return "hang"
    if not isinstance(e, ALLOWED):
        return f"{type(e).__name__} is not a gradkit error/TypeError/ValueError/IndexError"
    msg = str(e)
    if "gradkit" in msg:
        return None
    # Python's own signature errors name the function: "Tensor.sum() takes ..."
    m = SIGNATURE.match(msg)
    if m and (m.group(1) in names or m.group(1).rpartition(".")[2] in names):
        return None
    if any(re.search(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", msg) for n in names) \
            and not FOREIGN.search(msg):
        return None
    return "the message names neither gradkit nor the op"


def _to_torch(v, dev_seen):
    if isinstance(v, gk.Tensor):
        dev_seen.add(v._B.device_str)
        a = v._B.to_host(v.data).copy()
        t = torch.from_numpy(a)
        return t.requires_grad_(True) if v.requires_grad else t
    if isinstance(v, gk.DType):
        return getattr(torch, v.name)
    if isinstance(v, gk.Device):
        return torch.device(str(v))
    if isinstance(v, (list, tuple)):
        return type(v)(_to_torch(x, dev_seen) for x in v)
    return v


def _host(v):
    if isinstance(v, gk.Tensor):
        return v._B.to_host(v.data)
    return v


def _tname(dt):
    return str(dt).replace("torch.", "")


def _compare(got, ref, where):
    """Compare a gradkit result with torch's; return a description of the first
    difference or None."""
    if isinstance(ref, torch.Tensor):
        if not isinstance(got, gk.Tensor):
            return f"{where}: torch gives a tensor, gradkit a {type(got).__name__}"
        if tuple(ref.shape) != got.shape:
            return f"{where}: shape {got.shape}, torch {tuple(ref.shape)}"
        if _tname(ref.dtype) != got.dtype_name:
            return f"{where}: dtype {got.dtype_name}, torch {_tname(ref.dtype)}"
        if got.numel() > 10 ** 6:
            return None
        r = ref.detach().numpy()
        g = _host(got)
        if r.dtype.kind == "f":
            tol = 1e-2 if r.dtype == np.float16 else 1e-5
            ok = np.allclose(g.astype(np.float64), r.astype(np.float64), rtol=tol, atol=tol,
                             equal_nan=True)
        else:
            ok = np.array_equal(g, r)
        return None if ok else f"{where}: values differ\n gradkit {g!r}\n torch   {r!r}"
    if isinstance(ref, (tuple, list)) and not isinstance(ref, torch.Size):
        if not isinstance(got, (tuple, list)) or len(got) != len(ref):
            return f"{where}: torch gives a sequence of {len(ref)}, gradkit {got!r}"
        for i, (a, b) in enumerate(zip(got, ref)):
            d = _compare(a, b, f"{where}[{i}]")
            if d:
                return d
        return None
    if isinstance(ref, (bool, int, float)):
        if isinstance(got, gk.Tensor) or not isinstance(got, (bool, int, float)):
            return f"{where}: torch gives {ref!r}, gradkit {got!r}"
        if isinstance(ref, float) and math.isnan(ref):
            return None if math.isnan(got) else f"{where}: {got!r} != nan"
        return None if math.isclose(got, ref, rel_tol=1e-5, abs_tol=1e-5) else \
            f"{where}: {got!r} != torch {ref!r}"
    return None  # other kinds of result (devices, dtypes, None...) are not compared


def _torch_call(kind, name, args, kwargs):
    seen = set()
    targs = [_to_torch(a, seen) for a in args]
    tkw = {k: _to_torch(v, seen) for k, v in kwargs.items()}
    if len(seen) > 1:
        raise RuntimeError("mixed devices")  # gradkit must refuse the call too
    if kind == "function":
        fn = getattr(torch, name, None)
        if fn is None:
            return "no-such", None
        return "ok", (fn(*targs, **tkw), targs)
    if not hasattr(torch.Tensor, name):
        return "no-such", None
    return "ok", (getattr(targs[0], name)(*targs[1:], **tkw), targs)


STATS = Counter()
NOTES = Counter()


def _fmt(args, kwargs):
    def f(v):
        if isinstance(v, gk.Tensor):
            return (f"T{v.shape}:{v.dtype_name}@{v._B.device_str}"
                    + ("*" if v.requires_grad else ""))
        return repr(v)[:40]
    return ", ".join([f(a) for a in args] + [f"{k}={f(v)}" for k, v in kwargs.items()])


def _check_call(kind, name, args, kwargs):
    STATS["calls"] += 1
    STATS[kind] += 1
    if kind == "function":
        fn = getattr(gk, name)
        call = lambda: fn(*args, **kwargs)  # noqa: E731
    else:
        fn = getattr(gk.Tensor, name)
        call = lambda: getattr(args[0], name)(*args[1:], **kwargs)  # noqa: E731
    names = {name, name.strip("_"), getattr(fn, "__name__", name),
             getattr(fn, "__qualname__", name),
             getattr(getattr(gk, name, None), "__name__", name)}  # aliases: broadcast_to -> expand
    # tensors of one or more dims on different devices (a 0-d or one-element
    # tensor may legitimately be used as a Python number)
    mixed = len({a._B.device_str for a in list(args) + list(kwargs.values())
                 if isinstance(a, gk.Tensor) and a.numel() > 1}) > 1
    # torch first, on copies (in-place ops)
    try:
        status, tres = _torch_call(kind, name, args, kwargs)
    except Hang:
        raise
    except Exception as e:
        status, tres = "torch-error", repr(e)[:120]
    before = [(a, _host(a).copy()) for a in args if isinstance(a, gk.Tensor)]

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        got = call()
    except Exception as e:
        signal.alarm(0)
        STATS["raised"] += 1
        bad = _clean_error(names, e)
        assert bad is None, (f"{kind} {name}({_fmt(args, kwargs)}): {bad}:\n"
                             f"  {type(e).__name__}: {e}")
        if status == "ok" and not mixed:
            NOTES[f"torch accepts, gradkit refuses: {name}: {type(e).__name__}: "
                  f"{str(e)[:100]}"] += 1
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    STATS["returned"] += 1
    if mixed and name not in ("to", "type_as", "copy_", "__setitem__"):
        NOTES[f"mixed devices accepted: {name}({_fmt(args, kwargs)})"] += 1
    if status == "ok":
        if name in RANDOM:
            return
        if name in ("max", "min") and isinstance(kwargs.get("dim"), gk.Tensor):
            # known: gk.max(x, t) with a Tensor t is the binary maximum, also when t
            # is passed as dim= (torch reads a keyword dim=t as a dimension)
            return
        ref, targs = tres
        d = _compare(got, ref, "result")
        if d is None:  # in-place: the receiver's new value
            for (a, _), ta in zip(before, [t for t in targs if isinstance(t, torch.Tensor)]):
                d = d or _compare(a, ta, "argument after the call")
        assert d is None, f"{kind} {name}({_fmt(args, kwargs)}): wrong result: {d}"
        STATS["compared"] += 1
    elif status == "torch-error":
        NOTES[f"gradkit accepts, torch refuses: {name}({_fmt(args, kwargs)}) "
              f"[{tres[:80]}]"] += 1


SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck),
                    # exploring (GK_FUZZ_REPORT=1): no shrinking, one failure per op
                    phases=[Phase.explicit, Phase.generate] if REPORT else list(Phase))


@pytest.mark.parametrize("name", FUNCS)
@SETTINGS
@given(call=calls(receiver=False))
def test_fuzz_function(name, call):
    _check_call("function", name, *call)


@pytest.mark.parametrize("name", [m for m in METHODS if not m.startswith("__")])
@SETTINGS
@given(call=calls(receiver=True))
def test_fuzz_method(name, call):
    _check_call("method", name, *call)


@pytest.mark.parametrize("name", [m for m in METHODS if m.startswith("__")])
@SETTINGS
@given(call=calls(receiver=True, kw=False))  # operators take no keywords
def test_fuzz_operator(name, call):
    _check_call("method", name, *call)


def test_zz_fuzz_summary():
    """Runs last in this file: records how many cases were tried."""
    print(f"\nfuzz: {STATS['calls']} calls ({STATS['function']} functions, "
          f"{STATS['method']} methods over {len(FUNCS)} functions and {len(METHODS)} "
          f"methods): {STATS['raised']} raised cleanly, {STATS['returned']} returned, "
          f"{STATS['compared']} compared with torch")
    if REPORT:
        for k, v in sorted(NOTES.items()):
            print(f"{v:4d}  {k}")
