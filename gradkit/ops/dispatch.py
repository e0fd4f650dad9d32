"""The front door of every op: argument checks, device checks, torch's dtype
promotion, and the casts (``astype``, ``to_device``, ``clone``) it needs.

The dispatchers ``_binary``/``_unary``/``_float_unary`` take a primitive and run
it through the fast recording path once operands agree.
"""
from ..creation import as_tensor, tensor
from ..device import backend_of, device_of, is_device_spec
from ..dtypes import (KIND, get_default_dtype, result_dtype_name, to_dtype, float16, float32,
                      float64, int32, int64, bool_)
from ..errors import GradkitError
from ..graph import mode
from ..reliability import host_sync_violation
from ..tensor import Tensor, const
from ..tensor_pickle import deepcopy_tensor, reduce_tensor
from .core import apply, apply_binary, apply_unary, method, op, prim
from .out import write_out

_SCALARS = (int, float, bool)


# ---------------------------------------------------------------- helpers
def _default_float(B):
    return B.dtypes[get_default_dtype().name]


def _as_tensor_like(x, ref, name):
    """Coerce a non-Tensor operand (NumPy array, list, NumPy scalar) onto ref's device."""
    try:
        return as_tensor(x, device=ref.device)
    except Exception as e:
        raise TypeError(f"gradkit.{name}: unsupported operand of type {type(x).__name__} "
                        f"({e})") from None


def _device_error(name, a, b):
    return GradkitError(
        f"gradkit.{name}: expected all tensors to be on the same device, but found "
        f"{a._B.device_str} and {b._B.device_str}; move one with .to(device)")


def _promote_pair(name, a, b):
    """Slow path of a binary op whose operands differ in dtype, or mix a
    Python scalar with a tensor of another category."""
    if name == "sub":
        _check_bool_sub(a, b)
    B = a._B if a.__class__ is Tensor else b._B
    if a.__class__ is Tensor and b.__class__ is Tensor:
        an, bn = a.dtype_name, b.dtype_name
        za, zb = a.array.ndim == 0, b.array.ndim == 0
        if za != zb:
            # torch: a 0-d tensor is like a Python scalar; it decides the dtype
            # only when its category (bool < int < float) is higher
            dn, zn = (bn, an) if za else (an, bn)
            target = zn if KIND[zn] > KIND[dn] else dn
        else:
            target = result_dtype_name(an, bn)
        if a.dtype_name != target:
            a = astype(a, target)
        if b.dtype_name != target:
            b = astype(b, target)
        return a, b
    t, s = (a, b) if a.__class__ is Tensor else (b, a)
    if s.__class__ is float and not B.is_floating(t.array.dtype):
        t = astype(t, _default_float(B))
    elif s.__class__ is int and t.dtype_name == "bool":
        t = astype(t, "int64")
    return (t, s) if a.__class__ is Tensor else (s, t)


def _check_bool_sub(a, b):
    """torch refuses subtraction with a bool operand (tensor or Python bool)."""
    ba = a.__class__ is bool or (a.__class__ is Tensor and a.array.dtype == a._B.bool_dtype)
    bb = b.__class__ is bool or (b.__class__ is Tensor and b.array.dtype == b._B.bool_dtype)
    if ba and bb:
        raise GradkitError("gradkit.sub: subtraction, the `-` operator, with two bool tensors "
                           "is not supported; use `a != b` (logical xor) instead")
    if ba or bb:
        raise GradkitError("gradkit.sub: subtraction, the `-` operator, with a bool tensor is "
                           "not supported; to invert a mask use `~` or gk.logical_not(), or "
                           "convert it first with .int() or .float()")


def _binary(p, a, b):
    """Dispatch for a binary primitive: device check, dtype promotion, scalars."""
    if a.__class__ is Tensor:
        B = a._B
        ad = a.array
        if b.__class__ is Tensor:
            if b._B is not B:
                raise _device_error(p.name, a, b)
            bd = b.array
            if ad.dtype is not bd.dtype and ad.dtype != bd.dtype:
                a, b = _promote_pair(p.name, a, b)
                ad, bd = a.array, b.array
        elif b.__class__ is float:
            if not a._rg and ad.dtype not in B.float_dtypes:   # requires grad: floating
                a, b = _promote_pair(p.name, a, b)
                ad = a.array
            bd = b
        elif b.__class__ is int or b.__class__ is bool:
            if b.__class__ is int and ad.dtype == B.bool_dtype:
                a, b = _promote_pair(p.name, a, b)
                ad = a.array
            elif b.__class__ is bool and ad.dtype != B.bool_dtype:
                if p.name == "sub":
                    _check_bool_sub(a, b)
                b = int(b)   # the lowest category: the tensor's dtype wins (array API refuses bools)
            bd = b
        else:
            return _binary(p, a, _as_tensor_like(b, a, p.name))
    elif b.__class__ is Tensor:
        B = b._B
        bd = b.array
        if a.__class__ in _SCALARS:
            if (a.__class__ is float and bd.dtype not in B.float_dtypes) or (
                    a.__class__ is int and bd.dtype == B.bool_dtype):
                a, b = _promote_pair(p.name, a, b)
                bd = b.array
            elif a.__class__ is bool and bd.dtype != B.bool_dtype:
                if p.name == "sub":
                    _check_bool_sub(a, b)
                a = int(a)
            ad = a
        else:
            return _binary(p, _as_tensor_like(a, b, p.name), b)
    else:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor operand, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    return apply_binary(p, B, a, b, ad, bd)


def _unary(p, x, out=None):
    """A one-input primitive; ``out``: torch's out= keyword (no wrapper frame on
    the hot path of small-op chains)."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor, got {type(x).__name__}")
    t = apply_unary(p, x)
    return t if out is None else write_out(p.name, t, out)


def unary_op(p, floating):
    """The op function ``(x, *, out=None)`` of a one-input primitive: the common
    call (a Tensor, floating or already requiring grad when ``floating``, no
    ``out=``) goes straight to ``apply_unary``, one frame less per op on a chain
    of small ops; everything else through ``_float_unary``/``_unary``."""
    if floating:
        def fn(x, *, out=None):
            if out is None and x.__class__ is Tensor and (
                    x._rg or x.array.dtype in x._B.float_dtypes):
                return apply_unary(p, x)
            return _float_unary(p, x, out)
    else:
        def fn(x, *, out=None):
            if out is None and x.__class__ is Tensor:
                return apply_unary(p, x)
            return _unary(p, x, out)
    return fn


def _need_tensor(name, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")


def _need_bool(name, v, what="keepdim"):
    if not isinstance(v, int) or v not in (0, 1):  # bool, or 0/1
        raise TypeError(f"gradkit.{name}: {what} must be a bool, got {type(v).__name__}")


def _float_unary(p, x, out=None):
    """Unary ops defined on floats: integer inputs are promoted as torch does."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor, got {type(x).__name__}")
    # a tensor that requires grad is floating (torch's invariant, kept by
    # requires_grad and .data): no dtype lookup on the hot path
    if not x._rg and x.array.dtype not in x._B.float_dtypes:
        x = astype(x, _default_float(x._B))
    t = apply_unary(p, x)
    return t if out is None else write_out(p.name, t, out)


def norm_dim(name, dim, ndim):
    if not isinstance(dim, int) or isinstance(dim, bool):
        try:
            dim = dim.__index__()
        except (AttributeError, TypeError):
            raise TypeError(f"gradkit.{name}: dim must be an int, got {type(dim).__name__}") from None
    n = ndim if ndim > 0 else 1
    if dim < -n or dim >= n:
        raise IndexError(f"gradkit.{name}: dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim + n if dim < 0 else dim


def norm_dims(name, dim, ndim):
    """None -> None; int or sequence -> sorted tuple of non-negative dims."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        dims = tuple(sorted({norm_dim(name, d, ndim) for d in dim}))
        if len(dims) != len(dim):
            raise GradkitError(f"gradkit.{name}: dim {tuple(dim)} appears more than once")
        return dims if ndim else ()
    d = norm_dim(name, dim, ndim)
    return (d,) if ndim else ()  # a 0-d tensor: dim 0 / -1 is accepted, nothing to reduce


# ================================================================ dtype
@prim("astype")
def _astype_vjp(F, n, g, dtype=None, src=None):
    return (F.astype(g, src),)


@op(public=False, method=False)
def astype(x, dtype):
    B = x._B
    dt = B.dtypes.get(to_dtype(dtype).name) if not _is_backend_dtype(B, dtype) else dtype
    if dt is None:
        raise TypeError(f"gradkit.astype: dtype {dtype!r} is not available on {B.device_str}")
    if x.array.dtype == dt:
        return x
    if x.requires_grad and not B.is_floating(dt):
        return const(B, B.astype(x.array, dt))
    return apply(_astype_vjp, B, (x,), (x.array,), {"dtype": dt}, {"src": x.array.dtype})


_DT_CLASSES = {}


def _is_backend_dtype(B, dt):
    # compare only with dtype objects of the backend's own kinds: array_api_strict
    # warns when its dtypes meet NumPy's in ==
    kinds = _DT_CLASSES.get(B)
    if kinds is None:
        kinds = _DT_CLASSES[B] = frozenset(d.__class__ for d in B._dtype_set)
    if dt.__class__ not in kinds:
        return False
    try:
        return dt in B._dtype_set
    except TypeError:
        return False


@op(public=False, method=False)
def to_device(x, dev):
    """Copy to another device; differentiable (the VJP copies the gradient back)."""
    B2 = backend_of(dev)
    if B2 is x._B:
        return x
    if x._B.type != "cpu" and mode.host_sync_guard and B2.type != x._B.type:
        host_sync_violation(f"to({dev})")   # device to device is no host sync
    return apply(_to_device_vjp, B2, (x,), (x._B, x.array), None, {"src": x._B})


@prim("to_device")
def _to_device_vjp(F, n, g, src=None):
    if g.__class__ is Tensor:
        return (to_device(g, device_of(src)),)
    return (src.to_device(F, g),)


@op
def clone(x):
    _need_tensor("clone", x)
    return apply(_clone_vjp, x._B, (x,), (x.array,))


@prim("copy")
def _clone_vjp(F, n, g):
    return (g,)


@op(public=False)
def contiguous(x):
    return x


@op(method=False)   # Tensor.detach lives with the autograd bookkeeping (tensor.py)
def detach(x):
    _need_tensor("detach", x)
    return x.detach()


# ------------------------------------------------- conversion methods
@method("__init__")
def _init(self, data, dtype=None, device=None, requires_grad=False):
    """``gk.Tensor(data, dtype=None, device=None, requires_grad=False)``: as
    ``gk.tensor``."""
    t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
    for s in Tensor.__slots__[:-1]:
        setattr(self, s, getattr(t, s, None))  # _glock: made on first use


@method("to")
def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
    for a in args:
        if is_device_spec(a):
            device = a
        elif isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        else:
            dtype = a
    t = self
    if device is not None:
        t = to_device(t, device)
    if dtype is not None:
        t = astype(t, dtype)
    if copy and t is self:
        t = clone(self)
    return t


@method("cpu")
def cpu(self):
    return to(self, "cpu")


@method("cuda")
def cuda(self, device=None):
    return to(self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))


def _cast_method(dt):
    def cast(self):
        return astype(self, dt)
    cast.__name__ = cast.__qualname__ = dt.name
    return cast


# t.float() ... t.bool(): one cast each, as torch
for _name, _dt in (("float", float32), ("double", float64), ("half", float16),
                   ("long", int64), ("int", int32), ("bool", bool_)):
    method(_name, _cast_method(_dt))


# pickle and deepcopy (gradkit/tensor_pickle.py)
method("__reduce_ex__", lambda self, protocol: reduce_tensor(self))
method("__deepcopy__", deepcopy_tensor)


@method("type_as")
def type_as(self, other):
    if not isinstance(other, Tensor):
        raise TypeError(f"gradkit.type_as: expected a Tensor, got {type(other).__name__}")
    return astype(self, other.dtype)
