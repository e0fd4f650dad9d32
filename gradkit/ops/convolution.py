"""Convolution and max-pooling primitives (forward kernels: ``backends/conv.py``).

Six primitives whose VJPs are each other (``conv_fwd`` is ``conv`` that can keep
its im2col for the weight's gradient; the kernel ``conv`` is its plain output), so any-order derivatives need no
extra code (the bilinear identity ``<conv(x, w), g> = <x, conv_input_grad(g, w)>
= <w, conv_weight_grad(x, g)>`` gives every VJP):

    conv_fwd(x, w)           -> dx: conv_input_grad(g, w)    dw: conv_weight_grad(x, g)
    conv_input_grad(g, w)    -> dg: conv(h, w)               dw: conv_weight_grad(h, g)
    conv_weight_grad(x, g)   -> dx: conv_input_grad(g, h)    dg: conv(x, h)
    max_pool(x)              -> dx: pool_scatter(g, idx)
    pool_scatter(g, idx)     -> dg: pool_gather(h, idx)
    pool_gather(x, idx)      -> dx: pool_scatter(h, idx)

Arguments are pre-checked by ``gradkit.nn.functional``'s public ops: ``stride``
and ``dilation`` one int per spatial dim, ``padding`` one ``(lo, hi)`` pair per
spatial dim. Each is registered with ``@op`` (not public: ``gk.nn.functional`` has the user-facing
forms), so VJPs reach them as ``F.<name>``.
"""
from ..graph import mode
from ..tensor import Tensor, const
from .core import apply, op, op_error, prim


@prim("conv_fwd", save=(0, 1), save_for=(1, 0), res=True)
def _conv_vjp(F, n, g, x, w, *cols, stride=None, padding=None, dilation=None, groups=1,
              keep=False, xshape=None, wshape=None):
    # cols: the forward's im2col, kept when the weight needs a gradient; only the
    # fast path reuses it (under create_graph the weight's gradient must be a
    # differentiable function of x)
    gx = F.conv_input_grad(g, w, stride, padding, dilation, groups, xshape) if n[0] else None
    gw = None
    if n[1]:
        if cols and g.__class__ is not Tensor:
            gw = F.conv_weight_grad(x, g, stride, padding, dilation, groups, wshape, cols[0])
        else:
            gw = F.conv_weight_grad(x, g, stride, padding, dilation, groups, wshape)
    return gx, gw


@prim("conv_input_grad", save=(0, 1), save_for=(1, 0))
def _conv_input_grad_vjp(F, n, h, g, w, stride=None, padding=None, dilation=None, groups=1,
                         in_shape=None, wshape=None):
    gg = F.conv(h, w, stride, padding, dilation, groups) if n[0] else None
    gw = F.conv_weight_grad(h, g, stride, padding, dilation, groups, wshape) if n[1] else None
    return gg, gw


@prim("conv_weight_grad", save=(0, 1), save_for=(1, 0))
def _conv_weight_grad_vjp(F, n, h, x, g, stride=None, padding=None, dilation=None, groups=1,
                          w_shape=None, xshape=None):
    gx = F.conv_input_grad(g, h, stride, padding, dilation, groups, xshape) if n[0] else None
    gg = F.conv(x, h, stride, padding, dilation, groups) if n[1] else None
    return gx, gg


def _geom(stride, padding, dilation, groups):
    return {"stride": tuple(stride), "padding": tuple(tuple(p) for p in padding),
            "dilation": tuple(dilation), "groups": int(groups)}


@op(public=False, method=False)
def conv(x, w, stride, padding, dilation, groups):
    """Cross-correlation of ``x`` (N, C, *S) with ``w`` (O, C/groups, *K)."""
    p = _geom(stride, padding, dilation, groups)
    p["keep"] = bool(mode.enabled and w._rg)   # keep the im2col for the weight's gradient
    return apply(_conv_vjp, x._B, (x, w), (x.array, w.array), p,
                 {"xshape": tuple(x.array.shape), "wshape": tuple(w.array.shape)})


@op(public=False, method=False)
def conv_input_grad(g, w, stride, padding, dilation, groups, in_shape):
    """The adjoint of ``conv`` in its input (the transposed convolution)."""
    p = _geom(stride, padding, dilation, groups)
    p["in_shape"] = tuple(in_shape)
    return apply(_conv_input_grad_vjp, g._B, (g, w), (g.array, w.array), p,
                 {"wshape": tuple(w.array.shape)})


@op(public=False, method=False)
def conv_weight_grad(x, g, stride, padding, dilation, groups, w_shape, cols=None):
    """The adjoint of ``conv`` in its weight (``cols``: a raw-kernel argument only;
    the differentiable form always rebuilds the im2col from ``x``)."""
    p = _geom(stride, padding, dilation, groups)
    p["w_shape"] = tuple(w_shape)
    return apply(_conv_weight_grad_vjp, x._B, (x, g), (x.array, g.array), p,
                 {"xshape": tuple(x.array.shape)})


@prim("max_pool", res=True)
def _max_pool_vjp(F, n, g, idx, kernel=None, stride=None, padding=None, dilation=None,
                  in_shape=None, overlap=True):
    return (F.pool_scatter(g, idx, in_shape, overlap),)


@prim("pool_scatter", save=(1,))
def _pool_scatter_vjp(F, n, h, idx, in_shape=None, overlap=True):
    return (F.pool_gather(h, idx) if n[0] else None), None


@prim("pool_gather", save=(1,))
def _pool_gather_vjp(F, n, h, idx, in_shape=None, overlap=True):
    return (F.pool_scatter(h, idx, in_shape, overlap) if n[0] else None), None


@op(public=False, method=False)
def max_pool(x, kernel, stride, padding, dilation):
    """(values, int64 flat indices into each input plane) of max pooling."""
    K, S, D = tuple(kernel), tuple(stride), tuple(dilation)
    P = tuple(tuple(p) for p in padding)
    B = x._B
    if not (mode.enabled and x._rg):  # no graph: the values and indices, as constants
        try:
            v, idx = B.max_pool(x.array, K, S, P, D)
        except Exception as e:
            raise op_error("max_pool", (x,), e) from None
        return const(B, v), const(B, idx)
    overlap = any(s < d * (k - 1) + 1 for k, s, d in zip(K, S, D))
    v = apply(_max_pool_vjp, B, (x,), (x.array,),
              {"kernel": K, "stride": S, "padding": P, "dilation": D},
              {"in_shape": tuple(x.array.shape), "overlap": overlap})
    return v, const(B, v.grad_fn.saved[-1])


@op(public=False, method=False)
def pool_scatter(g, idx, in_shape, overlap=True):
    i = idx.array if idx.__class__ is Tensor else idx
    return apply(_pool_scatter_vjp, g._B, (g, idx), (g.array, i),
                 {"in_shape": tuple(in_shape), "overlap": overlap})


@op(public=False, method=False)
def pool_gather(x, idx):
    i = idx.array if idx.__class__ is Tensor else idx
    return apply(_pool_gather_vjp, x._B, (x, idx), (x.array, i), None,
                 {"in_shape": tuple(x.array.shape), "overlap": True})
