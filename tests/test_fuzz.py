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
  the same call (values, shape and dtype; in-place ops: the receiver too); where
  torch is not installed (CI's ``.[test]`` extra has none), with NumPy for the
  elementwise ops and full reductions of float tensors; or
- raise a ``gradkit.GradkitError``, ``TypeError``, ``ValueError`` or
  ``IndexError`` whose message names gradkit or the op; never a bare NumPy /
  array_api_strict error from deep inside, an AttributeError/KeyError/..., a
  crash or a hang (each call runs under a 10 s alarm).

Two kinds of calls per op: ``test_fuzz_*`` draw arguments at random from all
of the above (mostly bad input: the errors are checked); ``test_fitting_*``
choose arguments by parameter name (dims in range, masks for ``mask``, index
tensors for ``index``, sizes that fit...) so most calls return and are compared
with torch.

Bounded: ``GK_FUZZ_EXAMPLES`` examples per op and kind (default 4, and 6 for the
fitting calls: about 2,500 calls, ~10 s); derandomized, so CI is reproducible.
To explore: ``GK_FUZZ_EXAMPLES=300 GK_FUZZ_REPORT=1`` (no shrinking; the summary
lists calls gradkit accepts and PyTorch refuses, and the reverse, for review),
plus ``GK_FUZZ_RANDOM=1`` for new cases.
"""
import math
import os
import re
import signal
import types
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

import gradkit as gk
from gradkit.tensor import GradkitError

try:  # the reference; without it (CI installs no torch) a small NumPy table is used
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

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
RANDOM = {"rand", "randn", "randint", "rand_like", "randn_like", "empty", "empty_like",
          "randperm", "multinomial", "new_empty", "normal_", "uniform_"}


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
    if shape is None:  # mostly shapes that broadcast together, so that calls get far
        shape = draw(st.one_of(st.sampled_from([(), (3,), (2, 3), (1, 3), (2, 1, 3)]),
                               st.lists(st.integers(0, 3), max_size=3).map(tuple)))
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


# Well-formed calls: the same ops with arguments chosen by parameter name (dims
# in range, masks for masks, index tensors for indices, sizes that fit), so that
# most calls return and their results are compared with torch ("never a wrong
# result").
S23 = (2, 3)


def _by_name(dev, same):
    f = lambda s=S23, dt="float32": tensors(dtype=dt, device=dev, shape=s)  # noqa: E731
    floats = st.one_of(f(), f(dt="float64"), f((3,)), st.sampled_from([0.5, 2.0, -1.0]))
    # an operand: half the time a tensor of the receiver's dtype
    operands = st.one_of(f(dt=same), st.one_of(floats, f(dt="int64"), f(dt="bool"),
                                                st.sampled_from([1, 3, True])))
    table = {
        ("dim", "dim0", "dim1", "start_dim", "end_dim", "axis"): st.sampled_from([0, 1, -1]),
        ("keepdim", "unbiased", "requires_grad", "retain_graph"): st.booleans(),
        ("dims",): st.sampled_from([(0,), (1,), (0, 1), 0, -1]),
        ("shape", "size", "sizes"): st.sampled_from([(3, 2), (6,), (2, 3), (1, 2, 3), (2, 2, 3)]),
        ("other", "b", "o", "y", "exponent", "src", "value", "input", "x", "a", "tensor",
         "weight"): operands,
        ("condition", "cond", "mask"): f(dt="bool"),
        ("index", "indices"): st.integers(0, 2 ** 16).map(lambda seed: gk.tensor(
            np.random.default_rng(seed).integers(0, 2, size=S23), device=dev)),
        ("min", "max"): st.sampled_from([-0.5, 0.5, None]),
        ("dtype",): st.sampled_from([gk.float32, gk.float64, gk.int64, "float64"]),
        ("device",): st.just(dev),
        ("p",): st.sampled_from([1, 2, 3, "fro"]),
        ("correction",): st.sampled_from([0, 1]),
        ("chunks", "split_size_or_sections", "repeats", "diagonal", "k"):
            st.sampled_from([1, 2, 3]),
        ("tensors",): st.lists(f(), min_size=1, max_size=3),
        ("alpha", "beta", "threshold", "fill_value", "negative_slope"): st.sampled_from([2, 0.5]),
        ("approximate",): st.sampled_from(["none", "tanh"]),
        ("equation",): st.sampled_from(["ij->ji", "ij,ij->i", "ij->"]),
    }
    out = {}
    for names, strat in table.items():
        for n in names:
            out[n] = strat
    return out, floats


@st.composite
def fitting_calls(draw, kind, name, dt=None):
    import inspect
    dev = draw(st.sampled_from(DEVICES))
    dt = dt or draw(st.sampled_from(["float32", "float64", "int64", "bool", "float32"]))
    table, floats = _by_name(dev, dt)
    fn = getattr(gk, name) if kind == "function" else getattr(gk.Tensor, name)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    args, kwargs = [], {}
    if kind == "method":
        args.append(draw(tensors(dtype=dt, device=dev, shape=S23)))
        params = params[1:]
    for prm in params:
        strat = table.get(prm.name, floats)
        if prm.kind is prm.VAR_POSITIONAL:
            args += draw(st.lists(table.get("shape") if name in (
                "reshape", "view", "expand", "permute", "repeat", "zeros", "ones", "rand",
                "randn", "empty", "broadcast_to") else strat, max_size=2))
            if name in ("permute",) and args[1:]:
                args[1:] = [draw(st.sampled_from([(1, 0), (0, 1)]))]
        elif prm.kind is prm.VAR_KEYWORD:
            if draw(st.booleans()):
                key = draw(st.sampled_from(["dim", "keepdim"]))
                kwargs[key] = draw(st.sampled_from([0, 1, True]))
        elif prm.default is prm.empty or draw(st.booleans()):
            v = draw(strat)
            as_keyword = prm.default is not prm.empty and draw(st.booleans())
            if prm.kind is prm.KEYWORD_ONLY or as_keyword:
                kwargs[prm.name] = v
            elif not kwargs:
                args.append(v)
            else:
                kwargs[prm.name] = v
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
        a = v._B.to_host(v.array).copy()
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
        return v._B.to_host(v.array)
    return v


def _tname(dt):
    return str(dt).replace("torch.", "")


def _compare(got, ref, where):
    """Compare a gradkit result with torch's; return a description of the first
    difference or None."""
    if isinstance(ref, np.ndarray):  # t.numpy(), or the NumPy fallback: values only
        g = _host(got) if isinstance(got, gk.Tensor) else got
        if not isinstance(g, np.ndarray) or g.shape != ref.shape:
            return f"{where}: gradkit {got!r}, reference shape {ref.shape}"
        if g.dtype.kind not in "fc" or ref.dtype.kind not in "fc":
            ok = np.array_equal(g, ref)
        else:
            tol = 1e-2 if np.float16 in (g.dtype, ref.dtype) else 1e-5
            ok = np.allclose(g.astype(np.float64), ref, rtol=tol, atol=tol, equal_nan=True)
        return None if ok else f"{where}: values differ\n gradkit {g!r}\n numpy   {ref!r}"
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


_NP_REF = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "neg": np.negative, "negative": np.negative,
    "square": np.square, "sign": np.sign, "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "add": np.add, "sub": np.subtract,
    "subtract": np.subtract, "mul": np.multiply, "multiply": np.multiply, "div": np.divide,
    "divide": np.divide, "true_divide": np.divide, "maximum": np.maximum,
    "minimum": np.minimum, "sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min,
    "__add__": np.add, "__sub__": np.subtract, "__mul__": np.multiply,
    "__truediv__": np.divide, "__neg__": np.negative, "__abs__": np.abs}


def _numpy_call(name, args, kwargs):
    """The reference without torch: float tensors (and Python floats) through a
    few elementwise ops and full reductions, compared by value."""
    if kwargs or name not in _NP_REF or not args or not all(
            (isinstance(a, gk.Tensor) and a.dtype.is_floating_point) or a.__class__ is float
            for a in args):
        return "no-such", None
    if len({a._B.device_str for a in args if isinstance(a, gk.Tensor)}) > 1:
        raise RuntimeError("mixed devices")
    with np.errstate(all="ignore"):
        r = _NP_REF[name](*[_host(a).astype(np.float64) if isinstance(a, gk.Tensor) else a
                            for a in args])
    return "ok", (np.asarray(r), [])


def _torch_call(kind, name, args, kwargs):
    if torch is None:
        return _numpy_call(name, args, kwargs)
    seen = set()
    targs = [_to_torch(a, seen) for a in args]
    tkw = {k: _to_torch(v, seen) for k, v in kwargs.items()}
    if len(seen) > 1:
        raise RuntimeError("mixed devices")  # gradkit must refuse the call too
    with warnings.catch_warnings():   # torch's own advice on odd calls is not ours to show
        warnings.simplefilter("ignore", UserWarning)
        if kind == "function":
            fn = getattr(torch, name, None)
            if fn is None:
                return "no-such", None
            r = fn(*targs, **tkw)
        else:
            if not hasattr(torch.Tensor, name):
                return "no-such", None
            r = getattr(targs[0], name)(*targs[1:], **tkw)
    if r is NotImplemented:  # an operator refusing the operand: Python raises TypeError
        raise TypeError("NotImplemented")
    return "ok", (r, targs)


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
        if any(isinstance(v, int) and abs(v) > 2 ** 31 for v in list(args) + list(kwargs.values())):
            # torch silently wraps an out-of-range Python int to the tensor's dtype
            # (int32 > 2**62 compares with 0); gradkit compares the true values
            return
        if name.startswith("__r") and any(isinstance(a, gk.Tensor) for a in args[1:]):
            # Python never calls a reflected operator with a Tensor on the left (it
            # calls the left Tensor's own operator); torch's reflected operators
            # compute in another order (reciprocal(self) * other) and differ in dtype
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


FITTING = settings(max_examples=EXAMPLES * 3 // 2, deadline=None, database=None,
                   derandomize=os.environ.get("GK_FUZZ_RANDOM") != "1",
                   suppress_health_check=list(HealthCheck),
                   phases=[Phase.explicit, Phase.generate] if REPORT else list(Phase))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=os.environ.get("GK_FUZZ_RANDOM") != "1",  # 1: new cases
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


@pytest.mark.parametrize("name", FUNCS)
@FITTING
@given(data=st.data())
def test_fitting_function(name, data):
    _check_call("function", name, *data.draw(fitting_calls("function", name)))


@pytest.mark.parametrize("name", [m for m in METHODS if not m.startswith("__")])
@FITTING
@given(data=st.data())
def test_fitting_method(name, data):
    _check_call("method", name, *data.draw(fitting_calls("method", name)))


@pytest.mark.parametrize("dt", ["float32", "int64", "bool"])
@pytest.mark.parametrize("name", [m for m in METHODS if m.startswith("__")])
@settings(FITTING, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
def test_fitting_operator(name, dt, data):
    _check_call("method", name, *data.draw(fitting_calls("method", name, dt)))


def summary():
    """How many cases were tried: printed by conftest.py's terminal-summary hook
    after the run (not a test: it asserts nothing)."""
    lines = [f"fuzz: {STATS['calls']} calls ({STATS['function']} functions, "
             f"{STATS['method']} methods over {len(FUNCS)} functions and {len(METHODS)} "
             f"methods): {STATS['raised']} raised cleanly, {STATS['returned']} returned, "
             f"{STATS['compared']} compared with "
             f"{'torch' if torch is not None else 'NumPy (torch is not installed)'}"]
    if REPORT:
        lines += [f"{v:4d}  {k}" for k, v in sorted(NOTES.items())]
    return lines
