"""The rest of the op set: elementwise, reductions, softmax, shape and index ops.

Few new primitives, many compositions (STYLE.md principle 2). The primitives
here (log1p expm1 rsqrt reciprocal square tan erf prod cumsum flip repeat
split) keep forward kernel, saved residuals and VJP side by side, VJPs written
against ``F`` as in ``functional.py``. Everything else (gelu, silu, softplus,
var, std, logsumexp, norm, softmax, log_softmax, chunk, gather, index_add,
einsum) is a composition and needs no backward code: any-order derivatives
come for free.

``functional.py`` re-exports this module (``from .more import *`` at its end),
so every name below is also ``F.<name>`` for VJP formulas.
"""
import math

from ..autograd.graph import Node, mode
from ..creation import zeros_like
from ..tensor import Tensor, GradkitError
from . import functional as _f
from .core import prim, apply, const, op_error
from .einsum import einsum
from .op_names import as_op

__all__ = ["log1p", "expm1", "rsqrt", "reciprocal", "square", "tan", "erf", "gelu",
           "gelu_backward", "silu",
           "softplus", "prod", "var", "std", "logsumexp", "norm", "cumsum", "softmax",
           "log_softmax", "flip", "repeat", "split", "chunk", "gather", "index_add", "einsum",
           "zeros_like"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


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


def log1p(x):
    return _f._float_unary(_log1p_vjp, x)


def expm1(x):
    return _f._float_unary(_expm1_vjp, x)


def rsqrt(x):
    return _f._float_unary(_rsqrt_vjp, x)


def reciprocal(x):
    return _f._float_unary(_reciprocal_vjp, x)


def square(x):
    if x.__class__ is Tensor and x.array.dtype == x._B.bool_dtype:
        x = _f.astype(x, "int64")  # torch: bool squares to int64 (NumPy: int8)
    return _f._unary(_square_vjp, x)


def tan(x):
    return _f._float_unary(_tan_vjp, x)


def erf(x):
    return _f._float_unary(_erf_vjp, x)


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


def gelu(x, approximate="none"):
    """x * Phi(x); ``approximate='tanh'`` uses torch's tanh formula."""
    if not isinstance(approximate, str):
        raise TypeError(f"gradkit.gelu: approximate must be 'none' or 'tanh', got "
                        f"{type(approximate).__name__}")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gradkit.gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _f._need_tensor("gelu", x)
    if x.array.dtype not in x._B.float_dtypes:
        x = _f.astype(x, _f._default_float(x._B))
    return apply(_gelu_vjp, x._B, (x,), (x.array,), {"approximate": approximate})


def gelu_backward(x, g, approximate="none"):
    return apply(_gelu_bwd_vjp, x._B, (x, g), (x.array, g.array), {"approximate": approximate})


def silu(x):
    return _f.mul(x, _f.sigmoid(x))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as
    torch). The exp runs on min(beta x, threshold), so the branch ``where``
    drops never overflows and its zero gradient never meets an inf."""
    if not isinstance(beta, (int, float)) or not isinstance(threshold, (int, float)):
        raise TypeError(f"gradkit.softplus: beta and threshold must be numbers, got "
                        f"{type(beta).__name__} and {type(threshold).__name__}")
    if x.__class__ is Tensor and x.dtype_name == "float16":
        # as torch, compute in float32: exp(threshold=20) overflows float16 (max 65504)
        return _f.astype(softplus(_f.astype(x, "float32"), beta, threshold), "float16")
    bx = x if beta == 1 else _f.mul(x, beta)
    sp = log1p(_f.exp(_f.clamp(bx, max=float(threshold))))
    if beta != 1:
        sp = _f.div(sp, beta)
    return _f.where(_f.gt(bx, threshold), x, sp)


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


def prod(x, dim=None, keepdim=False, dtype=None):
    """Product of the elements (over ``dim``: an int; a tuple also works here)."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.prod: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = _f.astype(x, dtype)
    B = x._B
    if not B.is_floating(x.array.dtype) and x.dtype_name != "int64":
        x = _f.astype(x, "int64")
    shape = x.array.shape
    dims = _f.norm_dims("prod", dim, len(shape))
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


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with ``correction`` (1 by default: Bessel's). As torch, the
    old positional form ``var(x, dim, unbiased, keepdim)`` and ``var(x, True)``
    work too."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    c = _correction("var", unbiased, correction)
    _float_check("var", x)
    shape = x.array.shape
    dims = _f.norm_dims("var", dim, len(shape)) or None   # dim=() reduces all, as torch
    n = 1
    for i in (range(len(shape)) if dims is None else dims):
        n *= shape[i]
    d = _f.sub(x, _f.mean(x, dims, keepdim=True))
    s = _f.sum(_f.mul(d, d), dims, keepdim)
    # n - c <= 0 gives inf/nan, as torch
    return _f.div(s, float(max(0, n - c)))


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return _f.sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def _stop_max(x, dims):
    """max over dims (keepdim) of x with no graph, inf replaced by 0: the shift
    that makes exp safe; it cancels exactly, so its gradient is not needed."""
    m = _f.amax(x.detach(), dims, keepdim=True)
    return _f.where(_f.isfinite(m), m, 0.0)


def logsumexp(x, dim, keepdim=False):
    _f._need_tensor("logsumexp", x)
    if x.array.dtype not in x._B.float_dtypes:
        x = _f.astype(x, _f._default_float(x._B))
    dims = _f.norm_dims("logsumexp", dim, x.array.ndim) or None
    if x.numel() == 0:   # log(0) = -inf, as torch
        return _f.log(_f.sum(_f.exp(x), dims, keepdim))
    m = _stop_max(x, dims)
    out = _f.add(_f.log(_f.sum(_f.exp(_f.sub(x, m)), dims, keepdim=True)), m)
    if not keepdim:
        out = _f.squeeze(out, dims if dims is not None else tuple(range(x.array.ndim)))
    return out


def _safe_pow_root(s, p):
    """s ** (1/p) with a zero gradient where s == 0 (torch's norm backward):
    the root runs on 1 there, so no inf ever enters the chain rule."""
    z = _f.eq(s, 0.0)
    r = _f.sqrt(_f.where(z, 1.0, s)) if p == 2 else _f.pow(_f.where(z, 1.0, s), 1.0 / p)
    return _f.where(z, 0.0, r)


def norm(x, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: a vector norm over ``dim`` (all elements by default).
    p: 'fro' or 2 (euclidean), 1, inf, -inf, 0 (count of nonzeros), any other
    number ``(sum |x|^p)^(1/p)``. The gradient at 0 is 0, as torch."""
    _f._need_tensor("norm", x)
    if not isinstance(p, (int, float, str)):
        raise TypeError(f"gradkit.norm: p must be a number or 'fro', got {type(p).__name__}")
    if dtype is not None:
        x = _f.astype(x, dtype)
    _float_check("norm", x)
    if x.dtype_name == "float16":  # as torch: accumulate in float32 (|x|^p overflows float16)
        return _f.astype(norm(_f.astype(x, "float32"), p, dim, keepdim), "float16")
    dims = _f.norm_dims("norm", dim, x.array.ndim) or None
    if p == "nuc":
        raise NotImplementedError("gradkit.norm: the nuclear norm needs an SVD, which gradkit "
                                  "does not have; use p='fro' or a vector norm")
    if isinstance(p, str) and p != "fro":
        raise ValueError(f"gradkit.norm: unknown norm p={p!r}; use 'fro', a number or inf")
    if p == "fro" or p == 2:
        return _safe_pow_root(_f.sum(_f.mul(x, x), dims, keepdim), 2)
    a = _f.abs(x)
    if p == math.inf:
        return _f.amax(a, dims, keepdim)
    if p == -math.inf:
        return _f.amin(a, dims, keepdim)
    if p == 0:   # the count of nonzeros; |sign(x)| keeps torch's zero gradient
        return _f.sum(_f.abs(_f.sign(x)), dims, keepdim)
    if p == 1:
        return _f.sum(a, dims, keepdim)
    return _safe_pow_root(_f.sum(_f.pow(a, float(p)), dims, keepdim), p)


@prim("cumsum")
def _cumsum_vjp(F, n, g, dim=None):
    # out_j = sum_{i <= j} x_i, so dx_i = sum_{j >= i} g_j: a reversed cumsum
    return (F.flip(F.cumsum(F.flip(g, (dim,)), dim), (dim,)),)


def cumsum(x, dim, dtype=None):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.cumsum: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = _f.astype(x, dtype)
    B = x._B
    if not B.is_floating(x.array.dtype) and x.dtype_name != "int64":
        x = _f.astype(x, "int64")     # torch: integer cumsum accumulates in int64
    d = _f.norm_dim("cumsum", dim, x.array.ndim)
    if x.array.ndim == 0:
        return _f.reshape(cumsum(_f.reshape(x, (1,)), 0), ())
    return apply(_cumsum_vjp, B, (x,), (x.array,), {"dim": d})


# =============================================================== softmax
def _softmax_input(name, x, dtype):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")
    if dtype is not None:
        x = _f.astype(x, dtype)
    if x.array.dtype not in x._B.float_dtypes:
        raise GradkitError(f"gradkit.{name}: not implemented for {x.dtype_name} input; pass "
                           "dtype=gk.float32 or convert with .float()")
    return x


@prim("softmax", out=True)
def _softmax_vjp(F, n, g, y, dim=None):
    # y * (g - sum(g * y)): 4 passes instead of the composition's backward
    return (F.mul(y, F.sub(g, F.sum(F.mul(g, y), (dim,), True))),)


def softmax(x, dim, dtype=None):
    """exp(x - max) / sum(exp(x - max)) along ``dim`` (one stable kernel): exact
    and finite for inputs of any magnitude. A primitive: W4 measured the
    composition's extra passes."""
    x = _softmax_input("softmax", x, dtype)
    d = _f.norm_dim("softmax", dim, x.array.ndim)
    if x.numel() == 0:   # as torch: an empty result (nothing to normalise)
        return _f.exp(x)
    if x.array.ndim == 0:
        return _f.div(_f.exp(_f.sub(x, x.detach())), 1.0)
    return apply(_softmax_vjp, x._B, (x,), (x.array,), {"dim": d})


def log_softmax(x, dim, dtype=None):
    x = _softmax_input("log_softmax", x, dtype)
    d = (_f.norm_dim("log_softmax", dim, x.array.ndim),)
    if x.numel() == 0:   # as torch: an empty result
        return _f.sub(x, x.detach())
    z = _f.sub(x, _stop_max(x, d))
    return _f.sub(z, _f.log(_f.sum(_f.exp(z), d, keepdim=True)))


# ================================================================ shape
@prim("flip", view=True)
def _flip_vjp(F, n, g, dims=None):
    return (F.flip(g, dims),)


def flip(x, dims):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.flip: expected a Tensor, got {type(x).__name__}")
    if isinstance(dims, int) or hasattr(dims, "__index__"):
        dims = (dims,)
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"gradkit.flip: dims must be an int or a tuple of ints, got "
                        f"{type(dims).__name__}")
    nd = x.array.ndim
    dims = tuple(_f.norm_dim("flip", d, nd) for d in dims)
    if len(set(dims)) != len(dims):
        raise GradkitError(f"gradkit.flip: dim {dims} appears multiple times in the list of dims")
    if not dims or nd == 0:
        return _f.clone(x)
    return apply(_flip_vjp, x._B, (x,), (x.array,), {"dims": dims})


@prim("repeat")
def _repeat_vjp(F, n, g, sizes=None, inshape=None):
    # out viewed as (r0, s0, r1, s1, ...): sum the r axes
    split = []
    for r, s in zip(sizes, inshape):
        split += [r, s]
    g = F.sum(F.reshape(g, tuple(split)), tuple(range(0, 2 * len(sizes), 2)), False)
    return (g,)


def repeat(x, *sizes):
    _f._need_tensor("repeat", x)
    sizes = _f._shape_arg("repeat", sizes)
    nd = x.array.ndim
    if len(sizes) < nd:
        raise GradkitError(
            f"gradkit.repeat: number of dimensions of repeat dims ({len(sizes)}) can not be "
            f"smaller than the number of dimensions of the tensor ({nd}, shape {x.shape})")
    if any(s < 0 for s in sizes):
        raise GradkitError(f"gradkit.repeat: repeats must be non-negative, got {sizes}")
    inshape = (1,) * (len(sizes) - nd) + tuple(x.array.shape)
    if inshape != tuple(x.array.shape):
        x = _f.reshape(x, inshape)
    return apply(_repeat_vjp, x._B, (x,), (x.array,), {"sizes": sizes}, {"inshape": inshape})


def _zeros_ns(F, ref, shape):
    """Zeros shaped ``shape`` like ``ref`` in F's world (raw array or Tensor)."""
    if ref.__class__ is Tensor:
        B = ref._B
        return const(B, B.zeros(shape, ref.array.dtype))
    return F.zeros(shape, ref.dtype)


def _split_vjp_fn(F, n, gs, dim=None, sizes=None):
    # a multi-output node gets a list of output gradients, None where none flowed
    if gs.__class__ is not list:
        gs = [gs]
    ref = next(g for g in gs if g is not None)
    shp = tuple(ref.shape)
    parts = [g if g is not None else _zeros_ns(F, ref, shp[:dim] + (s,) + shp[dim + 1:])
             for g, s in zip(gs, sizes)]
    return (parts[0] if len(parts) == 1 else F.cat(parts, dim),)


_split_prim = prim("split", view=True)(_split_vjp_fn)


def split(x, split_size_or_sections, dim=0):
    """Views of consecutive pieces along ``dim``: an int gives pieces of that
    size (the last may be smaller), a list gives the sizes. One node with one
    output per piece, so the backward concatenates instead of adding a
    zero-padded full-size gradient per piece."""
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.split: expected a Tensor, got {type(x).__name__}")
    nd = x.array.ndim
    if nd == 0:
        raise GradkitError("gradkit.split: a 0-d tensor cannot be split; it has no dims")
    d = _f.norm_dim("split", dim, nd)
    n = x.array.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and not (s == 0 and n == 0):
            raise GradkitError(f"gradkit.split: split_size must be positive, got {s}")
        sizes = [s] * (n // s) + ([n % s] if n % s else []) if n else [0]
    else:
        if not isinstance(split_size_or_sections, (list, tuple)) or [
                v for v in split_size_or_sections if not isinstance(v, int)]:
            raise TypeError(f"gradkit.split: split_size_or_sections must be an int or a list "
                            f"of ints, got {split_size_or_sections!r}")
        sizes = [int(v) for v in split_size_or_sections]
        if sum(sizes) != n or any(v < 0 for v in sizes):
            raise GradkitError(
                f"gradkit.split: split_with_sizes expects split_sizes to sum exactly to {n} "
                f"(input tensor's size at dimension {d}, shape {x.shape}), but got "
                f"split_sizes={sizes}")
    return _apply_split(x, d, tuple(sizes))


def chunk(x, chunks, dim=0):
    """torch.chunk: pieces of size ceil(n / chunks) (so possibly fewer than
    ``chunks`` pieces)."""
    _f._need_tensor("chunk", x)
    if not isinstance(chunks, int) or chunks <= 0:
        raise GradkitError(f"gradkit.chunk: chunks must be a positive int, got {chunks!r}")
    nd = x.array.ndim
    if nd == 0:
        raise GradkitError("gradkit.chunk: a 0-d tensor cannot be chunked; it has no dims")
    d = _f.norm_dim("chunk", dim, nd)
    n = x.array.shape[d]
    size = -(-n // chunks) if n else 0
    if n:
        return split(x, size, d)
    try:
        empty = [0] * chunks  # torch: `chunks` empty pieces
    except MemoryError:
        raise GradkitError(f"gradkit.chunk: can't make {chunks} empty pieces") from None
    return split(x, empty, d)


def _apply_split(x, d, sizes):
    B = x._B
    data = x.array
    pre = (slice(None),) * d
    outs = []
    start = 0
    try:
        for s in sizes:
            outs.append(B.getitem(data, pre + (slice(start, start + s),)))
            start += s
    except Exception as e:
        raise op_error("split", (x,), e) from None
    ts = []
    for o in outs:
        t = const(B, o)
        t._vc = x._vc        # views: they share the input's version counter
        t._view = True
        ts.append(t)
    if mode.enabled and x._rg:
        fn = x.grad_fn
        edge = (x if fn is None else fn, x._oi, data.shape, data.dtype)
        node = Node(_split_prim, B, {"dim": d, "sizes": sizes}, (), (), [edge], (True,))
        node.nout = len(ts)
        for k, t in enumerate(ts):
            t.grad_fn = node
            t._oi = k
            t._rg = True
    return tuple(ts)


# ============================================================ indexing
def _index_tensor(name, index, ref):
    if index.__class__ is not Tensor:
        index = _f._as_tensor_like(index, ref, name)
    if index._B is not ref._B:
        raise _f._device_error(name, ref, index)
    B = index._B
    if not B.is_integral(index.array.dtype):
        raise GradkitError(f"gradkit.{name}: expected an integer index tensor (int64), got "
                           f"{index.dtype_name}")
    return index


def gather(x, dim, index, *, sparse_grad=False):
    """torch.gather: ``out[i][j][k] = x[i][index[i][j][k]][k]`` for dim=1.
    A composition: advanced indexing with ``index`` along ``dim`` and aranges
    along the other dims, so the backward is the indexing's scatter-add."""
    _f._need_tensor("gather", x)
    index = _index_tensor("gather", index, x)
    nd = x.array.ndim
    d = _f.norm_dim("gather", dim, nd)
    ishape = tuple(index.array.shape)
    if index.array.ndim != max(nd, 1) and not (nd == 0 and index.array.ndim <= 1):
        raise GradkitError(f"gradkit.gather: index {ishape} and input {x.shape} must have the "
                           "same number of dimensions")
    for i, (a, b) in enumerate(zip(ishape, x.array.shape)):
        if i != d and a > b:
            raise GradkitError(f"gradkit.gather: size {a} of index {ishape} at dim {i} is "
                               f"larger than the input's {b} (shape {x.shape})")
    B = x._B
    n = x.array.shape[d] if nd else 1
    B.check_index(index.array, -n, n, "gather")
    if nd == 0:
        return _f.getitem(_f.reshape(x, (1,)), index)
    i64 = B.dtypes["int64"]
    idx = []
    for i, s in enumerate(ishape):
        if i == d:
            idx.append(index)
        else:
            ar = B.arange(0, s, 1, i64)
            idx.append(const(B, B.reshape(ar, tuple(s if j == i else 1 for j in range(nd)))))
    with as_op("gather"):
        return _f.getitem(x, tuple(idx))


def index_add(x, dim, index, source, *, alpha=1):
    """``x`` with ``alpha * source[..., i, ...]`` added at ``x[..., index[i], ...]``
    (repeated indices accumulate). A composition: the scatter is the
    differentiable ``getitem_backward`` (whose VJP is the gather back)."""
    if x.__class__ is not Tensor or source.__class__ is not Tensor:
        raise TypeError("gradkit.index_add: expected Tensor input and source")
    if source._B is not x._B:
        raise _f._device_error("index_add", x, source)
    index = _index_tensor("index_add", index, x)
    if index.array.ndim > 1:
        raise IndexError(f"gradkit.index_add: index must be 1-D, got shape {index.shape}")
    nd = x.array.ndim
    d = _f.norm_dim("index_add", dim, nd)
    if source.array.dtype != x.array.dtype:
        raise GradkitError(f"gradkit.index_add: self ({x.dtype_name}) and source "
                           f"({source.dtype_name}) must have the same dtype")
    k = index.numel()
    n = x.array.shape[d] if nd else 1
    x._B.check_index(index.array, -n, n, "index_add")
    want = tuple(k if i == d else s for i, s in enumerate(x.array.shape))
    if nd == 0:
        x1 = index_add(_f.reshape(x, (1,)), 0, _f.reshape(index, (-1,)),
                       _f.reshape(source, (-1,)), alpha=alpha)
        return _f.reshape(x1, ())
    if tuple(source.array.shape) != want:
        raise GradkitError(f"gradkit.index_add: source shape {source.shape} must be the input's "
                           f"{x.shape} with dim {d} replaced by len(index)={k}, i.e. {want}")
    if alpha != 1:
        source = _f.mul(source, alpha)
    idx = (slice(None),) * d + (_f.reshape(index, (-1,)).array,)
    with as_op("index_add"):
        return _f.add(x, _f.getitem_backward(source, x.array.shape, idx, True))
