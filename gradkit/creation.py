"""Creation functions, seeding, DLPack exchange (above the Tensor floor,
below the ops: they make tensors, they record nothing)."""
from . import backends
from .backends import io as _io
from .device import backend_of, device as _device
from .dtypes import to_dtype, get_default_dtype, set_default_dtype, _default  # noqa: F401
from .errors import GradkitError
from .graph import host_sync_violation, mode
from .tensor import Tensor, const

_seed = [None]


def manual_seed(seed):
    """Seed every backend's generator (existing ones now, new ones when made)."""
    _seed[0] = int(seed)
    for B in list(backends._cache.values()):
        B.seed(int(seed))
    return seed


def _backend(device):
    B = backend_of(device if device is not None else _default_device[0])
    if _seed[0] is not None and not getattr(B, "_seeded", False):
        B.seed(_seed[0])
        B._seeded = True
    return B


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_device(data):
    if isinstance(data, Tensor):
        return data.device
    cai = getattr(data, "__cuda_array_interface__", None)
    if cai is not None:
        dev = getattr(data, "device", None)
        idx = getattr(dev, "id", None)          # cupy.cuda.Device
        if idx is None:
            idx = getattr(dev, "index", None)   # torch.device (None: the current one)
        return f"cuda:{idx or 0}"
    d = getattr(data, "device", None)
    if d is not None and "device1" in str(d):
        return "fake"
    if d is not None and "device2" in str(d):
        return "fake:1"
    return _default_device[0] or "cpu"


def _bdtype(B, dtype):
    if dtype is None:
        return None
    name = to_dtype(dtype).name
    dt = B.dtypes.get(name)
    if dt is None:
        raise TypeError(f"gradkit: dtype {name} is not available on {B.device_str}")
    return dt


def _convert(data, B, dtype, copy):
    """Raw array on backend B from Python data, a NumPy/CuPy array or a Tensor."""
    if isinstance(data, Tensor):
        if data._B is B:
            arr = data.array
        else:
            if data._B.type != "cpu" and mode.host_sync_guard and B.type != data._B.type:
                host_sync_violation(f"gradkit.tensor(..., device={B.device_str!r})")
            arr = B.to_device(data._B, data.array)
        if dtype is not None and arr.dtype != dtype:
            return B.astype(arr, dtype)
        return B.copy(arr) if copy else arr
    has_dtype = hasattr(data, "dtype") and hasattr(data, "shape")
    if has_dtype and _io.is_host_array(data) and not _io.native_byte_order(data):
        data = _io.to_native(data)   # a big-endian file's array: a converted copy
    if has_dtype:
        if B.type == "cpu" and getattr(data, "__cuda_array_interface__", None) is not None:
            data = data.get()  # an explicit device -> host copy the user asked for
        try:
            arr = B.asarray(data, dtype) if not copy else B.copy(B.asarray(data, dtype))
        except Exception:
            try:
                arr = B.from_host(data, dtype)
            except Exception as e:
                raise TypeError(f"gradkit.tensor: can't make a tensor on {B.device_str} from "
                                f"{type(data).__name__} of dtype {data.dtype}: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        if arr.dtype not in B._dtype_set:  # e.g. an object array, or a class like np.float64
            raise TypeError(f"gradkit.tensor: can't make a tensor from {data!r:.60} (dtype "
                            f"{arr.dtype}); use numbers, bools or arrays of them")
        return arr
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
        data = _tolist(data)
    try:
        arr = B.asarray(data)
    except Exception as e:
        raise TypeError(f"gradkit.tensor: could not convert data of type {type(data).__name__} "
                        f"to a tensor: {str(e).splitlines()[0]}") from None
    if arr.dtype not in B._dtype_set:
        raise TypeError(f"gradkit.tensor: can't make a tensor from {type(data).__name__} data "
                        f"of dtype {arr.dtype}; use numbers, bools or arrays of them")
    if dtype is None:
        if B.is_floating(arr.dtype):
            dtype = B.dtypes[_default[0].name]
        elif B.is_integral(arr.dtype):
            dtype = B.dtypes["int64"]
    if dtype is not None and arr.dtype != dtype:
        arr = B.astype(arr, dtype)
    return arr


def _flat(x):
    for v in x:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _tolist(x):
    return [(_tolist(v) if isinstance(v, (list, tuple)) else (v.item() if isinstance(v, Tensor) else v))
            for v in x]


def tensor(data, *, dtype=None, device=None, requires_grad=False):
    """A new tensor holding (a copy of) ``data``."""
    dev = _infer_device(data) if device is None else device
    B = _backend(dev)
    arr = _convert(data, B, _bdtype(B, dtype), copy=True)
    return _finish(const(B, arr), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with ``data`` where it can."""
    if isinstance(data, Tensor) and dtype is None and (device is None or _device(device) == data.device):
        return data
    dev = _infer_device(data) if device is None else device
    B = _backend(dev)
    return const(B, _convert(data, B, _bdtype(B, dtype), copy=False))


def from_numpy(a):
    """A cpu Tensor sharing memory with the NumPy array ``a`` (torch.from_numpy).
    Refuses what torch refuses: non-arrays, dtypes gradkit has no name for
    (complex, longdouble, object...) and non-native byte order (which could not
    share memory); ``gk.tensor(a)`` copies and converts instead."""
    B = _backend("cpu")
    if not _io.is_host_array(a):
        raise TypeError(f"gradkit.from_numpy: expected a numpy.ndarray, got "
                        f"{type(a).__name__}; use gk.tensor(data) for lists and scalars")
    if not _io.native_byte_order(a):
        raise TypeError(f"gradkit.from_numpy: the array has byte order {a.dtype.str!r}, not "
                        f"the machine's; memory can't be shared. Use gk.tensor(a) (a "
                        f"converted copy) or a.astype(a.dtype.newbyteorder('='))")
    arr = B.asarray(a)
    if arr.dtype not in B._dtype_set:
        raise TypeError(f"gradkit.from_numpy: can't make a tensor from an array of dtype "
                        f"{a.dtype}; use one of float16, float32, float64, int8, int16, "
                        f"int32, int64, uint8, bool")
    return const(B, arr)


def from_dlpack(x):
    """Zero-copy import from any DLPack producer (torch, jax, cupy, numpy)."""
    if isinstance(x, Tensor):
        return x.detach()
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"gradkit.from_dlpack: expected an object with __dlpack__ (a tensor or "
                        f"array of torch, jax, cupy, numpy...), got {type(x).__name__}")
    dev_type, dev_id = x.__dlpack_device__()
    dev_type = int(dev_type)
    if dev_type == 1:       # kDLCPU
        B = _backend("cpu")
    elif dev_type == 2:     # kDLCUDA
        B = _backend(f"cuda:{dev_id}")
    else:
        raise GradkitError(f"gradkit.from_dlpack: unsupported DLPack device type {dev_type}; "
                           "gradkit takes CPU and CUDA arrays")
    return const(B, B.xp.from_dlpack(x))


def _size(name, size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    try:
        size = tuple(int(s.__index__()) for s in size)
    except (AttributeError, TypeError):
        raise TypeError(f"gradkit.{name}: size must be ints, got {size!r}") from None
    for s in size:
        if s < 0:
            raise GradkitError(f"gradkit.{name}: negative dimension {s} in size {size}")
    return size


def _float_dtype(B, dtype):
    return _bdtype(B, dtype) if dtype is not None else B.dtypes[_default[0].name]


def _number(name, what, v, integer=False):
    """A Python number argument (or a one-element tensor / NumPy scalar)."""
    if isinstance(v, Tensor) and v.numel() == 1:
        v = v.item()
    elif not isinstance(v, (int, float)) and hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:
        v = v.item()  # a NumPy scalar
    if integer:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"gradkit.{name}: {what} must be an int, got {type(v).__name__}")
    elif not isinstance(v, (int, float)):
        raise TypeError(f"gradkit.{name}: {what} must be a number, got {type(v).__name__}")
    return v


def _alloc(name, fn, *args):
    """Run a backend allocation; a size the backend can't allocate is a gradkit error."""
    try:
        return fn(*args)
    except (ValueError, MemoryError, OverflowError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GradkitError(f"gradkit.{name}: can't allocate the requested tensor ({msg}); "
                           f"arguments: {[a for a in args[:-1] if not hasattr(a, 'xp')]}") from None


def _make(name, size, dtype, device, requires_grad, fn):
    size = _size(name, size)
    B = _backend(device)
    return _finish(const(B, _alloc(name, fn, B, size, _float_dtype(B, dtype))), requires_grad)


def _size_kw(name, shape, size):
    """The size given positionally (``zeros(2, 3)``, ``zeros((2, 3))``) or as torch's
    keyword (``zeros(size=(2, 3))``), not both."""
    if size is None:
        return shape
    if shape:
        raise TypeError(f"gradkit.{name}: got the size both positionally and as size=")
    return (size,)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False):
    size = _size_kw("zeros", shape, size)
    return _make("zeros", size, dtype, device, requires_grad, lambda B, s, d: B.zeros(s, d))


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False):
    size = _size_kw("ones", shape, size)
    return _make("ones", size, dtype, device, requires_grad, lambda B, s, d: B.ones(s, d))


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False):
    size = _size_kw("empty", shape, size)
    return _make("empty", size, dtype, device, requires_grad, lambda B, s, d: B.empty(s, d))


def rand(*shape, size=None, dtype=None, device=None, requires_grad=False):
    size = _size_kw("rand", shape, size)
    return _make("rand", size, dtype, device, requires_grad, lambda B, s, d: B.rand(s, d))


def randn(*shape, size=None, dtype=None, device=None, requires_grad=False):
    size = _size_kw("randn", shape, size)
    return _make("randn", size, dtype, device, requires_grad, lambda B, s, d: B.randn(s, d))


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    B = _backend(device)
    if dtype is None:
        dt = (B.dtypes["bool"] if isinstance(fill_value, bool) else B.dtypes["int64"]
              if isinstance(fill_value, int) else B.dtypes[_default[0].name])
    else:
        dt = _bdtype(B, dtype)
    size = _size("full", tuple(size) if isinstance(size, (tuple, list)) else (size,))
    fill_value = _number("full", "fill_value", fill_value)
    return _finish(const(B, _alloc("full", B.full, size, fill_value, dt)), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None):
    if high is None:
        low, high = 0, low
    elif size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high   # torch's randint(high, size)
    if size is None:
        raise TypeError("gradkit.randint: size is required")
    low, high = _number("randint", "low", low, True), _number("randint", "high", high, True)
    if low >= high:
        raise ValueError(f"gradkit.randint: low ({low}) must be less than high ({high})")
    B = _backend(device)
    dt = _bdtype(B, dtype) if dtype is not None else B.dtypes["int64"]
    return const(B, _alloc("randint", B.randint, low, high, _size("randint", (size,)), dt))


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", w, v) for w, v in (("start", start), ("end", end),
                                                             ("step", step)))
    B = _backend(device)
    if dtype is None:
        isf = any(isinstance(v, float) for v in (start, end, step))
        dt = B.dtypes[_default[0].name] if isf else B.dtypes["int64"]
    else:
        dt = _bdtype(B, dtype)
        if not B.is_floating(dt):  # torch casts the bounds and step to the integer dtype first
            start, end, step = int(start), int(end), int(step)
    if step == 0:
        raise GradkitError("gradkit.arange: step must be nonzero")
    return _finish(const(B, _alloc("arange", B.arange, start, end, step, dt)), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    steps = _number("linspace", "steps", steps, True)
    if steps < 0:
        raise ValueError(f"gradkit.linspace: number of steps must be non-negative, got {steps}")
    B = _backend(device)
    return _finish(const(B, _alloc("linspace", B.linspace, start, end, steps,
                                   _float_dtype(B, dtype))), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    n = _number("eye", "n", n, True)
    m = n if m is None else _number("eye", "m", m, True)
    if n < 0 or m < 0:
        raise ValueError(f"gradkit.eye: n and m must be non-negative, got {n}, {m}")
    B = _backend(device)
    return _finish(const(B, _alloc("eye", B.eye, n, m, _float_dtype(B, dtype))), requires_grad)


def _like(x, dtype, device):
    if not isinstance(x, Tensor):
        raise TypeError(f"gradkit: the *_like functions take a Tensor, got {type(x).__name__}")
    return (x.dtype if dtype is None else dtype), (x.device if device is None else device)


def zeros_like(x, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return zeros(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def ones_like(x, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return ones(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def empty_like(x, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return empty(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def full_like(x, fill_value, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return full(x.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def rand_like(x, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return rand(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def randn_like(x, *, dtype=None, device=None, requires_grad=False):
    dt, dev = _like(x, dtype, device)
    return randn(x.shape, dtype=dt, device=dev, requires_grad=requires_grad)


def const_from_host(ref, arr):
    """A tensor on ``ref``'s device, in ``ref``'s dtype, from a host (NumPy) array."""
    B = ref._B
    return const(B, B.from_host(arr, ref.array.dtype))


# ---- the default device (as torch.set_default_device / get_default_device)
_default_device = [None]


def set_default_device(device):
    """Where factory functions (``zeros``, ``randn``, ``tensor`` of Python or
    NumPy data, ...) put their tensors when no ``device=`` is given; ``None``
    restores the CPU. As torch.set_default_device (process-wide here; torch's
    is per thread)."""
    if device is None:
        _default_device[0] = None
        return
    d = _device(device)
    backend_of(str(d))  # fail now, with the backend's message, if unusable
    _default_device[0] = None if str(d) == "cpu" else str(d)


def get_default_device():
    """The device factory functions use by default (``gk.device("cpu")`` unless
    ``set_default_device`` changed it)."""
    return _device(_default_device[0] or "cpu")
