"""Indexing: ``x[idx]`` (basic indexing is a view; integer and boolean
arrays copy and scatter-add their gradient), gather and index_add."""
from ..errors import GradkitError
from ..graph import mode
from ..reliability import host_sync_violation
from ..tensor import Tensor, const
from . import bounds as _bounds
from .core import Prim, apply, method, op, prim
from .op_names import as_op
from .dispatch import _as_tensor_like, _device_error, _need_tensor, norm_dim
from .elementwise import add, mul
from .shape import reshape


def _mask_sync():
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


@op(public=False)
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
_getitem_adv = Prim("getitem", _getitem_vjp.vjp, view=False)  # registered as getitem above


@op(public=False, method=False)
def getitem_backward(g, shape, idx, advanced):
    return apply(_getitem_bwd_vjp, g._B, (g,), (g.array,),
                 {"shape": shape, "idx": idx, "advanced": advanced})


@op(public=False, method=False)
def index_zero(g, idx):
    return apply(_index_zero_vjp, g._B, (g,), (g.array,), {"idx": idx})


@prim("index_put")
def _index_put_vjp(F, n, g, idx=None, vshape=None):
    gx = F.index_zero(g, idx) if n[0] else None
    gv = F.getitem(g, idx) if n[1] else None
    return gx, gv


# ============================================================ indexing
def _index_tensor(name, index, ref):
    if index.__class__ is not Tensor:
        index = _as_tensor_like(index, ref, name)
    if index._B is not ref._B:
        raise _device_error(name, ref, index)
    B = index._B
    if not B.is_integral(index.array.dtype):
        raise GradkitError(f"gradkit.{name}: expected an integer index tensor (int64), got "
                           f"{index.dtype_name}")
    return index


@op
def gather(x, dim, index, *, sparse_grad=False):
    """torch.gather: ``out[i][j][k] = x[i][index[i][j][k]][k]`` for dim=1.
    A composition: advanced indexing with ``index`` along ``dim`` and aranges
    along the other dims, so the backward is the indexing's scatter-add."""
    _need_tensor("gather", x)
    index = _index_tensor("gather", index, x)
    nd = x.array.ndim
    d = norm_dim("gather", dim, nd)
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
        return getitem(reshape(x, (1,)), index)
    i64 = B.dtypes["int64"]
    idx = []
    for i, s in enumerate(ishape):
        if i == d:
            idx.append(index)
        else:
            ar = B.arange(0, s, 1, i64)
            idx.append(const(B, B.reshape(ar, tuple(s if j == i else 1 for j in range(nd)))))
    with as_op("gather"):
        return getitem(x, tuple(idx))


@op
def index_add(x, dim, index, source, *, alpha=1):
    """``x`` with ``alpha * source[..., i, ...]`` added at ``x[..., index[i], ...]``
    (repeated indices accumulate). A composition: the scatter is the
    differentiable ``getitem_backward`` (whose VJP is the gather back)."""
    if x.__class__ is not Tensor or source.__class__ is not Tensor:
        raise TypeError("gradkit.index_add: expected Tensor input and source")
    if source._B is not x._B:
        raise _device_error("index_add", x, source)
    index = _index_tensor("index_add", index, x)
    if index.array.ndim > 1:
        raise IndexError(f"gradkit.index_add: index must be 1-D, got shape {index.shape}")
    nd = x.array.ndim
    d = norm_dim("index_add", dim, nd)
    if source.array.dtype != x.array.dtype:
        raise GradkitError(f"gradkit.index_add: self ({x.dtype_name}) and source "
                           f"({source.dtype_name}) must have the same dtype")
    k = index.numel()
    n = x.array.shape[d] if nd else 1
    x._B.check_index(index.array, -n, n, "index_add")
    want = tuple(k if i == d else s for i, s in enumerate(x.array.shape))
    if nd == 0:
        x1 = index_add(reshape(x, (1,)), 0, reshape(index, (-1,)),
                       reshape(source, (-1,)), alpha=alpha)
        return reshape(x1, ())
    if tuple(source.array.shape) != want:
        raise GradkitError(f"gradkit.index_add: source shape {source.shape} must be the input's "
                           f"{x.shape} with dim {d} replaced by len(index)={k}, i.e. {want}")
    if alpha != 1:
        source = mul(source, alpha)
    idx = (slice(None),) * d + (reshape(index, (-1,)).array,)
    with as_op("index_add"):
        return add(x, getitem_backward(source, x.array.shape, idx, True))


method("__getitem__", getitem)
