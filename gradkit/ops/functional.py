"""The differentiable namespace: every primitive (forward kernel + VJP in one
block) and the compositions built from them.

These functions take Tensors (and Python scalars where an operand may be one).
Their names match the backend kernel names, so a VJP written as
``F.mul(g, y)`` runs on raw arrays (F = backend) or on Tensors (F = this
module, under ``create_graph``).
"""
import builtins

from ..autograd.graph import mode
from ..tensor import (Tensor, GradkitError, _new, float32, float64, to_dtype, DTYPES,
                      bool_)
from .core import Prim, prim, apply, apply_unary, apply_binary, const, op_error

_SCALARS = (int, float, bool)
_py_abs = builtins.abs
_py_sum = builtins.sum
_py_max = builtins.max


# ---------------------------------------------------------------- helpers
def _default_float(B):
    from ..creation import get_default_dtype
    return B.dtypes[get_default_dtype().name]


def _as_tensor_like(x, ref, name):
    """Coerce a non-Tensor operand (NumPy array, list, NumPy scalar) onto ref's device."""
    from ..creation import as_tensor
    try:
        return as_tensor(x, device=ref.device)
    except Exception as e:
        raise TypeError(f"gradkit.{name}: unsupported operand of type {type(x).__name__} "
                        f"({e})") from None


def _device_error(name, a, b):
    return GradkitError(
        f"gradkit.{name}: expected all tensors to be on the same device, but found "
        f"{a._B.device_str} and {b._B.device_str}; move one with .to(device)")


_KIND = {"bool": 0, "uint8": 1, "int8": 1, "int16": 1, "int32": 1, "int64": 1,
         "float16": 2, "float32": 2, "float64": 2}
_RANK = {"bool": 0, "uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5,
         "float16": 6, "float32": 7, "float64": 8}


def result_dtype_name(a, b):
    """torch's promotion for two dtype names: the higher category wins; within a
    category, the wider type."""
    ka, kb = _KIND[a], _KIND[b]
    if ka != kb:
        return a if ka > kb else b
    if ka == 1 and {a, b} == {"uint8", "int8"}:
        return "int16"   # the smallest type that holds both
    return a if _RANK[a] >= _RANK[b] else b


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
            target = zn if _KIND[zn] > _KIND[dn] else dn
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
            if ad.dtype not in B.float_dtypes:
                a, b = _promote_pair(p.name, a, b)
                ad = a.array
            bd = b
        elif b.__class__ is int or b.__class__ is bool:
            if b.__class__ is int and ad.dtype == B.bool_dtype:
                a, b = _promote_pair(p.name, a, b)
                ad = a.array
            elif b.__class__ is bool and ad.dtype != B.bool_dtype:
                if p is _sub_vjp:
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
                if p is _sub_vjp:
                    _check_bool_sub(a, b)
                a = int(a)
            ad = a
        else:
            return _binary(p, _as_tensor_like(a, b, p.name), b)
    else:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor operand, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    return apply_binary(p, B, a, b, ad, bd)


def _unary(p, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor, got {type(x).__name__}")
    return apply_unary(p, x)


def _need_tensor(name, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")


def _need_bool(name, v, what="keepdim"):
    if not isinstance(v, int) or v not in (0, 1):  # bool, or 0/1
        raise TypeError(f"gradkit.{name}: {what} must be a bool, got {type(v).__name__}")


def _float_unary(p, x):
    """Unary ops defined on floats: integer inputs are promoted as torch does."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{p.name}: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype not in x._B.float_dtypes:
        x = astype(x, _default_float(x._B))
    return apply_unary(p, x)


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


# ======================================================== arithmetic prims
@prim("add")
def _add_vjp(F, n, g):
    return g, g


@prim("sub")
def _sub_vjp(F, n, g):
    return g, (F.neg(g) if n[1] else None)


@prim("mul", save=(0, 1), save_for=(1, 0))
def _mul_vjp(F, n, g, a, b):
    return (F.mul(g, b) if n[0] else None), (F.mul(g, a) if n[1] else None)


@prim("div", save=(0, 1), save_for=(1, None))
def _div_vjp(F, n, g, a, b):
    ga = F.div(g, b) if n[0] else None
    gb = F.neg(F.div(F.mul(g, a), F.mul(b, b))) if n[1] else None
    return ga, gb


@prim("pow", save=(0, 1), out=True)
def _pow_vjp(F, n, g, a, b, y):
    ga = gb = None
    if n[0]:
        if b.__class__ in _SCALARS:
            ga = F.mul(g, F.mul(F.pow(a, b - 1), b)) if b != 0 else F.mul(g, 0.0)
        else:
            ga = F.mul(g, F.mul(b, F.pow(a, F.sub(b, 1.0))))
    if n[1]:
        # d/db a**b = a**b * log(a); torch defines it as 0 where a == 0 and b >= 0
        safe = F.where(F.eq(a, 0.0), 1.0, a) if a.__class__ not in _SCALARS else a
        lg = F.log(safe) if safe.__class__ not in _SCALARS else _log_scalar(safe)
        gb = F.mul(g, F.mul(y, lg))
        if a.__class__ not in _SCALARS:
            gb = F.where(F.logical_and(F.eq(a, 0.0), F.ge(b, 0.0)), 0.0, gb)
    return ga, gb


def _log_scalar(s):
    import math
    return math.log(s) if s > 0 else float("nan")


@prim("neg")
def _neg_vjp(F, n, g):
    return (F.neg(g),)


def _times_alpha(name, a, b, alpha):
    """``b * alpha`` in the dtype of ``a op b``: as in torch, alpha never promotes."""
    if not isinstance(alpha, (int, float)):
        raise TypeError(f"gradkit.{name}: alpha must be a number, got {type(alpha).__name__}")
    if b.__class__ is not Tensor:
        if a.__class__ is not Tensor:
            raise TypeError(f"gradkit.{name}: expected a Tensor operand, got "
                            f"{type(a).__name__} and {type(b).__name__}")
        return mul(b, alpha)
    if a.__class__ is Tensor:
        target = result_dtype_name(a.dtype_name, b.dtype_name)
    else:  # a Python scalar promotes by category only
        target = b.dtype_name
        if a.__class__ is float and _KIND[target] < 2:
            target = b._B.dtype_name(_default_float(b._B))
        elif a.__class__ is int and target == "bool":
            target = "int64"
    if isinstance(alpha, float) and _KIND[target] < 2:
        raise TypeError(f"gradkit.{name}: for integral input tensors, alpha must not be a "
                        f"floating point number (got {alpha})")
    out = mul(b, alpha)
    return out if out.dtype_name == target else astype(out, target)


def add(a, b, alpha=None):
    if alpha is not None:
        b = _times_alpha("add", a, b, alpha)
    return _binary(_add_vjp, a, b)


def sub(a, b, alpha=None):
    if alpha is not None:
        _check_bool_sub(a, b)
        b = _times_alpha("sub", a, b, alpha)
    return _binary(_sub_vjp, a, b)


def mul(a, b):
    return _binary(_mul_vjp, a, b)


def div(a, b):
    # integer / integer is true division in torch: promote to the default float
    ta = a if a.__class__ is Tensor else None
    tb = b if b.__class__ is Tensor else None
    t = ta if ta is not None else tb
    if t is not None:
        B = t._B
        fa = ta is None or ta.array.dtype in B.float_dtypes
        fb = tb is None or tb.array.dtype in B.float_dtypes
        if not (fa or fb) or (ta is None and a.__class__ is not float and not fb) or (
                tb is None and b.__class__ is not float and not fa):
            if ta is not None:
                a = astype(ta, _default_float(B))
            if tb is not None:
                b = astype(tb, _default_float(B))
    return _binary(_div_vjp, a, b)


true_divide = divide = div
multiply = mul
subtract = sub


def pow(a, b):
    if a.__class__ is Tensor and (b.__class__ is bool or b.__class__ is Tensor) \
            and a.array.dtype == a._B.bool_dtype and (b.__class__ is bool or b.array.dtype == a._B.bool_dtype):
        # torch keeps bool ** bool in bool (NumPy gives int8): a ** b == a or not b
        return logical_or(a, logical_not(b) if b.__class__ is Tensor else (not b))
    return _binary(_pow_vjp, a, b)


def neg(x):
    return _unary(_neg_vjp, x)


negative = neg


# ======================================================= elementwise prims
@prim("exp", out=True)
def _exp_vjp(F, n, g, y):
    return (F.mul(g, y),)


@prim("log", save=(0,))
def _log_vjp(F, n, g, x):
    return (F.div(g, x),)


@prim("sqrt", out=True)
def _sqrt_vjp(F, n, g, y):
    return (F.sqrt_backward(y, g),)


@prim("abs", save=(0,))
def _abs_vjp(F, n, g, x):
    return (F.mul(g, F.sign(x)),)


@prim("sin", save=(0,))
def _sin_vjp(F, n, g, x):
    return (F.mul(g, F.cos(x)),)


@prim("cos", save=(0,))
def _cos_vjp(F, n, g, x):
    return (F.neg(F.mul(g, F.sin(x))),)


@prim("tanh", out=True)
def _tanh_vjp(F, n, g, y):
    return (F.tanh_backward(y, g),)


@prim("sigmoid", out=True)
def _sigmoid_vjp(F, n, g, y):
    return (F.sigmoid_backward(y, g),)


@prim("relu", out=True)
def _relu_vjp(F, n, g, y):
    return (F.relu_backward(y, g),)


# Fused backward kernels are primitives too, so double backward works through
# them while the fast path runs one fused kernel.
@prim("tanh_backward", save=(0, 1))
def _tanh_bwd_vjp(F, n, gg, y, g):
    gy = F.mul(F.mul(gg, g), F.mul(y, -2.0)) if n[0] else None
    return gy, (F.tanh_backward(y, gg) if n[1] else None)


@prim("sigmoid_backward", save=(0, 1))
def _sigmoid_bwd_vjp(F, n, gg, y, g):
    gy = F.mul(F.mul(gg, g), F.sub(1.0, F.mul(y, 2.0))) if n[0] else None
    return gy, (F.sigmoid_backward(y, gg) if n[1] else None)


@prim("relu_backward", save=(0,))
def _relu_bwd_vjp(F, n, gg, y):
    return None, (F.relu_backward(y, gg) if n[1] else None)


@prim("sqrt_backward", save=(0, 1))
def _sqrt_bwd_vjp(F, n, gg, y, g):
    gy = F.neg(F.div(F.mul(gg, g), F.mul(F.mul(y, y), 2.0))) if n[0] else None
    return gy, (F.sqrt_backward(y, gg) if n[1] else None)


@prim("mask_mul", save=(1,))
def _mask_mul_vjp(F, n, gg, m):
    return (F.mask_mul(gg, m) if n[0] else None), None


def exp(x):
    return _float_unary(_exp_vjp, x)


def log(x):
    return _float_unary(_log_vjp, x)


def sqrt(x):
    return _float_unary(_sqrt_vjp, x)


def abs(x):
    return _unary(_abs_vjp, x)


absolute = abs


def sin(x):
    return _float_unary(_sin_vjp, x)


def cos(x):
    return _float_unary(_cos_vjp, x)


def tanh(x):
    return _float_unary(_tanh_vjp, x)


def sigmoid(x):
    return _float_unary(_sigmoid_vjp, x)


def relu(x):
    return _unary(_relu_vjp, x)


def tanh_backward(y, g):
    return apply(_tanh_bwd_vjp, y._B, (y, g), (y.array, g.array))


def sigmoid_backward(y, g):
    return apply(_sigmoid_bwd_vjp, y._B, (y, g), (y.array, g.array))


def relu_backward(y, g):
    return apply(_relu_bwd_vjp, y._B, (y, g), (y.array, g.array))


def sqrt_backward(y, g):
    return apply(_sqrt_bwd_vjp, y._B, (y, g), (y.array, g.array))


def mask_mul(g, m):
    return apply(_mask_mul_vjp, g._B, (g, m), (g.array, m.array))


@prim("sign")
def _sign_vjp(F, n, g):
    return (F.zeros_like(g),)


def sign(x):
    """Elementwise sign. As torch, the result requires grad when x does and its
    gradient is zero (zeros, not g * 0: an inf/NaN upstream stays out)."""
    return _unary(_sign_vjp, x)


# ===================================================== binary comparisons
def _nondiff(B, arr):
    return const(B, arr)


def _cmp(name, a, b):
    t = a if a.__class__ is Tensor else b
    if t.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor operand")
    B = t._B
    if a.__class__ is Tensor and b.__class__ is Tensor:
        if a._B is not b._B:
            raise _device_error(name, a, b)
        ad, bd = a.array, b.array
    elif a.__class__ is Tensor:
        if b.__class__ not in _SCALARS:
            b = _as_tensor_like(b, a, name)
            return _cmp(name, a, b)
        ad, bd = a.array, b
    else:
        if a.__class__ not in _SCALARS:
            return _cmp(name, _as_tensor_like(a, b, name), b)
        ad, bd = a, b.array
    try:
        return const(B, getattr(B, name)(ad, bd))
    except Exception as e:
        raise op_error(name, (a, b), e) from None


def eq(a, b):
    return _cmp("eq", a, b)


def ne(a, b):
    return _cmp("ne", a, b)


def lt(a, b):
    return _cmp("lt", a, b)


def le(a, b):
    return _cmp("le", a, b)


def gt(a, b):
    return _cmp("gt", a, b)


def ge(a, b):
    return _cmp("ge", a, b)


def logical_and(a, b):
    return _cmp("logical_and", a, b)


def logical_or(a, b):
    return _cmp("logical_or", a, b)


def bitwise_and(a, b):
    return _cmp("bitwise_and", a, b)


def bitwise_or(a, b):
    return _cmp("bitwise_or", a, b)


def logical_not(x):
    _need_tensor("logical_not", x)
    if x.array.dtype != x._B.bool_dtype:
        return eq(x, 0)  # torch: logical_not of a number is (x == 0)
    return const(x._B, x._B.logical_not(x.array))


def isfinite(x):
    _need_tensor("isfinite", x)
    if not x._B.is_floating(x.array.dtype):  # integers and bools are always finite
        return const(x._B, x._B.ones(x.array.shape, x._B.bool_dtype))
    return const(x._B, x._B.isfinite(x.array))


equal_elementwise = eq
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


# ================================================ maximum / minimum / where
def _minmax_weight(F, a, b):
    """1 where a wins, 1/2 on ties, 0 where b wins (torch's split of ties):
    (sign(a - b) + 1) / 2 for maximum, called with (b, a) for minimum."""
    return F.mul(F.add(F.sign(F.sub(a, b)), 1.0), 0.5)


@prim("maximum", save=(0, 1))
def _maximum_vjp(F, n, g, a, b):
    w = _minmax_weight(F, a, b)
    return (F.mul(g, w) if n[0] else None), (F.mul(g, F.sub(1.0, w)) if n[1] else None)


@prim("minimum", save=(0, 1))
def _minimum_vjp(F, n, g, a, b):
    w = _minmax_weight(F, b, a)
    return (F.mul(g, w) if n[0] else None), (F.mul(g, F.sub(1.0, w)) if n[1] else None)


def maximum(a, b):
    return _binary(_maximum_vjp, a, b)


def minimum(a, b):
    return _binary(_minimum_vjp, a, b)


@prim("where", save=(0,))
def _where_vjp(F, n, g, c):
    return (None,
            F.where(c, g, 0.0) if n[1] else None,
            F.where(c, 0.0, g) if n[2] else None)


def where(cond, a, b=None):
    if b is None and a is None:
        raise TypeError("gradkit.where: where(cond) is nonzero(); pass both a and b")
    if cond.__class__ is not Tensor:
        t = a if a.__class__ is Tensor else b
        cond = _as_tensor_like(cond, t, "where")
    B = cond._B
    if cond.array.dtype != B.bool_dtype:
        cond = ne(cond, 0)
    ta = a.__class__ is Tensor
    tb = b.__class__ is Tensor
    if not ta and not tb:
        if a.__class__ not in _SCALARS or b.__class__ not in _SCALARS:
            raise TypeError("gradkit.where: a and b must be tensors or Python scalars")
        a = const(B, B.full((), a, _default_float(B) if isinstance(a, float) or isinstance(b, float)
                          else B.dtypes["int64"]))
        ta = True
    for t in (a, b):
        if t.__class__ is Tensor and t._B is not B:
            raise _device_error("where", cond, t)
    if ta and tb and a.array.dtype != b.array.dtype:
        a, b = _promote_pair("where", a, b)
    elif ta != tb:
        a, b = _promote_pair("where", a, b) if (
            (a if ta else b).__class__ is Tensor) else (a, b)
    args = (cond, a, b)
    return apply(_where_vjp, B, args, tuple(x.array if x.__class__ is Tensor else x for x in args))


@prim("clamp", save=(0,))
def _clamp_vjp(F, n, g, x, lo=None, hi=None):
    m = None
    if lo is not None:
        m = F.ge(x, lo)
    if hi is not None:
        mh = F.le(x, hi)
        m = mh if m is None else F.logical_and(m, mh)
    return (g if m is None else F.mask_mul(g, m)),


def clamp(x, min=None, max=None):
    _need_tensor("clamp", x)
    if min is None and max is None:
        raise GradkitError("gradkit.clamp: at least one of 'min' or 'max' must not be None")
    if min.__class__ is Tensor or max.__class__ is Tensor:
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    B = x._B
    if (min.__class__ is float or max.__class__ is float) and x.array.dtype not in B.float_dtypes:
        x = astype(x, _default_float(B))
    return apply(_clamp_vjp, B, (x,), (x.array,), {"lo": min, "hi": max})


clip = clamp


# ================================================================ dtype
@prim("astype")
def _astype_vjp(F, n, g, dtype=None, src=None):
    return (F.astype(g, src),)


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


def to_device(x, dev):
    """Copy to another device; differentiable (the VJP copies the gradient back)."""
    from ..device import backend_of
    B2 = backend_of(dev)
    if B2 is x._B:
        return x
    if x._B.type != "cpu" and mode.host_sync_guard and B2.type != x._B.type:
        from ..reliability import host_sync_violation   # device to device is no host sync
        host_sync_violation(f"to({dev})")
    return apply(_to_device_vjp, B2, (x,), (x._B, x.array), None, {"src": x._B})


@prim("to_device")
def _to_device_vjp(F, n, g, src=None):
    if g.__class__ is Tensor:
        from ..device import device_of
        return (to_device(g, device_of(src)),)
    return (src.to_device(F, g),)


def clone(x):
    _need_tensor("clone", x)
    return apply(_clone_vjp, x._B, (x,), (x.array,))


@prim("copy")
def _clone_vjp(F, n, g):
    return (g,)


def contiguous(x):
    return x


# =========================================================== reductions
@prim("sum")
def _sum_vjp(F, n, g, dim=None, keepdim=False, shape=None):
    if not keepdim and dim is not None:
        g = F.reshape(g, tuple(1 if i in dim else s for i, s in enumerate(shape)))
    elif dim is None and not keepdim:
        g = F.reshape(g, (1,) * len(shape))
    return (F.expand(g, shape),)


def sum(x, dim=None, keepdim=False, dtype=None):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.sum: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = astype(x, dtype)
    B = x._B
    shape = x.array.shape
    dims = norm_dims("sum", dim, len(shape))
    if x.array.dtype == B.bool_dtype or (B.is_integral(x.array.dtype) and x.dtype_name != "int64"):
        x = astype(x, "int64")
    if dims == ():
        dims = None  # dim=() reduces all dims, as torch (and a 0-d tensor has none)
    return apply(_sum_vjp, B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": shape})


def mean(x, dim=None, keepdim=False, dtype=None):
    _need_tensor("mean", x)
    if dtype is not None:
        x = astype(x, dtype)
    if x.array.dtype not in x._B.float_dtypes:
        raise GradkitError(f"gradkit.mean: mean() needs a floating point input, got "
                           f"{x.dtype_name}; use .float() first")
    shape = x.array.shape
    dims = norm_dims("mean", dim, len(shape)) or None  # dim=() means all dims, as torch
    n = 1
    for i in (range(len(shape)) if dims is None else dims):
        n *= shape[i]
    return mul(sum(x, dim, keepdim), 1.0 / n if n else float("nan"))


@prim("amax", save=(0,), out=True)
def _amax_vjp(F, n, g, x, y, dim=None, keepdim=False, shape=None):
    # the gradient is split evenly between tied maxima (as torch.amax)
    if not keepdim:
        kshape = tuple(1 if (dim is None or i in dim) else s for i, s in enumerate(shape))
        y = F.reshape(y, kshape)
        g = F.reshape(g, kshape)
    # a NaN is the maximum: only the NaNs share the gradient (torch's evenly_distribute)
    hit = F.logical_or(F.eq(x, y), F.logical_and(F.ne(x, x), F.ne(y, y)))
    mask = F.astype(hit, g.dtype)
    cnt = F.sum(mask, dim=dim, keepdim=True)
    return (F.mul(F.div(g, cnt), mask),)


@prim("amin", save=(0,), out=True)
def _amin_vjp(F, n, g, x, y, dim=None, keepdim=False, shape=None):
    return _amax_vjp.vjp(F, n, g, x, y, dim=dim, keepdim=keepdim, shape=shape)


def _reduce_check(name, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise GradkitError(f"gradkit.{name}: cannot reduce an empty tensor of shape "
                           f"{x.shape}: the operation has no identity")


def amax(x, dim=None, keepdim=False):
    _reduce_check("amax", x)
    dims = norm_dims("amax", dim, x.array.ndim) or None  # dim=() reduces all, as torch
    return apply(_amax_vjp, x._B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": x.array.shape})


def amin(x, dim=None, keepdim=False):
    _reduce_check("amin", x)
    dims = norm_dims("amin", dim, x.array.ndim) or None
    return apply(_amin_vjp, x._B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": x.array.shape})


@prim("max_dim", res=True)
def _max_dim_vjp(F, n, g, idx, dim=None, keepdim=False, shape=None):
    return (F.put_along_dim(shape, idx, g, dim, keepdim),)


@prim("min_dim", res=True)
def _min_dim_vjp(F, n, g, idx, dim=None, keepdim=False, shape=None):
    return (F.put_along_dim(shape, idx, g, dim, keepdim),)


@prim("put_along_dim", save=(1,))
def _put_along_dim_vjp(F, n, gg, idx, shape=None, dim=None, keepdim=False):
    return None, None, (F.take_along_dim(gg, idx, dim, keepdim) if n[2] else None)


@prim("take_along_dim", save=(1,))
def _take_along_dim_vjp(F, n, gg, idx, dim=None, keepdim=False, shape=None):
    return (F.put_along_dim(shape, idx, gg, dim, keepdim) if n[0] else None), None


def put_along_dim(shape, idx, g, dim, keepdim):
    B = g._B
    args = (shape, idx, g)
    return apply(_put_along_dim_vjp, B, args, (shape, idx.array, g.array),
                 {"dim": dim, "keepdim": keepdim})


def take_along_dim(x, idx, dim, keepdim):
    return apply(_take_along_dim_vjp, x._B, (x, idx), (x.array, idx.array),
                 {"dim": dim, "keepdim": keepdim}, {"shape": x.array.shape})


class _MinMaxResult(tuple):
    """(values, indices), as torch.return_types.max."""
    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _minmax_dim(name, p, x, dim, keepdim):
    _reduce_check(name, x)
    d = norm_dim(name, dim, x.array.ndim)
    if x.array.ndim == 0:
        return _MinMaxResult((x, const(x._B, x._B.zeros((), x._B.dtypes["int64"]))))
    v = apply(p, x._B, (x,), (x.array,), {"dim": d, "keepdim": keepdim}, {"shape": x.array.shape})
    idx = v.grad_fn.saved[0] if v.grad_fn is not None else None
    if idx is None:
        # recompute cheaply: no graph was recorded
        _, idx = getattr(x._B, p.name)(x.array, d, keepdim)
    return _MinMaxResult((v, const(x._B, idx)))


def max(x, dim=None, keepdim=False):
    if dim is None:
        return amax(x)
    if dim.__class__ is Tensor:
        return maximum(x, dim)
    return _minmax_dim("max", _max_dim_vjp, x, dim, keepdim)


def min(x, dim=None, keepdim=False):
    if dim is None:
        return amin(x)
    if dim.__class__ is Tensor:
        return minimum(x, dim)
    return _minmax_dim("min", _min_dim_vjp, x, dim, keepdim)


def _arg_empty(name, x, d):
    """torch's IndexError for argmax/argmin over nothing."""
    if d is None and x.numel() == 0:
        raise IndexError(f"gradkit.{name}: expected a reduction dim to be specified for an empty "
                         f"tensor (shape {tuple(x.array.shape)})")
    if d is not None and x.array.ndim and x.array.shape[d] == 0:
        raise IndexError(f"gradkit.{name}: expected reduction dim {d} to have non-zero size "
                         f"(shape {tuple(x.array.shape)})")


def argmax(x, dim=None, keepdim=False):
    _need_tensor("argmax", x)
    d = None if dim is None else norm_dim("argmax", dim, x.array.ndim)
    _arg_empty("argmax", x, d)
    return const(x._B, x._B.astype(x._B.argmax(x.array, d, keepdim), x._B.dtypes["int64"]))


def argmin(x, dim=None, keepdim=False):
    _need_tensor("argmin", x)
    d = None if dim is None else norm_dim("argmin", dim, x.array.ndim)
    _arg_empty("argmin", x, d)
    return const(x._B, x._B.astype(x._B.argmin(x.array, d, keepdim), x._B.dtypes["int64"]))


def all(x, dim=None, keepdim=False):
    _need_tensor("all", x)
    _need_bool("all", keepdim)
    d = norm_dims("all", dim, x.array.ndim)
    return const(x._B, x._B.all(x.array, d, keepdim))


def any(x, dim=None, keepdim=False):
    _need_tensor("any", x)
    _need_bool("any", keepdim)
    d = norm_dims("any", dim, x.array.ndim)
    return const(x._B, x._B.any(x.array, d, keepdim))


# ================================================================ shape
@prim("reshape", view=True)
def _reshape_vjp(F, n, g, shape=None, inshape=None):
    return (F.reshape(g, inshape),)


def _shape_arg(name, args):
    if len(args) == 1 and not isinstance(args[0], int):
        args = args[0]
    try:
        return tuple(int(s.__index__()) for s in args)
    except (AttributeError, TypeError):
        raise TypeError(f"gradkit.{name}: shape must be a sequence of ints, got {args!r}") from None


def reshape(x, *shape):
    _need_tensor("reshape", x)
    shape = _shape_arg("reshape", shape)
    inshape = x.array.shape
    if shape == inshape:
        return x
    n = x.numel()
    neg = [i for i, s in enumerate(shape) if s == -1]
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if len(neg) > 1 or _py_abs(known) == 0 and neg or (
            not neg and known != n) or (neg and n % known) or any_neg(shape):
        raise GradkitError(f"gradkit.reshape: shape {list(shape)} is invalid for an input of "
                           f"size {n} (shape {tuple(inshape)})")
    if neg:
        shape = tuple(n // known if s == -1 else s for s in shape)
    return apply(_reshape_vjp, x._B, (x,), (x.array,), {"shape": shape}, {"inshape": inshape})


def any_neg(shape):
    for s in shape:
        if s < -1:
            return True
    return False


def view(x, *shape):
    _need_tensor("view", x)
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and not hasattr(shape[0], "__index__"):
        return astype(x, shape[0])  # view(dtype) as a cast-free reinterpretation is not supported
    return reshape(x, *shape)


def flatten(x, start_dim=0, end_dim=-1):
    _need_tensor("flatten", x)
    nd = x.array.ndim
    if nd == 0:
        return reshape(x, (1,))
    s = norm_dim("flatten", start_dim, nd)
    e = norm_dim("flatten", end_dim, nd)
    if s > e:
        raise GradkitError("gradkit.flatten: start_dim cannot come after end_dim")
    shp = x.array.shape
    m = 1
    for d in shp[s:e + 1]:
        m *= d
    return reshape(x, tuple(shp[:s]) + (m,) + tuple(shp[e + 1:]))


def unsqueeze(x, dim):
    _need_tensor("unsqueeze", x)
    nd = x.array.ndim
    d = norm_dim("unsqueeze", dim, nd + 1)
    shp = tuple(x.array.shape)
    return reshape(x, shp[:d] + (1,) + shp[d:])


def squeeze(x, dim=None):
    _need_tensor("squeeze", x)
    shp = tuple(x.array.shape)
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = norm_dims("squeeze", dim, len(shp))
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(x, new)


@prim("permute", view=True)
def _permute_vjp(F, n, g, dims=None):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (F.permute(g, tuple(inv)),)


def permute(x, *dims):
    _need_tensor("permute", x)
    dims = _shape_arg("permute", dims)
    nd = x.array.ndim
    if len(dims) != nd:
        raise GradkitError(f"gradkit.permute: number of dims {len(dims)} doesn't match the "
                           f"tensor's {nd} dims (shape {x.shape})")
    dims = tuple(norm_dim("permute", d, nd) for d in dims)
    if len(set(dims)) != nd:
        raise GradkitError(f"gradkit.permute: repeated dim in {dims}")
    if dims == tuple(range(nd)):
        return x
    return apply(_permute_vjp, x._B, (x,), (x.array,), {"dims": dims})


def transpose(x, dim0, dim1):
    _need_tensor("transpose", x)
    nd = x.array.ndim
    d0, d1 = norm_dim("transpose", dim0, nd), norm_dim("transpose", dim1, nd)
    if nd < 2:
        return x
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, tuple(dims))


swapaxes = transpose


def mT(x):
    return transpose(x, -2, -1)


def t(x):
    _need_tensor("t", x)
    if x.array.ndim > 2:
        raise GradkitError(f"gradkit.t: expects a tensor with <= 2 dims, got {x.array.ndim}")
    return transpose(x, 0, 1) if x.array.ndim == 2 else x


@prim("expand", view=True)
def _expand_vjp(F, n, g, shape=None, inshape=None):
    return (F.sum_to(g, inshape),)


@prim("sum_to")
def _sum_to_vjp(F, n, g, shape=None, inshape=None):
    return (F.expand(g, inshape),)


def expand(x, *shape):
    _need_tensor("expand", x)
    shape = _shape_arg("expand", shape)
    inshape = tuple(x.array.shape)
    if len(shape) < len(inshape):
        raise GradkitError(f"gradkit.expand: the number of sizes ({len(shape)}) must be at "
                           f"least the tensor's number of dims ({len(inshape)}), shape {inshape}")
    lead = len(shape) - len(inshape)
    shape = tuple(inshape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(shape))
    for i, s in enumerate(inshape):
        if s != 1 and s != shape[i + lead]:
            raise GradkitError(f"gradkit.expand: the expanded size {shape[i + lead]} must match "
                               f"the existing size {s} at dim {i} (shapes {inshape} -> {shape})")
    if shape == inshape:
        return x
    return apply(_expand_vjp, x._B, (x,), (x.array,), {"shape": shape}, {"inshape": inshape})


broadcast_to = expand


def expand_as(x, other):
    _need_tensor("expand_as", other)
    return expand(x, other.shape)


def sum_to(x, shape):
    shape = tuple(shape)
    if tuple(x.array.shape) == shape:
        return x
    return apply(_sum_to_vjp, x._B, (x,), (x.array,), {"shape": shape},
                 {"inshape": tuple(x.array.shape)})


# ================================================================ matmul
@prim("matmul", save=(0, 1), save_for=(1, 0))
def _matmul_vjp(F, n, g, a, b, an=2, bn=2):
    ga = gb = None
    if an == 1 and bn == 1:
        return (F.mul(g, b) if n[0] else None), (F.mul(g, a) if n[1] else None)
    if an == 1:      # (k) @ (..., k, n) -> (..., n)
        if n[0]:
            ga = F.matmul(F.unsqueeze(g, -2), F.mT(b))
        if n[1]:
            gb = F.mul(F.unsqueeze(a, -1), F.unsqueeze(g, -2))
        return ga, gb
    if bn == 1:      # (..., m, k) @ (k) -> (..., m)
        if n[0]:
            ga = F.mul(F.unsqueeze(g, -1), b)
        if n[1]:
            gb = F.matmul(F.unsqueeze(g, -2), a)
        return ga, gb
    if n[0]:
        ga = F.matmul(g, F.mT(b))
    if n[1]:
        if bn == 2 and an > 2:
            # a batch against one matrix: fold the batch into one GEMM instead
            # of a batched product summed afterwards
            rows = 1
            for s in a.shape[:-1]:
                rows *= s   # not -1: a reshape can't infer it when a dim is 0
            gb = F.matmul(F.mT(F.reshape(a, (rows, a.shape[-1]))), F.reshape(g, (rows, g.shape[-1])))
        else:
            gb = F.matmul(F.mT(a), g)
    return ga, gb


def matmul(a, b, *, name="matmul"):
    if a.__class__ is not Tensor or b.__class__ is not Tensor:
        if a.__class__ is Tensor:
            b = _as_tensor_like(b, a, name)
        elif b.__class__ is Tensor:
            a = _as_tensor_like(a, b, name)
        else:
            raise TypeError(f"gradkit.{name}: expected Tensor operands")
    B = a._B
    if b._B is not B:
        raise _device_error(name, a, b)
    ad, bd = a.array, b.array
    if ad.ndim == 0 or bd.ndim == 0:
        raise GradkitError(f"gradkit.{name}: both arguments need at least 1 dim, got shapes "
                           f"{tuple(ad.shape)} and {tuple(bd.shape)}")
    ka = ad.shape[-1]
    kb = bd.shape[-2] if bd.ndim > 1 else bd.shape[0]
    if ka != kb:
        raise GradkitError(
            f"gradkit.{name}: shapes {tuple(ad.shape)} and {tuple(bd.shape)} cannot be "
            f"multiplied ({ka} != {kb}: the last dim of the first must equal the "
            f"{'second-to-last' if bd.ndim > 1 else 'only'} dim of the second)")
    if ad.dtype != bd.dtype:   # as torch: no promotion in matrix products
        raise GradkitError(f"gradkit.{name}: expected both operands to have the same dtype, but "
                           f"got {a.dtype_name} and {b.dtype_name}; convert one, e.g. "
                           f"b.to(gk.{a.dtype_name})")
    if ad.ndim > 2 and bd.ndim > 2 and ad.shape[:-2] != bd.shape[:-2]:
        for i, j in zip(ad.shape[-3::-1], bd.shape[-3::-1]):
            if i != j and i != 1 and j != 1:
                raise GradkitError(
                    f"gradkit.{name}: the batch dimensions of shapes {tuple(ad.shape)} and "
                    f"{tuple(bd.shape)} do not broadcast ({i} vs {j}); make them equal or 1")
    return apply(_matmul_vjp, B, (a, b), (ad, bd), None, {"an": ad.ndim, "bn": bd.ndim})


mm = bmm = matmul   # gk.mm / gk.bmm (rank checks): gradkit/ops/torch_ops.py


# ================================================================ indexing
def _mask_sync():
    from ..reliability import host_sync_violation
    host_sync_violation("boolean-mask indexing (the result's size is read back from the "
                        "device; use gk.where or masked_fill)")


def _norm_index(x, idx):
    """Replace Tensors/lists in an index with raw arrays; report whether the
    index is 'advanced' (integer/bool arrays: gradient needs scatter-add)."""
    B = x._B
    if idx.__class__ is not tuple:
        idx = (idx,)
    out = []
    advanced = False
    for k in idx:
        c = k.__class__
        if c is int or c is slice or k is None or k is Ellipsis:
            out.append(k)
        elif c is Tensor:
            if k._B is not B:
                raise IndexError(f"gradkit.getitem: index on {k._B.device_str} for a tensor on "
                                 f"{B.device_str}; move the index with .to()")
            if k.array.ndim == 0 and k.array.dtype != B.bool_dtype and B.is_integral(k.array.dtype):
                advanced = True
                out.append(k.array)
            else:
                if B.is_floating(k.array.dtype):
                    raise IndexError("gradkit.getitem: tensors used as indices must be long, "
                                     f"int or bool tensors, got {k.dtype_name}")
                if mode.host_sync_guard and B.type != "cpu" and k.array.dtype == B.bool_dtype:
                    _mask_sync()
                advanced = True
                out.append(k.array)
        elif c is bool:
            if mode.host_sync_guard and B.type != "cpu":
                _mask_sync()   # a bool scalar is a 0-d mask: its result size is read back
            advanced = True
            out.append(B.asarray(k))
        elif isinstance(k, (list, tuple)) or hasattr(k, "__array__") or hasattr(k, "__dlpack__"):
            try:
                arr = B.asarray(k) if not isinstance(k, (list, tuple)) or len(k) else B.asarray(k, B.dtypes["int64"])
            except Exception:
                arr = None
            if arr is None or not (B.is_integral(arr.dtype) or B.is_floating(arr.dtype)
                                   or arr.dtype == B.bool_dtype):
                raise IndexError(f"gradkit.getitem: unsupported index {k!r:.60}; use ints, "
                                 "slices, None, Ellipsis, bool masks or integer tensors")
            if B.is_floating(arr.dtype):
                raise IndexError("gradkit.getitem: indices must be integers or booleans, got floats")
            if mode.host_sync_guard and B.type != "cpu" and arr.dtype == B.bool_dtype:
                _mask_sync()
            advanced = True
            out.append(arr)
        elif hasattr(k, "__index__"):
            out.append(k.__index__())
        else:
            raise IndexError(f"gradkit.getitem: unsupported index of type {type(k).__name__}; "
                             "use ints, slices, None, Ellipsis, bool masks or integer tensors")
    return tuple(out), advanced


@prim("getitem", view=True)
def _getitem_vjp(F, n, g, idx=None, advanced=False, shape=None):
    return (F.getitem_backward(g, shape, idx, advanced),)


@prim("getitem_backward")
def _getitem_bwd_vjp(F, n, gg, shape=None, idx=None, advanced=False):
    return (F.getitem(gg, idx),)


@prim("index_zero")
def _index_zero_vjp(F, n, gg, idx=None):
    return (F.index_zero(gg, idx),)


def _check_bounds(x, idx):
    """Plain ints are checked on the host for free; integer arrays are checked
    by the backend's own indexing (NumPy raises IndexError)."""
    shp = x.array.shape
    d = 0
    n_explicit = 0
    for k in idx:
        if k is not None and k is not Ellipsis:
            n_explicit += 1 if (k.__class__ is int or k.__class__ is slice or getattr(k, "dtype", None) is None
                                or k.dtype != x._B.bool_dtype) else k.ndim
    if n_explicit > len(shp):
        raise IndexError(f"gradkit.getitem: too many indices for tensor of dimension {len(shp)} "
                         f"(shape {tuple(shp)})")
    for k in idx:  # ints before an Ellipsis (the common case); the rest is the backend's
        if k is Ellipsis:
            break
        if k is None:
            continue
        if k.__class__ is int:
            s = shp[d]
            if k >= s or k < -s:
                raise IndexError(f"gradkit.getitem: index {k} is out of range for dim {d} "
                                 f"with size {s} (tensor shape {tuple(shp)})")
        d += 1


def getitem(x, idx):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.getitem: expected a Tensor, got {type(x).__name__}")
    raw, advanced = _norm_index(x, idx)
    _check_bounds(x, raw)
    if advanced:
        _bounds.check_index_arrays(x, raw, "getitem")
    p = _getitem_adv if advanced else _getitem_vjp
    return apply(p, x._B, (x,), (x.array,), {"idx": raw},
                 {"advanced": advanced, "shape": x.array.shape})


# advanced indexing copies: the same primitive, but its output is not a view
_getitem_adv = Prim("getitem", _getitem_vjp.vjp, view=False)


def getitem_backward(g, shape, idx, advanced):
    return apply(_getitem_bwd_vjp, g._B, (g,), (g.array,),
                 {"shape": shape, "idx": idx, "advanced": advanced})


def index_zero(g, idx):
    return apply(_index_zero_vjp, g._B, (g,), (g.array,), {"idx": idx})


@prim("index_put")
def _index_put_vjp(F, n, g, idx=None, vshape=None):
    gx = F.index_zero(g, idx) if n[0] else None
    gv = F.getitem(g, idx) if n[1] else None
    return gx, gv


# ================================================================ cat / stack
@prim("cat")
def _cat_vjp(F, n, g, dim=None, sizes=None):
    out = []
    start = 0
    nd = len(g.shape)
    for i, s in enumerate(sizes):
        if n[i]:
            sl = (slice(None),) * dim + (slice(start, start + s),) + (slice(None),) * (nd - dim - 1)
            out.append(F.getitem(g, sl))
        else:
            out.append(None)
        start += s
    return tuple(out)


def cat(tensors, dim=0):
    if tensors.__class__ is Tensor or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"gradkit.cat: expected a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise GradkitError("gradkit.cat: expected a non-empty sequence of tensors")
    for t_ in tensors:
        if t_.__class__ is not Tensor:
            raise TypeError(f"gradkit.cat: expected a sequence of Tensors, got {type(t_).__name__}")
    B = tensors[0]._B
    for t_ in tensors[1:]:
        if t_._B is not B:
            raise _device_error("cat", tensors[0], t_)
    kept = [u for u in tensors if u.array.shape != (0,)]
    if len(kept) != len(tensors):
        # torch's legacy rule: 1-D empty tensors are skipped (whatever dim is)
        names = {u.dtype_name for u in tensors}
        tensors = kept or [tensors[0]]
        if not kept:
            dim = 0
        if len(names) > 1:
            target = None
            for nm in names:
                target = nm if target is None else result_dtype_name(target, nm)
            tensors = [astype(u, target) for u in tensors]
    nd = tensors[0].array.ndim
    if nd == 0:
        raise GradkitError("gradkit.cat: zero-dimensional tensors cannot be concatenated")
    d = norm_dim("cat", dim, nd)
    for t_ in tensors[1:]:
        if t_.array.ndim != nd or _py_any(a != b for i, (a, b) in enumerate(zip(t_.array.shape, tensors[0].array.shape)) if i != d):
            raise GradkitError(
                f"gradkit.cat: sizes of tensors must match except in dim {d}; got shapes "
                + ", ".join(str(tuple(u.array.shape)) for u in tensors))
    names = {u.dtype_name for u in tensors}
    if len(names) > 1:
        target = None
        for nm in names:
            target = nm if target is None else result_dtype_name(target, nm)
        tensors = [astype(u, target) for u in tensors]
    return _apply_cat(B, tensors, d)


_py_any = builtins.any  # the module defines its own any()


def _apply_cat(B, tensors, d):
    # the kernel takes a list; the node has one edge per tensor
    p = _cat_vjp
    params = {"dim": d, "sizes": tuple(u.array.shape[d] for u in tensors)}
    try:
        out = B.cat([u.array for u in tensors], d)
    except Exception as e:
        raise op_error("cat", tensors, e) from None
    t_ = const(B, out)
    if mode.enabled and _py_any(u.requires_grad for u in tensors):
        from ..autograd.graph import Node
        edges = [((u if u.grad_fn is None else u.grad_fn), u._oi, u.array.shape, u.array.dtype)
                 if u.requires_grad else None for u in tensors]
        t_.grad_fn = Node(p, B, params, (), (), edges, tuple(e is not None for e in edges))
        t_._rg = True
    return t_


concat = concatenate = cat


def stack(tensors, dim=0):
    if tensors.__class__ is Tensor or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"gradkit.stack: expected a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise GradkitError("gradkit.stack: expected a non-empty sequence of tensors")
    for u in tensors:
        if u.__class__ is not Tensor:
            raise TypeError(f"gradkit.stack: expected Tensors, got {type(u).__name__}")
    shp = tensors[0].shape
    for u in tensors:
        if u.shape != shp:
            raise GradkitError("gradkit.stack: all tensors must have the same shape; got "
                               + ", ".join(str(v.shape) for v in tensors))
    d = norm_dim("stack", dim, len(shp) + 1)
    return cat([unsqueeze(u, d) for u in tensors], d)


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


def _leaf_view_check(name, x):
    """As torch: no in-place write, with grad mode on, through a view of a leaf that
    requires grad (the leaf's shared version counter carries the mark)."""
    if mode.enabled and x._view and len(x._vc) > 1:
        raise GradkitError(
            f"gradkit.{name}: a view of a leaf Variable that requires grad is being used in an "
            "in-place operation (the view shares the leaf's memory); wrap the update in "
            "gk.no_grad(), or clone() the view first")


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


def add_(x, o, alpha=None):
    if alpha is None:
        r = _direct("iadd", x, o)
        if r is not None:
            return r
    return _inplace("add_", x, add(x, o, alpha))


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


def mul_(x, o):
    r = _direct("imul", x, o)
    if r is not None:
        return r
    return _inplace("mul_", x, mul(_before(x, o.__class__ is Tensor and o._rg), o))


def div_(x, o):
    r = _direct("idiv", x, o)
    if r is not None:
        return r
    return _inplace("div_", x, div(_before(x, o.__class__ is Tensor and o._rg), o))


def clamp_(x, min=None, max=None):
    return _inplace("clamp_", x, clamp(_before(x, x._rg), min, max))


def zero_(x):
    return fill_(x, 0)


def fill_(x, value):
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
        value = builtins.bool(value)
    elif not B.is_floating(x.array.dtype) and value.__class__ is float:
        value = builtins.int(value)
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


def copy_(x, src):
    if src.__class__ is not Tensor:
        from ..creation import as_tensor
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


def masked_fill(x, mask, value):
    _need_tensor("masked_fill", x)
    if value.__class__ is not Tensor and not isinstance(value, (int, float)):
        raise TypeError(f"gradkit.masked_fill: value must be a number or a Tensor, got "
                        f"{type(value).__name__}")
    out = where(mask, value, x) if value.__class__ is Tensor else where(mask, float(value) if
                                                                         x._B.is_floating(x.array.dtype) else value, x)
    return out if out.array.dtype == x.array.dtype else astype(out, x.dtype_name)  # torch: x's dtype


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
            from ..creation import as_tensor
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


def detach(x):
    _need_tensor("detach", x)
    return x.detach()


from . import bounds as _bounds  # noqa: E402  (device-side index checks)

# the rest of the op set (gradkit/ops/more.py, einsum.py) is part of this namespace
from .more import *  # noqa: E402,F401,F403

# convolution and max-pooling primitives (gradkit/ops/convolution.py), F.<name> for their VJPs
from .convolution import *  # noqa: E402,F401,F403
