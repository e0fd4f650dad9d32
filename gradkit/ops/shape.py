"""Shape ops: views (reshape, permute, expand, ...), joins and splits (cat,
stack, split, chunk), flip and repeat; ``expand``'s VJP is ``sum_to``, the one
place broadcasting is undone."""
from ..dtypes import common_dtype_name
from ..errors import GradkitError
from ..graph import mode
from ..size import Size
from ..tensor import Tensor, const
from .core import apply, edge, edges_of, method, op, op_error, prim, record
from .dispatch import _device_error, _need_tensor, astype, clone, norm_dim, norm_dims


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


@op
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
    if len(neg) > 1 or known == 0 and neg or (
            not neg and known != n) or (neg and n % known) or _any_neg(shape):
        raise GradkitError(f"gradkit.reshape: shape {list(shape)} is invalid for an input of "
                           f"size {n} (shape {tuple(inshape)})")
    if neg:
        shape = tuple(n // known if s == -1 else s for s in shape)
    return apply(_reshape_vjp, x._B, (x,), (x.array,), {"shape": shape}, {"inshape": inshape})


def _any_neg(shape):
    for s in shape:
        if s < -1:
            return True
    return False


@op
def view(x, *shape):
    _need_tensor("view", x)
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and not hasattr(shape[0], "__index__"):
        return astype(x, shape[0])  # view(dtype) as a cast-free reinterpretation is not supported
    return reshape(x, *shape)


@op
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


@op
def unsqueeze(x, dim):
    _need_tensor("unsqueeze", x)
    nd = x.array.ndim
    d = norm_dim("unsqueeze", dim, nd + 1)
    shp = tuple(x.array.shape)
    return reshape(x, shp[:d] + (1,) + shp[d:])


@op
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


@op
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


@op(aliases=("swapaxes",))
def transpose(x, dim0, dim1):
    _need_tensor("transpose", x)
    nd = x.array.ndim
    d0, d1 = norm_dim("transpose", dim0, nd), norm_dim("transpose", dim1, nd)
    if nd < 2:
        return x
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(x, tuple(dims))


@op(public=False, method=False)  # Tensor.mT is a property (below)
def mT(x):
    return transpose(x, -2, -1)


@op
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


@op(aliases=("broadcast_to",))
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


@op(public=False)
def expand_as(x, other):
    _need_tensor("expand_as", other)
    return expand(x, other.shape)


@op(public=False, method=False)
def sum_to(x, shape):
    shape = tuple(shape)
    if tuple(x.array.shape) == shape:
        return x
    return apply(_sum_to_vjp, x._B, (x,), (x.array,), {"shape": shape},
                 {"inshape": tuple(x.array.shape)})


# ================================================================ cat / stack
@prim("cat", kernel=None)  # the kernel takes a list: _apply_cat runs it
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


@op(aliases=("concat", "concatenate"), method=False)
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
            target = common_dtype_name(names)
            tensors = [astype(u, target) for u in tensors]
    nd = tensors[0].array.ndim
    if nd == 0:
        raise GradkitError("gradkit.cat: zero-dimensional tensors cannot be concatenated")
    d = norm_dim("cat", dim, nd)
    for t_ in tensors[1:]:
        if t_.array.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(t_.array.shape, tensors[0].array.shape)) if i != d):
            raise GradkitError(
                f"gradkit.cat: sizes of tensors must match except in dim {d}; got shapes "
                + ", ".join(str(tuple(u.array.shape)) for u in tensors))
    names = {u.dtype_name for u in tensors}
    if len(names) > 1:
        target = common_dtype_name(names)
        tensors = [astype(u, target) for u in tensors]
    return _apply_cat(B, tensors, d)


def _apply_cat(B, tensors, d):
    # the kernel takes a list; the node has one edge per tensor
    arrays = [u.array for u in tensors]
    try:
        out = B.cat(arrays, d)
    except Exception as e:
        raise op_error("cat", tensors, e) from None
    t = const(B, out)
    if mode.enabled:
        edges = edges_of(tensors)
        if edges is not None:
            record(_cat_vjp, B, t, tensors, arrays, edges,
                   {"dim": d, "sizes": tuple(u.array.shape[d] for u in tensors)})
    return t


@op(method=False)
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


# ================================================================ shape
@prim("flip", view=True)
def _flip_vjp(F, n, g, dims=None):
    return (F.flip(g, dims),)


@op
def flip(x, dims):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.flip: expected a Tensor, got {type(x).__name__}")
    if isinstance(dims, int) or hasattr(dims, "__index__"):
        dims = (dims,)
    if not isinstance(dims, (tuple, list)):
        raise TypeError(f"gradkit.flip: dims must be an int or a tuple of ints, got "
                        f"{type(dims).__name__}")
    nd = x.array.ndim
    dims = tuple(norm_dim("flip", d, nd) for d in dims)
    if len(set(dims)) != len(dims):
        raise GradkitError(f"gradkit.flip: dim {dims} appears multiple times in the list of dims")
    if not dims or nd == 0:
        return clone(x)
    return apply(_flip_vjp, x._B, (x,), (x.array,), {"dims": dims})


@prim("repeat")
def _repeat_vjp(F, n, g, sizes=None, inshape=None):
    # out viewed as (r0, s0, r1, s1, ...): sum the r axes
    split = []
    for r, s in zip(sizes, inshape):
        split += [r, s]
    g = F.sum(F.reshape(g, tuple(split)), tuple(range(0, 2 * len(sizes), 2)), False)
    return (g,)


@op
def repeat(x, *sizes):
    _need_tensor("repeat", x)
    sizes = _shape_arg("repeat", sizes)
    nd = x.array.ndim
    if len(sizes) < nd:
        raise GradkitError(
            f"gradkit.repeat: number of dimensions of repeat dims ({len(sizes)}) can not be "
            f"smaller than the number of dimensions of the tensor ({nd}, shape {x.shape})")
    if any(s < 0 for s in sizes):
        raise GradkitError(f"gradkit.repeat: repeats must be non-negative, got {sizes}")
    inshape = (1,) * (len(sizes) - nd) + tuple(x.array.shape)
    if inshape != tuple(x.array.shape):
        x = reshape(x, inshape)
    return apply(_repeat_vjp, x._B, (x,), (x.array,), {"sizes": sizes}, {"inshape": inshape})


def _zeros_ns(B, ref, shape):
    """Zeros shaped ``shape`` like ``ref`` in its world (raw array or Tensor)."""
    if ref.__class__ is Tensor:
        return const(B, B.zeros(shape, ref.array.dtype))
    return B.zeros(shape, ref.dtype)


def _split_vjp_fn(F, n, gs, dim=None, sizes=None, backend=None):
    # a multi-output node gets a list of output gradients, None where none flowed
    if gs.__class__ is not list:
        gs = [gs]
    ref = next(g for g in gs if g is not None)
    shp = tuple(ref.shape)
    parts = [g if g is not None else _zeros_ns(backend, ref, shp[:dim] + (s,) + shp[dim + 1:])
             for g, s in zip(gs, sizes)]
    return (parts[0] if len(parts) == 1 else F.cat(parts, dim),)


_split_prim = prim("split", view=True, kernel=None)(_split_vjp_fn)  # _apply_split slices


@op
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
    d = norm_dim("split", dim, nd)
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


@op
def chunk(x, chunks, dim=0):
    """torch.chunk: pieces of size ceil(n / chunks) (so possibly fewer than
    ``chunks`` pieces)."""
    _need_tensor("chunk", x)
    if not isinstance(chunks, int) or chunks <= 0:
        raise GradkitError(f"gradkit.chunk: chunks must be a positive int, got {chunks!r}")
    nd = x.array.ndim
    if nd == 0:
        raise GradkitError("gradkit.chunk: a 0-d tensor cannot be chunked; it has no dims")
    d = norm_dim("chunk", dim, nd)
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
    # views: they share the input's version counter
    ts = [const(B, o, x._vc, True) for o in outs]
    if mode.enabled and x._rg:
        record(_split_prim, B, ts, (x,), (data,), [edge(x)],
               {"dim": d, "sizes": sizes, "backend": B})
    return tuple(ts)


@method("size")
def size(self, dim=None):
    s = tuple(self.array.shape)
    if dim is None:
        return Size(s)
    d = norm_dim("size", dim, len(s))
    if not s:
        raise IndexError(f"gradkit.size: dimension specified as {dim} but the tensor has "
                         "no dimensions")
    return s[d]


method("T", property(lambda self: permute(self, tuple(range(self.array.ndim - 1, -1, -1)))))
method("mT", property(mT))
