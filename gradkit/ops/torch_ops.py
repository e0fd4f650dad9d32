"""Ops that real PyTorch programs use beyond the core set (issue 12), as torch.

Compositions of the differentiable namespace wherever one exists (tril, topk,
sort, roll, unbind, outer, addmm, baddbmm, diag, diagonal, trace, isclose ...),
so their gradients, any order, come from the primitives; one new primitive,
``cumprod``, keeps forward, saved output and VJP side by side. The sampling, index
and comparison ops live in ``index_ops.py`` and are re-exported here.

``METHODS`` at the end is the one table of Tensor methods this module adds.
"""
from collections import namedtuple
from types import ModuleType

from ..graph import mode
from ..errors import GradkitError
from ..shapes import broadcast_shapes
from ..tensor import Tensor, const
from .. import creation
from .compare import clamp, masked_fill, where as _where3
from .dispatch import _device_error, astype, clone, norm_dim
from .elementwise import add, mul
from .indexing import gather, getitem, getitem_backward
from .inplace import _inplace, copy_
from .linalg import matmul
from .reductions import reduce_sum
from .shape import cat, expand, permute, reshape, view
from .core import apply, method, op, prim
from .index_ops import (_i64, _need, _need_int, multinomial, randperm, isnan, isinf,  # noqa: F401
                        isclose, allclose, nonzero, argwhere, where, one_hot)


# torch.return_types.sort / topk: a tuple with .values and .indices
sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])


def _zero_like_scalar(x):
    return const(x._B, x._B.zeros((), x.array.dtype))


# ================================================================ triangles
def _tri(name, x, diagonal, upper):
    _need(name, x)
    diagonal = _need_int(name, "diagonal", diagonal)
    if x.array.ndim < 2:
        raise GradkitError(f"gradkit.{name}: input tensor must have at least 2 dimensions, "
                           f"got shape {tuple(x.shape)}")
    B = x._B
    n, m = x.array.shape[-2:]
    i = B.reshape(B.arange(0, n, 1, _i64(B)), (n, 1))
    j = B.reshape(B.arange(0, m, 1, _i64(B)), (1, m))
    d = B.sub(j, i)
    keep = B.ge(d, diagonal) if upper else B.le(d, diagonal)
    return _where3(const(B, keep), x, _zero_like_scalar(x))


@op
def tril(input, diagonal=0):
    """The lower triangle of the last two dims (elements with j - i <= diagonal),
    zeros elsewhere; same dtype and device; differentiable. As torch.tril."""
    return _tri("tril", input, diagonal, False)


@op
def triu(input, diagonal=0):
    """The upper triangle of the last two dims (j - i >= diagonal), zeros
    elsewhere; same dtype and device; differentiable. As torch.triu."""
    return _tri("triu", input, diagonal, True)


# ================================================================== sorting
def _argsort_raw(name, x, dim, descending):
    B = x._B
    if x.array.ndim == 0:
        return B.zeros((), _i64(B))
    a = x.array
    if a.dtype == B.bool_dtype:   # False < True; some namespaces sort numbers only
        a = B.astype(a, B.dtypes["uint8"])
    try:
        return B.argsort(a, dim, descending)
    except Exception as e:
        raise GradkitError(f"gradkit.{name}: can't sort a {x.dtype_name} tensor on "
                           f"{B.device_str} ({str(e).splitlines()[0]})") from None


@op
def argsort(input, dim=-1, descending=False, stable=False):
    """Indices (int64, input's shape) that sort ``input`` along ``dim``; the sort
    is always stable here (torch's ``stable=True``), NaN sorts as the largest
    value. Not differentiable. As torch.argsort."""
    _need("argsort", input)
    d = norm_dim("argsort", dim, input.array.ndim)
    return const(input._B, _argsort_raw("argsort", input, d, bool(descending)))


@op
def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``input`` sorted along ``dim`` (a namedtuple, as
    torch.return_types.sort); stable; values are differentiable (a gather), indices
    int64. As torch.sort."""
    _need("sort", input)
    d = norm_dim("sort", dim, input.array.ndim)
    idx = const(input._B, _argsort_raw("sort", input, d, bool(descending)))
    if input.array.ndim == 0:
        return sort_result(input * 1 if input.requires_grad else input.clone(), idx)
    return sort_result(gather(input, d, idx), idx)


@op
def msort(input):
    """``sort(input, dim=0).values``, as torch.msort."""
    return sort(input, 0).values


@op
def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` as ``(values,
    indices)``, in order; values differentiable, indices int64. Equal values come in
    index order. As torch.topk."""
    _need("topk", input)
    k = _need_int("topk", "k", k)
    nd = input.array.ndim
    d = norm_dim("topk", dim, nd)
    size = input.array.shape[d] if nd else 1
    if k < 0 or k > size:
        raise GradkitError(f"gradkit.topk: selected index k={k} out of range for dim {d} of "
                           f"size {size} (input shape {tuple(input.shape)})")
    B = input._B
    order = _argsort_raw("topk", input, d, bool(largest))
    if nd == 0:
        idx = const(B, order)
        return topk_result(input * 1 if input.requires_grad else input.clone(), idx)
    idx = const(B, order[(slice(None),) * d + (slice(0, k), Ellipsis)])
    return topk_result(gather(input, d, idx), idx)


@op(namespace=False)   # F.take_along_dim is the kernel-shaped one (reductions)
def take_along_dim(input, indices, dim=None):
    """``input``'s values at ``indices`` along ``dim`` (both flattened when dim is
    None); differentiable in input. As torch.take_along_dim (without its
    broadcasting of the other dims: index sizes must not exceed input's)."""
    _need("take_along_dim", input)
    if dim is None:
        return gather(reshape(input, (-1,)), 0, reshape(indices, (-1,)))
    return gather(input, dim, indices)


# ==================================================================== shape
@op
def roll(input, shifts, dims=None):
    """Elements shifted by ``shifts`` along ``dims`` (wrapping around); with
    ``dims=None`` the tensor is rolled flattened and reshaped back. Differentiable.
    As torch.roll."""
    _need("roll", input)
    sh = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    sh = tuple(_need_int("roll", "shifts", s) for s in sh)
    if dims is None:
        if len(sh) != 1:
            raise GradkitError(f"gradkit.roll: with dims=None, shifts must be one int, got {sh}")
        return reshape(roll(reshape(input, (-1,)), sh[0], 0), input.array.shape)
    ds = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(ds) != len(sh):
        raise GradkitError(f"gradkit.roll: shifts {sh} and dims {ds} must have the same length")
    out = input
    nd = input.array.ndim
    for s, d in zip(sh, ds):
        d = norm_dim("roll", d, nd)
        size = out.array.shape[d]
        if size == 0 or s % size == 0:
            continue
        s %= size
        pre = (slice(None),) * d
        out = cat([getitem(out, pre + (slice(size - s, None),)),
                      getitem(out, pre + (slice(0, size - s),))], d)
    return out if out is not input else clone(input)


@op
def select(input, dim, index):
    """``input`` indexed by ``index`` along ``dim`` (that dim removed); a
    differentiable view. As torch.select."""
    _need("select", input)
    d = norm_dim("select", dim, input.array.ndim)
    return getitem(input, (slice(None),) * d + (_need_int("select", "index", index),))


@op
def unbind(input, dim=0):
    """The slices of ``input`` along ``dim``, as a tuple of tensors (each a
    differentiable view). As torch.unbind."""
    _need("unbind", input)
    if input.array.ndim == 0:
        raise GradkitError("gradkit.unbind: dimension specified as 0 but tensor has no dimensions")
    d = norm_dim("unbind", dim, input.array.ndim)
    pre = (slice(None),) * d
    return tuple(getitem(input, pre + (i,)) for i in range(input.array.shape[d]))


@op
def view_as(input, other):
    """``input.view(other.shape)``, as torch.Tensor.view_as."""
    _need("view_as", other)
    return view(input, other.array.shape)


@op
def reshape_as(input, other):
    """``input.reshape(other.shape)``, as torch.Tensor.reshape_as."""
    _need("reshape_as", other)
    return reshape(input, other.array.shape)


@op(method=False)   # Tensor.numel is in tensor.py
def numel(input):
    """The number of elements, as torch.numel."""
    _need("numel", input)
    return input.numel()


# ================================================================== products
def _dims(name, x, nd, what):
    _need(name, x)
    if x.array.ndim != nd:
        raise GradkitError(f"gradkit.{name}: {what} must be a {nd}-D tensor, got shape {tuple(x.shape)}")


@op(aliases=("ger",))
def outer(input, vec2):
    """The outer product of two 1-D tensors, shape (n, m); differentiable. As
    torch.outer (alias ger)."""
    _dims("outer", input, 1, "input")
    _dims("outer", vec2, 1, "vec2")
    return mul(reshape(input, (-1, 1)), reshape(vec2, (1, -1)))


@op
def mm(input, mat2):
    """Matrix product of two 2-D tensors; differentiable. As torch.mm (``matmul``
    broadcasts; this one refuses other ranks, as torch)."""
    _dims("mm", input, 2, "self")
    _dims("mm", mat2, 2, "mat2")
    return matmul(input, mat2, name="mm")


@op
def bmm(input, mat2):
    """Batched matrix product of two 3-D tensors (b, n, m) @ (b, m, p); differentiable.
    As torch.bmm."""
    _dims("bmm", input, 3, "batch1")
    _dims("bmm", mat2, 3, "batch2")
    if input.array.shape[0] != mat2.array.shape[0]:
        raise GradkitError(f"gradkit.bmm: batch sizes differ: {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2, name="bmm")


def _addprod(name, input, prod, beta, alpha):
    for v, w in ((beta, "beta"), (alpha, "alpha")):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"gradkit.{name}: {w} must be a number, got {type(v).__name__}")
    _need(name, input)
    try:
        base = expand(input, prod.array.shape)
    except GradkitError:
        raise GradkitError(f"gradkit.{name}: input of shape {tuple(input.shape)} can't be broadcast "
                           f"to the product's shape {tuple(prod.shape)}") from None
    if alpha != 1:
        prod = mul(prod, alpha)
    if beta == 0:  # as torch: input's values are ignored (nan/inf do not propagate), its
        # gradient is zeros: a where that never picks it
        B = prod._B
        return _where3(const(B, B.full((), False, B.bool_dtype)), base, prod)
    return add(mul(base, beta) if beta != 1 else base, prod)


@op
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` with 2-D mats and ``input``
    broadcastable to the product; ``beta=0`` ignores input. Differentiable. As
    torch.addmm."""
    return _addprod("addmm", input, mm(mat1, mat2), beta, alpha)


@op
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * bmm(batch1, batch2)`` (3-D batches); differentiable.
    As torch.baddbmm."""
    return _addprod("baddbmm", input, bmm(batch1, batch2), beta, alpha)


# ================================================================= diagonals
def _diag_index(B, n1, n2, offset):
    r0, c0 = max(-offset, 0), max(offset, 0)
    k = max(min(n1 - r0, n2 - c0), 0)
    ar = B.arange(0, k, 1, _i64(B))
    return B.add(ar, r0), B.add(ar, c0), k


@op
def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of the matrices in dims (dim1, dim2), appended as the
    last dim; differentiable (a copy here, a view in torch). As torch.diagonal."""
    _need("diagonal", input)
    offset = _need_int("diagonal", "offset", offset)
    nd = input.array.ndim
    if nd < 2:
        raise GradkitError(f"gradkit.diagonal: input must have at least 2 dims, got shape "
                           f"{tuple(input.shape)}")
    d1 = norm_dim("diagonal", dim1, nd)
    d2 = norm_dim("diagonal", dim2, nd)
    if d1 == d2:
        raise GradkitError(f"gradkit.diagonal: diagonal dimensions cannot be identical "
                           f"({dim1}, {dim2})")
    rest = tuple(i for i in range(nd) if i not in (d1, d2))
    x = permute(input, rest + (d1, d2)) if rest + (d1, d2) != tuple(range(nd)) else input
    B = input._B
    i, j, _ = _diag_index(B, input.array.shape[d1], input.array.shape[d2], offset)
    return getitem(x, (Ellipsis, const(B, i), const(B, j)))


@op
def diag(input, diagonal=0):
    """1-D input: a square matrix with ``input`` on diagonal ``diagonal``; 2-D input:
    that diagonal as a 1-D tensor. Differentiable. As torch.diag."""
    _need("diag", input)
    offset = _need_int("diag", "diagonal", diagonal)
    nd = input.array.ndim
    if nd == 2:
        return globals()["diagonal"](input, offset)
    if nd != 1:
        raise GradkitError(f"gradkit.diag: supports 1D or 2D tensors, got {nd}D (shape "
                           f"{tuple(input.shape)}); use gk.diagonal or gk.diag_embed")
    B = input._B
    n = input.array.shape[0] + abs(offset)
    i, j, _ = _diag_index(B, n, n, offset)
    return getitem_backward(input, (n, n), (i, j), True)


@op
def trace(input):
    """The sum of the main diagonal of a 2-D tensor; differentiable. Integer input
    sums to int64. As torch.trace."""
    _dims("trace", input, 2, "input")
    return reduce_sum(diagonal(input))


# ================================================================== cumprod
@prim("cumprod", save=(0,), out=True)
def _cumprod_vjp(F, n, g, x, y, dim=None):
    # dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k, exact with zeros. Where
    # x_i != 0 it is rcumsum(g y)_i / x_i (y_j = 0 past a zero, and its graph still
    # carries that zero's derivative). At the first zero p of a row it is
    # rcumsum(g y')_p, y' the cumprod with x_p replaced by 1; at the second zero q,
    # x_p * rcumsum(g y'')_q (y'': x_p and x_q replaced by 1), zero in value but
    # needed for the second derivative; past that, 0 to second order.
    cp = F.cumprod   # F: the raw backend or the differentiable namespace
    z = F.eq(x, 0.0)
    cz = F.cumsum(F.astype(z, y.dtype), dim)
    first = F.logical_and(z, F.eq(cz, 1.0))
    a = F.div(_rcumsum(F, F.mul(g, y), dim), F.where(z, 1.0, x))
    b = _rcumsum(F, F.mul(g, cp(F.where(first, 1.0, x), dim)), dim)
    at_zero = F.where(first, b, 0.0)
    if F.__class__ is ModuleType:   # create_graph (F is gradkit.ops.functional): the
        # second zero's term, for the next derivative
        second = F.logical_and(z, F.eq(cz, 2.0))
        ypq = cp(F.where(F.logical_or(first, second), 1.0, x), dim)
        xp = F.sum(F.where(first, x, 0.0), (dim,), True)
        at_zero = F.where(second, F.mul(xp, _rcumsum(F, F.mul(g, ypq), dim)), at_zero)
    return (F.where(z, at_zero, a),)


def _rcumsum(F, v, dim):
    return F.flip(F.cumsum(F.flip(v, (dim,)), dim), (dim,))


@op
def cumprod(input, dim, *, dtype=None):
    """Cumulative product along ``dim``; integer and bool inputs accumulate in int64.
    Differentiable (exact with zeros; any order). As torch.cumprod."""
    _need("cumprod", input)
    x = input if dtype is None else astype(input, dtype)
    B = x._B
    if not B.is_floating(x.array.dtype) and x.dtype_name != "int64":
        x = astype(x, "int64")
    d = norm_dim("cumprod", dim, x.array.ndim)
    if x.array.ndim == 0:
        return reshape(cumprod(reshape(x, (1,)), 0), ())
    return apply(_cumprod_vjp, B, (x,), (x.array,), {"dim": d})


@op(public=False)
def masked_fill_(input, mask, value):
    """In place: ``input[mask] = value`` (mask bool, broadcast to input's shape);
    bumps the version; as ``torch.Tensor.masked_fill_``."""
    _need("masked_fill_", input)
    if mask.__class__ is Tensor and mask.array.dtype != mask._B.bool_dtype:
        raise GradkitError(f"gradkit.masked_fill_: only supports boolean masks, but got mask "
                           f"with dtype {mask.dtype_name}")
    return _inplace("masked_fill_", input, masked_fill(input, mask, value))


# ================================================== more indexing and filling
@op
def index_select(input, dim, index):
    """The slices of ``input`` at the 1-D int64 ``index`` along ``dim`` (repeats
    allowed; their gradients add up). Differentiable in input. As torch.index_select."""
    _need("index_select", input)
    _need("index_select", index)
    if index._B is not input._B:
        raise _device_error("index_select", input, index)
    if index.array.ndim > 1 or not index._B.is_integral(index.array.dtype):
        raise GradkitError(f"gradkit.index_select: index must be a 1-D integer tensor, got "
                           f"shape {tuple(index.shape)} and dtype {index.dtype_name}")
    d = norm_dim("index_select", dim, input.array.ndim)
    if input.array.ndim == 0:
        return getitem(reshape(input, (1,)), reshape(index, (-1,)))
    return getitem(input, (slice(None),) * d + (reshape(index, (-1,)), Ellipsis))


@op
def masked_select(input, mask):
    """The elements of ``input`` where the bool ``mask`` is True (both broadcast), as
    a 1-D tensor; differentiable in input; its size depends on the data (a read-back
    on an accelerator). As torch.masked_select."""
    _need("masked_select", input)
    _need("masked_select", mask)
    if mask.array.dtype != mask._B.bool_dtype:
        raise GradkitError(f"gradkit.masked_select: mask must be a bool tensor, got "
                           f"{mask.dtype_name}")
    shape = _broadcast_shape("masked_select", input.array.shape, mask.array.shape)
    x = input if tuple(input.array.shape) == shape else expand(input, shape)
    m = mask if tuple(mask.array.shape) == shape else expand(mask, shape)
    return getitem(x, m)


def _broadcast_shape(name, a, b):
    out = broadcast_shapes(a, b)
    if out is None:
        raise GradkitError(f"gradkit.{name}: shapes {tuple(a)} and {tuple(b)} are not "
                           "broadcastable")
    return out


@op
def narrow(input, dim, start, length):
    """``length`` elements of ``input`` from ``start`` along ``dim``: a differentiable
    view. As torch.narrow."""
    _need("narrow", input)
    d = norm_dim("narrow", dim, input.array.ndim)
    start, length = _need_int("narrow", "start", start), _need_int("narrow", "length", length)
    size = input.array.shape[d]
    if start < 0:
        start += size
    if start < 0 or length < 0 or start + length > size:
        raise GradkitError(f"gradkit.narrow: start ({start}) + length ({length}) exceeds "
                           f"dimension {d} of size {size}")
    return getitem(input, (slice(None),) * d + (slice(start, start + length), Ellipsis))


@op
def clamp_min(input, min):
    """``clamp(input, min=min)``, as torch.clamp_min."""
    return clamp(input, min=min)


@op
def clamp_max(input, max):
    """``clamp(input, max=max)``, as torch.clamp_max."""
    return clamp(input, max=max)


def _fill_random(name, self, draw):
    _need(name, self)
    if not self._B.is_floating(self.array.dtype):
        raise GradkitError(f"gradkit.{name}: expected a floating point tensor, got "
                           f"{self.dtype_name}")
    if mode.enabled and self._rg and self.grad_fn is None:
        raise GradkitError(f"gradkit.{name}: a leaf Variable that requires grad is being used "
                           "in an in-place operation; wrap it in gk.no_grad() (as gk.nn.init "
                           "does) or fill p.data")
    prev, mode.enabled = mode.enabled, False
    try:
        new = draw(creation.empty_like(self, dtype=self.dtype))
    finally:
        mode.enabled = prev
    return copy_(self, new)


@method("normal_")
def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """In place: values drawn from N(mean, std^2) on the tensor's device, from
    gradkit's generator (``gk.manual_seed``). As ``torch.Tensor.normal_``."""
    if generator is not None:
        raise TypeError("gradkit.normal_: generator= is not supported; use gk.manual_seed")
    return _fill_random("normal_", self, lambda e: add(mul(creation.randn_like(e), std),
                                                          mean))


@method("uniform_")
def uniform_(self, a=0.0, b=1.0, *, generator=None):
    """In place: values drawn uniformly from [a, b) on the tensor's device. As
    ``torch.Tensor.uniform_``."""
    if generator is not None:
        raise TypeError("gradkit.uniform_: generator= is not supported; use gk.manual_seed")
    return _fill_random("uniform_", self, lambda e: add(mul(creation.rand_like(e), b - a),
                                                           a))


@method("nelement")
def _nelement(self):
    """The number of elements, as torch.Tensor.nelement."""
    return self.numel()


@method("element_size")
def _element_size(self):
    """Bytes per element, as torch.Tensor.element_size."""
    return self.dtype.itemsize


@op
def is_floating_point(input):
    """Whether the dtype is a floating point type, as torch.is_floating_point."""
    _need("is_floating_point", input)
    return input.dtype.is_floating_point


# ====================================================== methods only
def _new_like(name, make):
    def method(self, *size, dtype=None, device=None, requires_grad=False):
        dt = self.dtype if dtype is None else dtype
        dev = self.device if device is None else device
        return getattr(creation, make)(*size, dtype=dt, device=dev, requires_grad=requires_grad)
    method.__name__ = name
    method.__doc__ = f"``gk.{make}(*size)`` with this tensor's dtype and device (torch.Tensor.{name})."
    return method


for _name, _make in (("new_zeros", "zeros"), ("new_ones", "ones"), ("new_empty", "empty")):
    method(_name, _new_like(_name, _make))


@op(method=False)   # Tensor.detach_ is in tensor.py
def detach_(input):
    """Detach ``input`` from the graph in place (it becomes a leaf), as ``torch.detach_``."""
    _need("detach_", input)
    return input.detach_()


@method("new_full")
def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``gk.full(size, fill_value)`` with this tensor's dtype and device
    (torch.Tensor.new_full)."""
    return creation.full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                         device=self.device if device is None else device,
                         requires_grad=requires_grad)


@method("new_tensor")
def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    """``gk.tensor(data)`` with this tensor's dtype and device (torch.Tensor.new_tensor)."""
    return creation.tensor(data, dtype=self.dtype if dtype is None else dtype,
                           device=self.device if device is None else device,
                           requires_grad=requires_grad)
