"""Index, sampling and comparison ops of issue 12, as torch: multinomial, randperm,
nonzero, argwhere, where(cond), one_hot, isnan, isinf, isclose, allclose. None
makes a graph (their results are integer or bool, or drawn at random); the few
that must read a value back (a data-dependent size, a validation) say so.
"""
from ..graph import host_sync_violation, mode
from ..errors import GradkitError
from ..tensor import Tensor, const
from ..creation import _backend, tensor as _tensor
from ..generator import Generator
from .compare import eq, isfinite, le, logical_and, logical_not, logical_or, ne, where as _where3
from .dispatch import _as_tensor_like, _device_error, _promote_pair, astype
from .elementwise import absolute, add, mul, sub
from .core import op

__all__ = ["multinomial", "randperm", "isnan", "isinf", "isclose", "allclose", "equal", "nonzero",
           "argwhere", "where", "one_hot"]


def _i64(B):
    return B.dtypes["int64"]


def _need(name, x):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: expected a Tensor, got {type(x).__name__}")


def _need_int(name, what, v):
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            return v.__index__()
        except (AttributeError, TypeError):
            raise TypeError(f"gradkit.{name}: {what} must be an int, got "
                            f"{type(v).__name__}") from None
    return v


def _host_checks(B):
    """Whether a validation may read a value back from the device (never under
    gk.no_host_sync on an accelerator: the check is then skipped, as torch's
    CUDA kernels skip it)."""
    return not (mode.host_sync_guard and B.type != "cpu")


# ================================================================= sampling
@op
def multinomial(input, num_samples, replacement=False, *, generator=None):
    """``num_samples`` category indices (int64) per row of the 1-D or 2-D weights
    ``input`` (non-negative, not necessarily normalised), with or without
    replacement. Drawn on the input's device from gradkit's generator
    (``gk.manual_seed``); the stream differs from torch's. Not differentiable. The
    weights are validated with one read-back except under gk.no_host_sync on an
    accelerator. As torch.multinomial."""
    _need("multinomial", input)
    if generator is not None:
        raise TypeError("gradkit.multinomial: generator= is not supported; seed the global "
                        "generator with gk.manual_seed(seed) instead")
    n = _need_int("multinomial", "num_samples", num_samples)
    B = input._B
    x = input.array
    if x.ndim not in (1, 2):
        raise GradkitError(f"gradkit.multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{tuple(input.shape)}")
    if not B.is_floating(x.dtype):
        raise GradkitError(f"gradkit.multinomial: expected a floating point weight tensor, got "
                           f"{input.dtype_name}; convert it with .float()")
    k = x.shape[-1]
    if n <= 0:
        raise GradkitError(f"gradkit.multinomial: cannot sample n_sample <= 0 samples "
                           f"(got num_samples={n})")
    if not replacement and n > k:
        raise GradkitError(f"gradkit.multinomial: cannot sample n_sample > prob_dist.size(-1) "
                           f"samples without replacement (num_samples={n}, {k} categories); "
                           "pass replacement=True")
    if x.dtype == B.dtypes.get("float16"):
        x = B.astype(x, B.dtypes["float32"])   # the generators draw float32/float64
    rows = B.reshape(x, (-1, k))
    pos = B.gt(rows, 0)
    if _host_checks(B):
        bad = B.any(B.logical_not(B.logical_and(B.isfinite(rows), B.ge(rows, 0))))
        if B.item(bad):
            raise GradkitError("gradkit.multinomial: probability tensor contains either `inf`, "
                               "`nan` or element < 0")
        npos = B.sum(B.astype(pos, _i64(B)), -1)
        if B.item(B.any(B.eq(npos, 0))):
            raise GradkitError("gradkit.multinomial: invalid multinomial distribution (sum of "
                               "probabilities <= 0): a row has no positive weight")
        if not replacement and B.item(B.any(B.lt(npos, n))):
            raise GradkitError(
                "gradkit.multinomial: invalid multinomial distribution (with replacement=False, "
                f"not enough non-negative category to sample): a row has fewer than {n} "
                "positive weights")
    r = rows.shape[0]
    u = B.rand((r, n), rows.dtype)
    if replacement:
        cdf = B.cumsum(B.div(rows, B.sum(rows, -1, True)), 1)
        below = B.le(B.reshape(cdf, (r, 1, k)), B.reshape(u, (r, n, 1)))
        idx = B.sum(B.astype(below, _i64(B)), -1)
        # rounding may leave u above the last cdf value: take the last positive category
        last = (k - 1) - B.argmax(B.astype(B.flip(pos, 1), _i64(B)), 1, True)
        idx = B.minimum(idx, last)
    else:
        # exponential race: the n smallest -log(u)/w (zero weights never win)
        u = B.rand((r, k), rows.dtype)
        e = B.neg(B.log(B.sub(1.0, u)))
        keys = B.where(pos, B.div(e, B.where(pos, rows, 1.0)), float("inf"))
        idx = B.argsort(keys, 1, False)[:, :n]
    idx = B.astype(idx, _i64(B))
    return const(B, B.reshape(idx, (n,)) if input.array.ndim == 1 else idx)


@op(method=False)
def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False,
             pin_memory=False):
    """A random permutation of ``0 .. n-1`` (int64 by default) on ``device``, from
    gradkit's generator (``gk.manual_seed``), or from ``generator`` (a
    ``gk.Generator``: drawn on the host, then copied to the device); not
    differentiable. As torch.randperm."""
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"gradkit.randperm: generator must be a gk.Generator, got "
                        f"{type(generator).__name__}")
    n = _need_int("randperm", "n", n)
    if n < 0:
        raise GradkitError(f"gradkit.randperm: n must be non-negative, got {n}")
    if generator is not None:
        t = _tensor(generator.randperm(n), dtype="int64", device=device)
    else:
        B = _backend(device)
        t = const(B, B.argsort(B.rand((n,), B.dtypes["float64"]), 0, False))
    if dtype is not None:
        t = astype(t, dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


# ============================================================== comparisons
@op
def isnan(input):
    """Bool mask of NaN elements, as torch.isnan."""
    _need("isnan", input)
    return ne(input, input)


@op
def isinf(input):
    """Bool mask of +-inf elements, as torch.isinf."""
    _need("isinf", input)
    return logical_and(logical_not(isfinite(input)), eq(input, input))


@op
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (infinities equal only
    to themselves; NaN equal to NaN with ``equal_nan``), broadcasting; bool, no
    gradient. Mixed dtypes are promoted (torch refuses them). As torch.isclose."""
    _need("isclose", input)
    if other.__class__ is not Tensor:
        other = _as_tensor_like(other, input, "isclose")
    for v, w in ((rtol, "rtol"), (atol, "atol")):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"gradkit.isclose: {w} must be a number, got {type(v).__name__}")
    if rtol < 0 or atol < 0:
        raise GradkitError(f"gradkit.isclose: rtol ({rtol}) and atol ({atol}) must be "
                           "non-negative")
    if input._B is not other._B:
        raise _device_error("isclose", input, other)
    with _no_graph():
        a, b = input.detach(), other.detach()
        if a.dtype_name != b.dtype_name:
            a, b = _promote_pair("isclose", a, b)
        if not a._B.is_floating(a.array.dtype):
            a, b = astype(a, "float64"), astype(b, "float64")
        same = logical_or(eq(a, b), logical_and(isnan(a), isnan(b))) if equal_nan \
            else eq(a, b)
        fin = logical_and(isfinite(a), isfinite(b))
        a, b = _where3(fin, a, 0.0), _where3(fin, b, 0.0)   # no inf - inf warnings
        close = le(absolute(sub(a, b)), add(mul(absolute(b), float(rtol)), float(atol)))
        out = logical_or(same, logical_and(close, fin))
    return out


@op
def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``isclose(...).all()`` as a Python bool (reads one value back). As
    torch.allclose."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


@op
def equal(input, other):
    """``True`` if both tensors have the same shape and the same elements, else
    ``False`` (a Python bool; reads one value back; NaN is never equal). Not
    differentiable; cpu and cuda. As torch.equal."""
    _need("equal", input)
    _need("equal", other)
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool(eq(input, other).all().item())


class _no_graph:
    def __enter__(self):
        self.prev = mode.enabled
        mode.enabled = False

    def __exit__(self, *exc):
        mode.enabled = self.prev


# ==================================================================== index
@op
def nonzero(input, *, as_tuple=False):
    """Indices of the nonzero elements: an int64 tensor (n, ndim), or with
    ``as_tuple=True`` one 1-D index tensor per dim. Its size depends on the data,
    so it reads back from the device. Not differentiable. As torch.nonzero."""
    _need("nonzero", input)
    B = input._B
    if mode.host_sync_guard and B.type != "cpu":
        host_sync_violation("nonzero (the result's size depends on the data)")
    x = input.array
    if x.ndim == 0:
        x = B.reshape(x, (1,))
        idx = B.xp.nonzero(x)
        if as_tuple:
            return (const(B, B.astype(idx[0], _i64(B))),)
        return const(B, B.zeros((idx[0].shape[0], 0), _i64(B)))
    idx = tuple(B.astype(i, _i64(B)) for i in B.xp.nonzero(x))
    if as_tuple:
        return tuple(const(B, i) for i in idx)
    return const(B, B.xp.stack(idx, axis=1))


@op
def argwhere(input):
    """``nonzero(input)``: an int64 tensor (n, ndim). As torch.argwhere."""
    return nonzero(input)


@op(method=False, namespace=False)   # F.where is the 3-argument one (compare)
def where(condition, input=None, other=None):
    """``where(cond, input, other)``: elementwise choice, differentiable in both;
    ``where(cond)`` is ``nonzero(cond, as_tuple=True)``. As torch.where."""
    if input is None and other is None:
        _need("where", condition)
        return nonzero(condition, as_tuple=True)
    return _where3(condition, input, other)


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding: shape ``tensor.shape + (num_classes,)``; with
    ``num_classes=-1`` it is ``max + 1`` (one read-back). Values must lie in
    [0, num_classes). Not differentiable. As torch.nn.functional.one_hot."""
    _need("one_hot", tensor)
    B = tensor._B
    if tensor.dtype_name != "int64":
        raise GradkitError(f"gradkit.one_hot: one_hot is only applicable to index tensor of type "
                           f"int64 (LongTensor), got {tensor.dtype_name}; use .long()")
    num_classes = _need_int("one_hot", "num_classes", num_classes)
    x = tensor.array
    if num_classes == -1:
        if tensor.numel() == 0:
            raise GradkitError("gradkit.one_hot: can not infer total number of classes from "
                               "an empty tensor; pass num_classes")
        num_classes = int(B.item(B.amax(x))) + 1
    elif num_classes < 0:
        raise GradkitError(f"gradkit.one_hot: num_classes must be -1 or non-negative, got "
                           f"{num_classes}")
    if tensor.numel() and _host_checks(B):
        if B.item(B.amin(x)) < 0:
            raise GradkitError("gradkit.one_hot: class values must be non-negative")
        if B.item(B.amax(x)) >= num_classes:
            raise GradkitError(f"gradkit.one_hot: class values must be smaller than "
                               f"num_classes ({num_classes})")
    classes = B.arange(0, num_classes, 1, _i64(B))
    hot = B.eq(B.unsqueeze(x, x.ndim), classes)
    return const(B, B.astype(hot, _i64(B)))
