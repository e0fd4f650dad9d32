"""Elementwise ops: arithmetic, unary functions, their fused backward kernels
(primitives too, so double backward works through them while the fast path
runs one fused kernel), and the reflected operators.

Each primitive is one block: ``@prim`` (kernel name, residuals) on its VJP,
then the public function (``@op``: ``gk.<name>``, ``Tensor.<name>`` and
``F.<name>`` from that one entry).
"""
import math

from ..creation import zeros_like
from ..dtypes import KIND
from ..tensor import Tensor
from .compare import bitwise_and, bitwise_or, clamp, gt, logical_and, logical_not, logical_or, where
from .core import NAMESPACE, apply, donating, method, op, prim
from .dispatch import (_SCALARS, _binary, _check_bool_sub, _default_float, _unary, astype,
                       result_dtype_name, unary_op)

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
NAMESPACE["zeros_like"] = zeros_like   # sign's VJP: F.zeros_like on either side


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
    return math.log(s) if s > 0 else float("nan")


@prim("neg")
def _neg_vjp(F, n, g):
    return (F.neg(g),)


# Donating VJPs (core.donating): on the CPU backend, for large arrays the engine
# gave up, the same results written into the incoming gradient or a dead saved
# value instead of a fresh buffer, as hand-written NumPy works in place.
@donating(_mul_vjp, grad=True)
def _mul_dvjp(B, n, g, g_free, s_free, a, b):
    if g_free:
        if not n[1]:
            r = B.into(B.xp.multiply, g, b)
            if r is not None:
                return r, None
        else:   # g * b first (fresh), while g is intact; then g * a into g
            ga = B.mul(g, b) if n[0] else None
            r = B.into(B.xp.multiply, g, a)
            if r is not None:
                return ga, r
            return ga, B.mul(g, a)
    return _mul_vjp.vjp(B, n, g, a, b)


@donating(_div_vjp, grad=True)
def _div_dvjp(B, n, g, g_free, s_free, a, b):
    if g_free and n[0] and not n[1]:
        r = B.into(B.xp.true_divide, g, b)
        if r is not None:
            return r, None
    return _div_vjp.vjp(B, n, g, a, b)


@donating(_neg_vjp, grad=True)
def _neg_dvjp(B, n, g, g_free, s_free):
    if g_free:
        return (B.xp.negative(g, out=g),)
    return (B.neg(g),)


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
        if a.__class__ is float and KIND[target] < 2:
            target = b._B.dtype_name(_default_float(b._B))
        elif a.__class__ is int and target == "bool":
            target = "int64"
    if isinstance(alpha, float) and KIND[target] < 2:
        raise TypeError(f"gradkit.{name}: for integral input tensors, alpha must not be a "
                        f"floating point number (got {alpha})")
    out = mul(b, alpha)
    return out if out.dtype_name == target else astype(out, target)


@op
def add(a, b, alpha=None):
    if alpha is not None:
        b = _times_alpha("add", a, b, alpha)
    return _binary(_add_vjp, a, b)


@op(aliases=("subtract",))
def sub(a, b, alpha=None):
    if alpha is not None:
        _check_bool_sub(a, b)
        b = _times_alpha("sub", a, b, alpha)
    return _binary(_sub_vjp, a, b)


@op(aliases=("multiply",))
def mul(a, b):
    return _binary(_mul_vjp, a, b)


@op(aliases=("divide", "true_divide"))
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


@op
def pow(a, b):
    if a.__class__ is Tensor and (b.__class__ is bool or b.__class__ is Tensor) \
            and a.array.dtype == a._B.bool_dtype and (b.__class__ is bool or b.array.dtype == a._B.bool_dtype):
        # torch keeps bool ** bool in bool (NumPy gives int8): a ** b == a or not b
        return logical_or(a, logical_not(b) if b.__class__ is Tensor else (not b))
    return _binary(_pow_vjp, a, b)


neg = op(unary_op(_neg_vjp, floating=False), name="neg", aliases=("negative",))


# ======================================================= elementwise prims
@prim("exp", out=True)
def _exp_vjp(F, n, g, y):
    return (F.mul(g, y),)


@donating(_exp_vjp, grad=True, saved=True)
def _exp_dvjp(B, n, g, g_free, s_free, y):
    if g_free:
        r = B.into(B.xp.multiply, g, y)
        if r is not None:
            return (r,)
    if s_free:   # y * g into y (an IEEE product is the same either way round)
        r = B.into(B.xp.multiply, y, g)
        if r is not None:
            return (r,)
    return (B.mul(g, y),)


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


@donating(_tanh_vjp, saved=True)
def _tanh_dvjp(B, n, g, g_free, s_free, y):
    return (B.tanh_backward_into_y(y, g) if s_free else B.tanh_backward(y, g),)


@prim("sigmoid", out=True)
def _sigmoid_vjp(F, n, g, y):
    return (F.sigmoid_backward(y, g),)


@prim("relu", out=True)
def _relu_vjp(F, n, g, y):
    return (F.relu_backward(y, g),)


@donating(_relu_vjp, grad=True)
def _relu_dvjp(B, n, g, g_free, s_free, y):
    return (B.relu_backward_into_g(y, g) if g_free else B.relu_backward(y, g),)


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


exp = op(unary_op(_exp_vjp, floating=True), name="exp")


log = op(unary_op(_log_vjp, floating=True), name="log")


sqrt = op(unary_op(_sqrt_vjp, floating=True), name="sqrt")


absolute = op(unary_op(_abs_vjp, floating=False), name="abs", aliases=("absolute",))


sin = op(unary_op(_sin_vjp, floating=True), name="sin")


cos = op(unary_op(_cos_vjp, floating=True), name="cos")


tanh = op(unary_op(_tanh_vjp, floating=True), name="tanh")


sigmoid = op(unary_op(_sigmoid_vjp, floating=True), name="sigmoid")


relu = op(unary_op(_relu_vjp, floating=False), name="relu")


@op(public=False, method=False)
def tanh_backward(y, g):
    return apply(_tanh_bwd_vjp, y._B, (y, g), (y.array, g.array))


@op(public=False, method=False)
def sigmoid_backward(y, g):
    return apply(_sigmoid_bwd_vjp, y._B, (y, g), (y.array, g.array))


@op(public=False, method=False)
def relu_backward(y, g):
    return apply(_relu_bwd_vjp, y._B, (y, g), (y.array, g.array))


@op(public=False, method=False)
def sqrt_backward(y, g):
    return apply(_sqrt_bwd_vjp, y._B, (y, g), (y.array, g.array))


@op(public=False, method=False)
def mask_mul(g, m):
    return apply(_mask_mul_vjp, g._B, (g, m), (g.array, m.array))


@prim("sign")
def _sign_vjp(F, n, g):
    return (F.zeros_like(g),)


@op
def sign(x, *, out=None):
    """Elementwise sign. As torch, the result requires grad when x does and its
    gradient is zero (zeros, not g * 0: an inf/NaN upstream stays out)."""
    return _unary(_sign_vjp, x, out)


# ======================================================= elementwise prims
@prim("log1p", save=(0,))
def _log1p_vjp(F, n, g, x):
    return (F.div(g, F.add(x, 1.0)),)


@prim("expm1", out=True)
def _expm1_vjp(F, n, g, y):
    return (F.mul(g, F.add(y, 1.0)),)


@prim("rsqrt", out=True)
def _rsqrt_vjp(F, n, g, y):
    # d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
    return (F.mul(g, F.mul(F.mul(y, F.mul(y, y)), -0.5)),)


@prim("reciprocal", out=True)
def _reciprocal_vjp(F, n, g, y):
    return (F.neg(F.mul(g, F.mul(y, y))),)


@prim("square", save=(0,))
def _square_vjp(F, n, g, x):
    return (F.mul(g, F.mul(x, 2.0)),)


@prim("tan", out=True)
def _tan_vjp(F, n, g, y):
    return (F.mul(g, F.add(F.mul(y, y), 1.0)),)


@prim("erf", save=(0,))
def _erf_vjp(F, n, g, x):
    return (F.mul(g, F.mul(F.exp(F.neg(F.mul(x, x))), _TWO_OVER_SQRT_PI)),)


log1p = op(unary_op(_log1p_vjp, floating=True), name="log1p")


expm1 = op(unary_op(_expm1_vjp, floating=True), name="expm1")


rsqrt = op(unary_op(_rsqrt_vjp, floating=True), name="rsqrt")


reciprocal = op(unary_op(_reciprocal_vjp, floating=True), name="reciprocal")


@op
def square(x, *, out=None):
    if x.__class__ is Tensor and x.array.dtype == x._B.bool_dtype:
        x = astype(x, "int64")  # torch: bool squares to int64 (NumPy: int8)
    return _unary(_square_vjp, x, out)


tan = op(unary_op(_tan_vjp, floating=True), name="tan")


erf = op(unary_op(_erf_vjp, floating=True), name="erf")


@op
def silu(x):
    return mul(x, sigmoid(x))


@op
def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as
    torch). The exp runs on min(beta x, threshold), so the branch ``where``
    drops never overflows and its zero gradient never meets an inf."""
    if not isinstance(beta, (int, float)) or not isinstance(threshold, (int, float)):
        raise TypeError(f"gradkit.softplus: beta and threshold must be numbers, got "
                        f"{type(beta).__name__} and {type(threshold).__name__}")
    if x.__class__ is Tensor and x.dtype_name == "float16":
        # as torch, compute in float32: exp(threshold=20) overflows float16 (max 65504)
        return astype(softplus(astype(x, "float32"), beta, threshold), "float16")
    bx = x if beta == 1 else mul(x, beta)
    sp = log1p(exp(clamp(bx, max=float(threshold))))
    if beta != 1:
        sp = div(sp, beta)
    return where(gt(bx, threshold), x, sp)


# ----------------------------------------------- reflected operators
@method("__radd__")
def _radd(self, o):
    return _binary(_add_vjp, o, self)


@method("__rsub__")
def _rsub(self, o):
    return _binary(_sub_vjp, o, self)


@method("__rmul__")
def _rmul(self, o):
    return _binary(_mul_vjp, o, self)


@method("__rtruediv__")
def _rtruediv(self, o):
    return div(o, self)


@method("__rpow__")
def _rpow(self, o):
    return pow(o, self)


for _name, _fn in (("__add__", add), ("__sub__", sub), ("__mul__", mul), ("__truediv__", div),
                   ("__pow__", pow), ("__neg__", neg), ("__abs__", absolute)):
    method(_name, _fn)


@method("__invert__")
def _invert(self):
    # torch: logical not for bool, bitwise not (two's complement: -x - 1) for integers
    B = self._B
    if self.array.dtype == B.bool_dtype:
        return logical_not(self)
    if B.is_floating(self.array.dtype):
        raise TypeError(f"gradkit: ~ (bitwise_not) is only defined for bool and integer "
                        f"tensors, got {self.dtype_name}")
    return sub(neg(self), 1)


def _bools(a, b):
    return a.array.dtype == a._B.bool_dtype and (
        b.__class__ is bool or (b.__class__ is Tensor and b.array.dtype == b._B.bool_dtype))


@method("__and__")
def _and(self, o):  # as torch: logical on bools, bitwise on integers
    return (logical_and if _bools(self, o) else bitwise_and)(self, o)


@method("__or__")
def _or(self, o):
    return (logical_or if _bools(self, o) else bitwise_or)(self, o)
