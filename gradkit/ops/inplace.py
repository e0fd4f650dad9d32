"""In-place ops: each bumps the tensor's version. With no gradient recorded
they write straight into the buffer; otherwise the out-of-place result (with
its graph) is written in and the tensor's history is rebased onto it."""
from ..creation import as_tensor
from ..errors import GradkitError
from ..graph import mode
from ..tensor import Tensor, const
from .compare import clamp
from .core import apply, method, op, op_error
from .dispatch import _SCALARS, _device_error, _need_tensor, astype, clone, to_device
from .elementwise import add, div, mul, sub
from . import bounds as _bounds
from .indexing import _check_bounds, _index_put_vjp, _norm_index
from .shape import expand


# ============================================================ in place
def _check_overlap(name, x):
    """Refuse to write into a tensor whose elements share memory (an expanded,
    i.e. broadcast, view: a zero stride on a dim longer than 1), on every device:
    NumPy marks such views read-only, CuPy does not (the write would silently
    land several times on one element)."""
    a = x.array
    st = x._B.strides(a)
    if st is not None:
        for s_, n in zip(st, a.shape):
            if s_ == 0 and n > 1:
                raise GradkitError(
                    f"gradkit.{name}: unsupported operation: more than one element of the "
                    f"written-to tensor (shape {tuple(a.shape)}, an expanded view) refers to a "
                    "single memory location. Please clone() the tensor before performing the "
                    "operation.")


def _leaf_view_check(name, x):
    """As torch: no in-place write, with grad mode on, through a view of a leaf that
    requires grad (the leaf's shared version counter carries the mark)."""
    if mode.enabled and x._view and len(x._vc) > 1:
        raise GradkitError(
            f"gradkit.{name}: a view of a leaf Variable that requires grad is being used in an "
            "in-place operation (the view shares the leaf's memory); wrap the update in "
            "gk.no_grad(), or clone() the view first")


def _inplace(name, x, new):
    """Write ``new`` (computed out of place, with its graph) into ``x`` in place:
    the data changes under every alias, the version bumps, and x's history is
    rebased onto new's node."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor")
    grad_involved = mode.enabled and (x.requires_grad or new.requires_grad)
    _leaf_view_check(name, x)
    if grad_involved and x.grad_fn is None and x.requires_grad:
        raise GradkitError(
            f"gradkit.{name}: a leaf tensor that requires grad is being used in an in-place "
            "operation; wrap it in gk.no_grad() (e.g. for a parameter update) or clone() it")
    if grad_involved and x._view:
        raise GradkitError(
            f"gradkit.{name}: in-place modification of a view of another tensor while "
            "gradients are recorded is not supported; clone() the view first or use the "
            "out-of-place op")
    B = x._B
    nd = new.array
    if tuple(nd.shape) != tuple(x.array.shape):
        raise GradkitError(f"gradkit.{name}: the result's shape {tuple(nd.shape)} doesn't match "
                           f"the in-place target's shape {tuple(x.array.shape)}")
    if nd.dtype != x.array.dtype:
        if x._B.is_floating(nd.dtype) and not x._B.is_floating(x.array.dtype):
            raise GradkitError(f"gradkit.{name}: result type {new.dtype_name} can't be cast to "
                               f"the desired output type {x.dtype_name}")
        nd = B.astype(nd, x.array.dtype)
    _check_overlap(name, x)
    try:
        B.setitem(x.array, Ellipsis, nd)
    except Exception as e:
        raise op_error(name, (x,), e, "the tensor may be a read-only broadcast view; "
                                      "clone() it first") from None
    x._vc[0] += 1
    if grad_involved:
        x.grad_fn = new.grad_fn
        x._oi = new._oi
        x._rg = True
    return x


def _direct(kernel, x, o):
    """The in-place op straight into x's buffer (no temporary, no copy) when no
    gradient is recorded and operand types already agree: e.g. a parameter
    update under no_grad. Returns None to take the general path (which also
    produces the errors)."""
    if x.__class__ is not Tensor:
        return None
    B = x._B
    xd = x.array
    if x._view and len(x._vc) > 1:
        return None
    if o.__class__ is Tensor:
        if o._B is not B or (mode.enabled and (x._rg or o._rg)):
            return None
        od = o.array
        if od.dtype != xd.dtype:
            return None
    elif o.__class__ is float or o.__class__ is int:
        if mode.enabled and x._rg:
            return None
        if (o.__class__ is float or kernel == "idiv") and xd.dtype not in B.float_dtypes:
            return None
        od = o
    else:
        return None
    st = B.strides(xd)
    if st is not None and 0 in st:   # maybe an expanded view: the general path decides
        return None
    try:
        getattr(B, kernel)(xd, od)
    except Exception:  # broadcasting or casting refused before any write
        return None
    x._vc[0] += 1
    return x


@op(public=False)
def add_(x, o, alpha=None):
    if alpha is None:
        r = _direct("iadd", x, o)
        if r is not None:
            return r
    return _inplace("add_", x, add(x, o, alpha))


@op(public=False)
def sub_(x, o, alpha=None):
    if alpha is None:
        r = _direct("isub", x, o)
        if r is not None:
            return r
    return _inplace("sub_", x, sub(x, o, alpha))


def _before(x, needed):
    """x's value for an in-place op whose gradient needs it: the write would
    overwrite the very buffer the op's node saved (and the version check would
    then refuse the backward), so the node gets a copy, as torch's saved
    ``original self``. Only while a gradient that uses it is recorded."""
    return clone(x) if needed and mode.enabled else x


@op(public=False)
def mul_(x, o):
    r = _direct("imul", x, o)
    if r is not None:
        return r
    return _inplace("mul_", x, mul(_before(x, o.__class__ is Tensor and o._rg), o))


@op(public=False)
def div_(x, o):
    r = _direct("idiv", x, o)
    if r is not None:
        return r
    return _inplace("div_", x, div(_before(x, o.__class__ is Tensor and o._rg), o))


@op
def clamp_(x, min=None, max=None):
    """In place: ``x.clamp_(min, max)``, as ``torch.clamp_``."""
    _need_tensor("clamp_", x)
    return _inplace("clamp_", x, clamp(_before(x, x._rg), min, max))


@op
def zero_(x):
    """In place: every element set to zero, as ``torch.zero_``."""
    _need_tensor("zero_", x)
    return fill_(x, 0)


@op
def fill_(x, value):
    """In place: every element set to ``value``, as ``torch.fill_``."""
    _need_tensor("fill_", x)
    B = x._B
    if value.__class__ is not Tensor and not isinstance(value, (int, float)):
        raise TypeError(f"gradkit.fill_: value must be a number or a Tensor, got "
                        f"{type(value).__name__}")
    if value.__class__ is Tensor:
        if value.array.ndim != 0:
            raise GradkitError(f"gradkit.fill_: only supports a 0-dimension value tensor, got "
                               f"shape {value.shape}")
        if value._B is not B:
            value = to_device(value, x.device)  # a 0-d tensor may come from any device
        v = expand(astype(value, x.dtype_name), x.shape)
        return _inplace("fill_", x, add(mul(x, 0), v) if x.requires_grad else v)
    if x.array.dtype == B.bool_dtype:
        value = bool(value)
    elif not B.is_floating(x.array.dtype) and value.__class__ is float:
        value = int(value)
    _leaf_view_check("fill_", x)
    if mode.enabled and x.requires_grad:
        return _inplace("fill_", x, add(mul(x, 0), value))
    _check_overlap("fill_", x)
    try:
        B.setitem(x.array, Ellipsis, value)
    except (OverflowError, ValueError, TypeError) as e:
        raise op_error("fill_", (x, value), e) from None
    x._vc[0] += 1
    return x


@op(public=False)
def copy_(x, src):
    if src.__class__ is not Tensor:
        src = as_tensor(src, device=x.device)
    if src._B is not x._B:
        src = to_device(src, x.device)
    try:
        v = expand(astype(src, x.dtype_name), x.shape)
    except GradkitError:
        raise GradkitError(f"gradkit.copy_: src of shape {tuple(src.array.shape)} can't be "
                           f"broadcast to the tensor's shape {tuple(x.array.shape)}") from None
    if mode.enabled and (x.requires_grad or v.requires_grad):
        # the old value of x gets no gradient: x*0 keeps the graph connected
        # only through src
        return _inplace("copy_", x, add(mul(x.detach(), 0), v))
    return _inplace("copy_", x, v)


@op(public=False, method=False)
def setitem_(x, idx, value):
    """``x[idx] = value``, in place."""
    _leaf_view_check("setitem", x)
    B = x._B
    raw, advanced = _norm_index(x, idx)
    _check_bounds(x, raw)
    if advanced:
        _bounds.check_index_arrays(x, raw, "setitem")
    if value.__class__ is not Tensor:
        if value.__class__ in _SCALARS:
            vt = None
        else:
            value = as_tensor(value, device=x.device)
            vt = value
    else:
        vt = value
        if vt._B is not B:
            raise _device_error("setitem", x, vt)
    if mode.enabled and (x.requires_grad or (vt is not None and vt.requires_grad)):
        if vt is None:
            vt = const(B, B.full((), value, x.array.dtype))
        if vt.array.dtype != x.array.dtype:
            vt = astype(vt, x.dtype_name)
        new = apply(_index_put_vjp, B, (x, vt), (x.array, vt.array), {"idx": raw},
                    {"vshape": tuple(vt.array.shape)})
        return _inplace("setitem", x, new)
    v = value if vt is None else (vt.array if vt.array.dtype == x.array.dtype else B.astype(vt.array, x.array.dtype))
    _check_overlap("setitem", x)
    try:
        B.setitem(x.array, raw, v)
    except Exception as e:
        raise op_error("setitem", (x, value), e) from None
    x._vc[0] += 1
    return x


for _name, _fn in (("__setitem__", setitem_), ("__iadd__", add_), ("__isub__", sub_),
                   ("__imul__", mul_), ("__itruediv__", div_)):
    method(_name, _fn)
