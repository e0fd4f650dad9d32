"""Reductions: sum, mean, max/min (with and without dim), prod, var, std,
logsumexp, norm, cumsum, argmax/argmin, all/any.

The functions that share a builtin's name are defined as ``reduce_<name>`` and
registered under the torch name, so this module can still use the builtins.
"""
import math

from ..errors import GradkitError
from ..tensor import Tensor, const
from .compare import eq, isfinite, maximum, minimum, where
from .core import apply, op, prim
from .dispatch import (_default_float, _need_bool, _need_tensor, astype, norm_dim, norm_dims)
from .elementwise import absolute, add, div, exp, log, mul, pow, sign, sqrt, sub
from .shape import reshape, squeeze


@prim("sum")
def _sum_vjp(F, n, g, dim=None, keepdim=False, shape=None):
    if not keepdim and dim is not None:
        g = F.reshape(g, tuple(1 if i in dim else s for i, s in enumerate(shape)))
    elif dim is None and not keepdim:
        g = F.reshape(g, (1,) * len(shape))
    return (F.expand(g, shape),)


@op(name="sum")
def reduce_sum(x, dim=None, keepdim=False, dtype=None):
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


@op
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
    return mul(reduce_sum(x, dim, keepdim), 1.0 / n if n else float("nan"))


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


@op
def amax(x, dim=None, keepdim=False):
    _reduce_check("amax", x)
    dims = norm_dims("amax", dim, x.array.ndim) or None  # dim=() reduces all, as torch
    return apply(_amax_vjp, x._B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": x.array.shape})


@op
def amin(x, dim=None, keepdim=False):
    _reduce_check("amin", x)
    dims = norm_dims("amin", dim, x.array.ndim) or None
    return apply(_amin_vjp, x._B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": x.array.shape})


def _select_dim_vjp(F, n, g, idx, dim=None, keepdim=False, shape=None):
    # the gradient goes to the selected element of each row
    return (F.put_along_dim(shape, idx, g, dim, keepdim),)


_max_dim_vjp = prim("max_dim", res=True)(_select_dim_vjp)
_min_dim_vjp = prim("min_dim", res=True)(_select_dim_vjp)


@prim("put_along_dim", save=(1,))
def _put_along_dim_vjp(F, n, gg, idx, shape=None, dim=None, keepdim=False):
    return None, None, (F.take_along_dim(gg, idx, dim, keepdim) if n[2] else None)


@prim("take_along_dim", save=(1,))
def _take_along_dim_vjp(F, n, gg, idx, dim=None, keepdim=False, shape=None):
    return (F.put_along_dim(shape, idx, gg, dim, keepdim) if n[0] else None), None


@op(public=False, method=False)
def put_along_dim(shape, idx, g, dim, keepdim):
    B = g._B
    args = (shape, idx, g)
    return apply(_put_along_dim_vjp, B, args, (shape, idx.array, g.array),
                 {"dim": dim, "keepdim": keepdim})


@op(public=False, method=False)
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


@op(name="max")
def reduce_max(x, dim=None, keepdim=False):
    if dim is None:
        return amax(x)
    if dim.__class__ is Tensor:
        return maximum(x, dim)
    return _minmax_dim("max", _max_dim_vjp, x, dim, keepdim)


@op(name="min")
def reduce_min(x, dim=None, keepdim=False):
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


@op
def argmax(x, dim=None, keepdim=False):
    _need_tensor("argmax", x)
    d = None if dim is None else norm_dim("argmax", dim, x.array.ndim)
    _arg_empty("argmax", x, d)
    return const(x._B, x._B.astype(x._B.argmax(x.array, d, keepdim), x._B.dtypes["int64"]))


@op
def argmin(x, dim=None, keepdim=False):
    _need_tensor("argmin", x)
    d = None if dim is None else norm_dim("argmin", dim, x.array.ndim)
    _arg_empty("argmin", x, d)
    return const(x._B, x._B.astype(x._B.argmin(x.array, d, keepdim), x._B.dtypes["int64"]))


@op(name="all")
def reduce_all(x, dim=None, keepdim=False):
    _need_tensor("all", x)
    _need_bool("all", keepdim)
    d = norm_dims("all", dim, x.array.ndim)
    return const(x._B, x._B.all(x.array, d, keepdim))


@op(name="any")
def reduce_any(x, dim=None, keepdim=False):
    _need_tensor("any", x)
    _need_bool("any", keepdim)
    d = norm_dims("any", dim, x.array.ndim)
    return const(x._B, x._B.any(x.array, d, keepdim))


# ============================================================ reductions
def _float_check(name, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype not in x._B.float_dtypes:
        raise GradkitError(f"gradkit.{name}: expected a floating point input, got "
                           f"{x.dtype_name}; convert it with .float() or .double() first")


def _keep_shape(shape, dim):
    return tuple(1 if (dim is None or i in dim) else s for i, s in enumerate(shape))


@prim("prod", save=(0,), out=True)
def _prod_vjp(F, n, g, x, y, dim=None, keepdim=False, shape=None):
    # d prod / d x_i = prod_{k != i} x_k, exact with zeros (no y / x_i):
    #   x_i != 0: (product of the nonzeros / x_i) * (product of the zeros)
    #   x_i == 0: product of the nonzeros if it is the only zero; with two zeros,
    #             times the other zero (value 0, derivative 1); else 0.
    # Written so that the formula's own derivative is exact too (second order).
    if not keepdim:
        ks = _keep_shape(shape, dim)
        g = F.reshape(g, ks)
    z = F.eq(x, 0.0)
    xs = F.where(z, 1.0, x)
    nz = F.sum(F.astype(z, g.dtype), dim, True)
    pnz = F.prod(xs, dim, True)
    zeros = F.prod(F.where(z, x, 1.0), dim, True)
    other = F.mul(F.div(pnz, xs), zeros)
    two = F.sub(F.sum(F.where(z, x, 0.0), dim, True), x)
    w = F.where(F.eq(nz, 1.0), 1.0, F.where(F.eq(nz, 2.0), two, 0.0))
    return (F.mul(g, F.where(z, F.mul(pnz, w), other)),)


@op
def prod(x, dim=None, keepdim=False, dtype=None):
    """Product of the elements (over ``dim``: an int; a tuple also works here)."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.prod: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = astype(x, dtype)
    B = x._B
    if not B.is_floating(x.array.dtype) and x.dtype_name != "int64":
        x = astype(x, "int64")
    shape = x.array.shape
    dims = norm_dims("prod", dim, len(shape))
    if dims == ():
        return x
    return apply(_prod_vjp, B, (x,), (x.array,), {"dim": dims, "keepdim": keepdim},
                 {"shape": shape})


def _correction(name, unbiased, correction):
    if correction is not None and not isinstance(correction, (int, float)):
        raise TypeError(f"gradkit.{name}: correction must be a number, got "
                        f"{type(correction).__name__}")
    if correction is not None:
        if unbiased is not None:
            raise TypeError(f"gradkit.{name}: pass either unbiased or correction, not both")
        return correction
    return 0 if unbiased is False else 1


@op
def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with ``correction`` (1 by default: Bessel's). As torch, the
    old positional form ``var(x, dim, unbiased, keepdim)`` and ``var(x, True)``
    work too."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    c = _correction("var", unbiased, correction)
    _float_check("var", x)
    shape = x.array.shape
    dims = norm_dims("var", dim, len(shape)) or None   # dim=() reduces all, as torch
    n = 1
    for i in (range(len(shape)) if dims is None else dims):
        n *= shape[i]
    d = sub(x, mean(x, dims, keepdim=True))
    s = reduce_sum(mul(d, d), dims, keepdim)
    # n - c <= 0 gives inf/nan, as torch
    return div(s, float(max(0, n - c)))


@op
def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def _stop_max(x, dims):
    """max over dims (keepdim) of x with no graph, inf replaced by 0: the shift
    that makes exp safe; it cancels exactly, so its gradient is not needed."""
    m = amax(x.detach(), dims, keepdim=True)
    return where(isfinite(m), m, 0.0)


@op
def logsumexp(x, dim, keepdim=False):
    _need_tensor("logsumexp", x)
    if x.array.dtype not in x._B.float_dtypes:
        x = astype(x, _default_float(x._B))
    dims = norm_dims("logsumexp", dim, x.array.ndim) or None
    if x.numel() == 0:   # log(0) = -inf, as torch
        return log(reduce_sum(exp(x), dims, keepdim))
    m = _stop_max(x, dims)
    out = add(log(reduce_sum(exp(sub(x, m)), dims, keepdim=True)), m)
    if not keepdim:
        out = squeeze(out, dims if dims is not None else tuple(range(x.array.ndim)))
    return out


def _safe_pow_root(s, p):
    """s ** (1/p) with a zero gradient where s == 0 (torch's norm backward):
    the root runs on 1 there, so no inf ever enters the chain rule."""
    z = eq(s, 0.0)
    r = sqrt(where(z, 1.0, s)) if p == 2 else pow(where(z, 1.0, s), 1.0 / p)
    return where(z, 0.0, r)


@op
def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: a vector norm over ``dim`` (all elements by default).
    p: 'fro' or 2 (euclidean), 1, inf, -inf, 0 (count of nonzeros), any other
    number ``(sum |x|^p)^(1/p)``. The gradient at 0 is 0, as torch."""
    _need_tensor("norm", x)
    if not isinstance(p, (int, float, str)):
        raise TypeError(f"gradkit.norm: p must be a number or 'fro', got {type(p).__name__}")
    if dtype is not None:
        x = astype(x, dtype)
    _float_check("norm", x)
    if x.dtype_name == "float16":  # as torch: accumulate in float32 (|x|^p overflows float16)
        return astype(norm(astype(x, "float32"), p, dim, keepdim), "float16")
    dims = norm_dims("norm", dim, x.array.ndim) or None
    if p == "nuc":
        raise NotImplementedError("gradkit.norm: the nuclear norm needs an SVD, which gradkit "
                                  "does not have; use p='fro' or a vector norm")
    if isinstance(p, str) and p != "fro":
        raise ValueError(f"gradkit.norm: unknown norm p={p!r}; use 'fro', a number or inf")
    if p == "fro" or p == 2:
        return _safe_pow_root(reduce_sum(mul(x, x), dims, keepdim), 2)
    a = absolute(x)
    if p == math.inf:
        return amax(a, dims, keepdim)
    if p == -math.inf:
        return amin(a, dims, keepdim)
    if p == 0:   # the count of nonzeros; |sign(x)| keeps torch's zero gradient
        return reduce_sum(absolute(sign(x)), dims, keepdim)
    if p == 1:
        return reduce_sum(a, dims, keepdim)
    return _safe_pow_root(reduce_sum(pow(a, float(p)), dims, keepdim), p)


@prim("cumsum")
def _cumsum_vjp(F, n, g, dim=None):
    # out_j = sum_{i <= j} x_i, so dx_i = sum_{j >= i} g_j: a reversed cumsum
    return (F.flip(F.cumsum(F.flip(g, (dim,)), dim), (dim,)),)


@op
def cumsum(x, dim, dtype=None):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.cumsum: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = astype(x, dtype)
    B = x._B
    if not B.is_floating(x.array.dtype) and x.dtype_name != "int64":
        x = astype(x, "int64")     # torch: integer cumsum accumulates in int64
    d = norm_dim("cumsum", dim, x.array.ndim)
    if x.array.ndim == 0:
        return reshape(cumsum(reshape(x, (1,)), 0), ())
    return apply(_cumsum_vjp, B, (x,), (x.array,), {"dim": d})

