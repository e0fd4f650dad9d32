"""Comparisons and logic (no gradient), and the selecting ops: maximum,
minimum, where, clamp, masked_fill."""
from ..errors import GradkitError
from ..tensor import Tensor, const
from .core import apply, method, op, op_error, prim
from .dispatch import (_SCALARS, _as_tensor_like, _binary, _default_float, _device_error,
                       _need_tensor, _promote_pair, astype)


# ===================================================== binary comparisons
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


@op
def eq(a, b):
    return _cmp("eq", a, b)


@op
def ne(a, b):
    return _cmp("ne", a, b)


@op
def lt(a, b):
    return _cmp("lt", a, b)


@op
def le(a, b):
    return _cmp("le", a, b)


@op
def gt(a, b):
    return _cmp("gt", a, b)


@op
def ge(a, b):
    return _cmp("ge", a, b)


@op
def logical_and(a, b):
    return _cmp("logical_and", a, b)


@op
def logical_or(a, b):
    return _cmp("logical_or", a, b)


@op
def bitwise_and(a, b):
    """Elementwise AND of integer or bool tensors (or a Python int/bool), as
    ``torch.bitwise_and``; broadcasts; result dtype by promotion; no gradient;
    any device."""
    return _cmp("bitwise_and", a, b)


@op
def bitwise_or(a, b):
    """Elementwise OR of integer or bool tensors (or a Python int/bool), as
    ``torch.bitwise_or``; broadcasts; result dtype by promotion; no gradient;
    any device."""
    return _cmp("bitwise_or", a, b)


@op
def logical_not(x):
    _need_tensor("logical_not", x)
    if x.array.dtype != x._B.bool_dtype:
        return eq(x, 0)  # torch: logical_not of a number is (x == 0)
    return const(x._B, x._B.logical_not(x.array))


@op
def isfinite(x):
    _need_tensor("isfinite", x)
    if not x._B.is_floating(x.array.dtype):  # integers and bools are always finite
        return const(x._B, x._B.ones(x.array.shape, x._B.bool_dtype))
    return const(x._B, x._B.isfinite(x.array))


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


@op
def maximum(a, b):
    return _binary(_maximum_vjp, a, b)


@op
def minimum(a, b):
    return _binary(_minimum_vjp, a, b)


@prim("where", save=(0,))
def _where_vjp(F, n, g, c):
    return (None,
            F.where(c, g, 0.0) if n[1] else None,
            F.where(c, 0.0, g) if n[2] else None)


@op(public=False, method=False)  # gk.where: index_ops (where(cond) too); Tensor.where: below
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


@op(aliases=("clip",))
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


@op
def masked_fill(x, mask, value):
    _need_tensor("masked_fill", x)
    if value.__class__ is not Tensor and not isinstance(value, (int, float)):
        raise TypeError(f"gradkit.masked_fill: value must be a number or a Tensor, got "
                        f"{type(value).__name__}")
    out = where(mask, value, x) if value.__class__ is Tensor else where(mask, float(value) if
                                                                         x._B.is_floating(x.array.dtype) else value, x)
    return out if out.array.dtype == x.array.dtype else astype(out, x.dtype_name)  # torch: x's dtype


@method("where")
def _where_method(self, condition, y):
    """torch's ``x.where(condition, y)``: x where condition, else y."""
    return where(condition, self, y)


@method("__eq__")
def _eq_op(self, o):
    if o is None:  # as torch: a tensor is never None
        return False
    return eq(self, o)


@method("__ne__")
def _ne_op(self, o):
    if o is None:
        return True
    return ne(self, o)


for _name, _fn in (("__lt__", lt), ("__le__", le), ("__gt__", gt), ("__ge__", ge)):
    method(_name, _fn)
