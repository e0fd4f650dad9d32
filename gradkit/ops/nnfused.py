"""Fused ops for neural networks: primitives whose one-pass kernels a
benchmark showed pay (W4): softmax, GELU (with a fused backward kernel whose
own VJP is composed), and linear (its VJP writes the weight's gradient in the
weight's own layout). log_softmax is a stable composition."""
import math

from ..errors import GradkitError
from ..tensor import Tensor
from .core import apply, apply_binary, op, prim
from .op_names import as_op
from .dispatch import _default_float, _need_tensor, astype, norm_dim
from .elementwise import add, div, exp, log, sub
from .linalg import matmul
from .reductions import _stop_max, reduce_sum
from .shape import transpose

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _check_tensor(x, what):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.functional.linear: {what} must be a Tensor, got "
                        f"{type(x).__name__}")


# ================================================= elementwise compositions
# GELU is a primitive with a fused backward kernel (one pass instead of a dozen
# for the composition: W4 measured it); its second derivative is composed.
_GELU_K = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@prim("gelu", save=(0,))
def _gelu_vjp(F, n, g, x, approximate="none"):
    return (F.gelu_backward(x, g, approximate),)


@prim("gelu_backward", save=(0, 1))
def _gelu_bwd_vjp(F, n, gg, x, g, approximate="none"):
    gx = F.mul(F.mul(gg, g), _gelu2(F, x, approximate)) if n[0] else None
    return gx, (F.gelu_backward(x, gg, approximate) if n[1] else None)


def _gelu2(F, x, approximate):
    """GELU's second derivative, composed (runs only for double backward)."""
    if approximate == "tanh":
        c, k = _SQRT_2_OVER_PI, _GELU_K
        x2 = F.mul(x, x)
        t = F.tanh(F.mul(F.mul(x, F.add(F.mul(x2, k), 1.0)), c))
        s = F.sub(1.0, F.mul(t, t))                       # 1 - t^2
        du = F.mul(F.add(F.mul(x2, 3.0 * k), 1.0), c)     # d/dx of tanh's argument
        dt = F.mul(s, du)                                 # d/dx tanh(u)
        inner = F.sub(F.mul(s, F.mul(x, 6.0 * c * k)), F.mul(F.mul(t, dt), F.mul(du, 2.0)))
        return F.add(dt, F.mul(F.mul(x, 0.5), inner))
    pdf = F.mul(F.exp(F.mul(F.mul(x, x), -0.5)), _INV_SQRT_2PI)
    return F.mul(pdf, F.sub(2.0, F.mul(x, x)))


@op
def gelu(x, approximate="none"):
    """x * Phi(x); ``approximate='tanh'`` uses torch's tanh formula."""
    if not isinstance(approximate, str):
        raise TypeError(f"gradkit.gelu: approximate must be 'none' or 'tanh', got "
                        f"{type(approximate).__name__}")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gradkit.gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _need_tensor("gelu", x)
    if x.array.dtype not in x._B.float_dtypes:
        x = astype(x, _default_float(x._B))
    return apply(_gelu_vjp, x._B, (x,), (x.array,), {"approximate": approximate})


@op(public=False, method=False)
def gelu_backward(x, g, approximate="none"):
    return apply(_gelu_bwd_vjp, x._B, (x, g), (x.array, g.array), {"approximate": approximate})


# =============================================================== softmax
def _softmax_input(name, x, dtype):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = astype(x, dtype)
    if x.array.dtype not in x._B.float_dtypes:
        raise GradkitError(f"gradkit.{name}: not implemented for {x.dtype_name} input; pass "
                           "dtype=gk.float32 or convert with .float()")
    return x


@prim("softmax", out=True)
def _softmax_vjp(F, n, g, y, dim=None):
    # y * (g - sum(g * y)): 4 passes instead of the composition's backward
    return (F.mul(y, F.sub(g, F.sum(F.mul(g, y), (dim,), True))),)


@op
def softmax(x, dim, dtype=None):
    """exp(x - max) / sum(exp(x - max)) along ``dim`` (one stable kernel): exact
    and finite for inputs of any magnitude. A primitive: W4 measured the
    composition's extra passes."""
    x = _softmax_input("softmax", x, dtype)
    d = norm_dim("softmax", dim, x.array.ndim)
    if x.numel() == 0:   # as torch: an empty result (nothing to normalise)
        return exp(x)
    if x.array.ndim == 0:
        return div(exp(sub(x, x.detach())), 1.0)
    return apply(_softmax_vjp, x._B, (x,), (x.array,), {"dim": d})


@op
def log_softmax(x, dim, dtype=None):
    x = _softmax_input("log_softmax", x, dtype)
    d = (norm_dim("log_softmax", dim, x.array.ndim),)
    if x.numel() == 0:   # as torch: an empty result
        return sub(x, x.detach())
    z = sub(x, _stop_max(x, d))
    return sub(z, log(reduce_sum(exp(z), d, keepdim=True)))


# ======================================================== cross-entropy
@prim("cross_entropy_index", save=(0, 1, 2))
def _ce_index_vjp(F, n, g, x, t, keep, reduction="mean"):
    """d/dx of ``-(log_softmax(x)_i[t_i] * keep_i)`` reduced: ``(softmax(x_i) -
    onehot(t_i)) * w_i``, w the incoming gradient per row (0 for ignored rows).
    Built from differentiable ops, so second derivatives come for free."""
    if not n[0]:
        return None, None, None
    w = F.mul(keep, g)   # 'none': g per row; 'sum' and 'mean': one g for all rows
    if reduction == "mean":
        w = F.div(w, F.sum(keep))
    w = F.unsqueeze(w, 1)
    onehot = F.put_along_dim(tuple(x.shape), F.unsqueeze(t, 1), w, 1, True)
    return F.sub(F.mul(F.softmax(x, 1), w), onehot), None, None


@op(public=False, method=False)
def cross_entropy_index(x, t, ignore_index, reduction):
    """Softmax cross-entropy of logits ``x`` (N, C) against class indices ``t``
    (a raw (N,) integer array, already checked by the caller): one node for
    log_softmax, the pick and the reduction ('mean' over the rows whose target
    is not ``ignore_index``, 'sum' or 'none'), where the composition records
    ten. The same arithmetic as the composition, so the same values."""
    B = x._B
    keep = B.ne(t, ignore_index)
    pick = keep
    if B.type != "cpu":
        # on a device the range check is deferred (reported at the next sync): an
        # index out of range must not reach the gather (CuPy would wrap it)
        pick = B.logical_and(keep, B.logical_and(B.ge(t, 0), B.lt(t, x.shape[1])))
    ts = B.mul(t, B.astype(pick, t.dtype))   # ignored rows pick class 0 (then times 0)
    keepf = B.astype(keep, x.array.dtype)
    with as_op("cross_entropy"):
        return apply(_ce_index_vjp, B, (x, ts, keepf), (x.array, ts, keepf),
                     {"reduction": reduction})


# ================================================================ linear

@prim("linear", save=(0, 1))
def _linear_vjp(F, n, g, x, w):
    """VJP of ``y = x @ w.T``. The weight's gradient is computed as ``g.T @ x``,
    directly in w's (out, in) layout: the composition ``x @ w.T`` yields the
    transpose of an (in, out) product, and copying that view into ``.grad``
    costs as much as the matmul itself (measured: 9 ms per 1024x1024 float32)."""
    gx = F.matmul(g, w) if n[0] else None
    gw = None
    if n[1]:
        if g.ndim != 2:
            g = F.reshape(g, (-1, g.shape[-1]))
            x = F.reshape(x, (-1, x.shape[-1]))
        gw = F.matmul(F.mT(g), x)
    return gx, gw


@op(public=False, method=False)  # gk.nn.functional.linear
def linear(input, weight, bias=None):
    """``input @ weight.T + bias``; weight (out_features, in_features)."""
    _check_tensor(input, "input")
    _check_tensor(weight, "weight")
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise GradkitError(f"gradkit.nn.functional.linear: input of shape {input.shape} has "
                           f"{input.shape[-1] if input.ndim else 0} features, but weight of "
                           f"shape {weight.shape} expects {weight.shape[-1]} "
                           "(weight is (out_features, in_features))")
    if weight.ndim == 2 and input._B is weight._B and input.array.dtype == weight.array.dtype:
        out = apply_binary(_linear_vjp, weight._B, input, weight, input.array, weight.array)
    else:  # 1-D weight, or devices/dtypes that matmul reports or promotes
        w = transpose(weight, 0, 1) if weight.ndim == 2 else weight
        out = matmul(input, w)
    return out if bias is None else add(out, bias)
