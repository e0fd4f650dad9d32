"""Scaled dot-product attention as one primitive.

Forward (backend kernel ``sdpa``): ``P = softmax(q k^T * scale + mask)``,
``out = (P * drop) @ v``. The node saves q, k, v and P; the VJP reuses P and
recomputes nothing:

    dv = (P drop)^T g
    dP = (g v^T) drop
    dS = P (dP - rowsum(dP P)) * scale
    dq = dS k,  dk = dS^T q

Under ``create_graph`` the saved P would be a constant to the new graph, so
there (only) P is recomputed from the attached q and k with gradkit ops: the
same formula then differentiates again, to any order.
"""
import math

from ..creation import rand
from ..errors import GradkitError
from ..shapes import broadcast_shapes
from ..tensor import Tensor, const
from .compare import where
from .core import apply, prim
from .elementwise import add, mul
from .linalg import matmul
from .nnfused import softmax as _softmax
from .shape import expand, mT, reshape


def _probs(q, k, mask, scale, dead):
    """P as a differentiable function of q and k (Tensors)."""
    s = matmul(mul(q, scale), mT(k))
    if mask is not None:
        s = add(s, mask)
    if dead is None:
        return _softmax(s, s.ndim - 1)
    zero = const(q._B, q._B.zeros((), q.array.dtype))
    return where(dead, zero, _softmax(where(dead, zero, s), s.ndim - 1))


@prim("sdpa", save=(0, 1, 2), res=True)
def _sdpa_vjp(F, n, g, q, k, v, p, mask=None, scale=1.0, drop=None, dead=None):
    if g.__class__ is Tensor:   # create_graph: P must depend on q and k in the new graph
        B = g._B
        mask = None if mask is None else const(B, mask)
        drop = None if drop is None else const(B, drop)
        if q.requires_grad or k.requires_grad:
            p = _probs(q, k, mask, scale, None if dead is None else const(B, dead))
    pd = p if drop is None else F.mul(p, drop)
    gq = gk = gv = None
    if n[2]:
        gv = F.matmul(F.mT(pd), g)
    if n[0] or n[1]:
        dp = F.matmul(g, F.mT(v))
        if drop is not None:
            dp = F.mul(dp, drop)
        ds = F.mul(p, F.sub(dp, F.sum(F.mul(dp, p), (p.ndim - 1,), True)))
        ds = F.mul(ds, scale)
        if n[0]:
            gq = F.matmul(ds, k)
        if n[1]:
            gk = F.matmul(F.mT(ds), q)
    return gq, gk, gv


def _err(msg):
    return GradkitError(f"gradkit.nn.functional.scaled_dot_product_attention: {msg}")


def _additive_mask(B, attn_mask, is_causal, L, S, dtype):
    """The mask as an additive raw array (0 or -inf for a boolean mask, where
    True means "may attend", as torch), or None."""
    if is_causal:
        if attn_mask is not None:
            raise _err("pass either attn_mask or is_causal=True, not both")
        i = B.reshape(B.arange(0, L, 1, B.dtypes["int64"]), (L, 1))
        j = B.reshape(B.arange(0, S, 1, B.dtypes["int64"]), (1, S))
        allowed = B.ge(i, j)
        return B.where(allowed, B.zeros((), dtype), B.full((), -math.inf, dtype))
    if attn_mask is None:
        return None
    if attn_mask.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.functional.scaled_dot_product_attention: attn_mask must "
                        f"be a Tensor, got {type(attn_mask).__name__}")
    if attn_mask._B is not B:
        raise _err(f"attn_mask is on {attn_mask._B.device_str} but query is on "
                   f"{B.device_str}; move it with .to(device)")
    m = attn_mask.array
    if m.dtype == B.bool_dtype:
        return B.where(m, B.zeros((), dtype), B.full((), -math.inf, dtype))
    if m.dtype != dtype:
        if not B.is_floating(m.dtype):
            raise _err(f"attn_mask must be a bool or floating tensor, got {attn_mask.dtype_name}")
        m = B.astype(m, dtype)
    return m


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """Attention ``softmax(query @ key^T * scale + mask) @ value`` (torch's
    ``F.scaled_dot_product_attention``).

    query (..., L, E), key (..., S, E), value (..., S, Ev); leading dims
    broadcast. ``attn_mask``: bool (True = may attend) or float (added to the
    scores), broadcastable to (..., L, S); ``is_causal``: attend to positions
    ``j <= i`` only; ``dropout_p``: dropout on the attention weights (always
    applied when > 0, as torch; pass 0.0 in eval); ``scale`` defaults to
    ``1/sqrt(E)``. A row the mask hides entirely gets zero weights (output 0,
    no gradient), as torch. Returns (..., L, Ev) in the inputs' dtype, on their
    device.
    Differentiable in query, key and value (any order); the mask gets no
    gradient (torch's fused kernels give none either). One primitive whose
    backward reuses the saved probabilities. ``enable_gqa=True`` (grouped-query
    attention): query ``(..., Hq, L, E)``, key ``(..., H, S, E)`` and value
    ``(..., H, S, Ev)``, where H divides Hq; each key/value head serves Hq/H
    consecutive query heads (torch's ``repeat_interleave`` on dim -3), and its
    gradient sums over them.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn.functional.scaled_dot_product_attention: {name} must "
                            f"be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise _err(f"{name} must have at least 2 dims (..., seq, features), got shape "
                       f"{t.shape}")
    if enable_gqa:
        key, value = _share_heads(query, key, value)
    B = query._B
    for t in (key, value):
        if t._B is not B:
            raise _err(f"expected query, key and value on one device, got "
                       f"{B.device_str} and {t._B.device_str}")
    if not (query.dtype == key.dtype == value.dtype):
        raise _err(f"expected query, key and value to have the same dtype, got "
                   f"{query.dtype_name}, {key.dtype_name} and {value.dtype_name}")
    if not B.is_floating(query.array.dtype):
        raise _err(f"expected floating tensors, got {query.dtype_name}")
    E, L, S = query.shape[-1], query.shape[-2], key.shape[-2]
    if key.shape[-1] != E:
        raise _err(f"query's last dim ({E}) must equal key's ({key.shape[-1]}); shapes "
                   f"{query.shape} and {key.shape}")
    if value.shape[-2] != S:
        raise _err(f"key and value must have the same sequence length, got shapes "
                   f"{key.shape} and {value.shape}")
    if not 0.0 <= dropout_p <= 1.0:
        raise _err(f"dropout_p must be between 0 and 1, got {dropout_p}")
    dt = query.array.dtype
    mask = _additive_mask(B, attn_mask, is_causal, L, S, dt)
    sc = float(scale) if scale is not None else 1.0 / math.sqrt(E) if E else 1.0
    drop = None
    if dropout_p > 0.0:
        shape = tuple(_broadcast(query.shape[:-2], key.shape[:-2])) + (L, S)
        u = rand(*shape, dtype=query.dtype, device=query.device).array
        keep = 0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p)
        drop = B.mul(B.astype(B.ge(u, dropout_p), dt), keep)
    dead = None
    if mask is not None:
        dead = B.all(B.eq(mask, -math.inf), mask.ndim - 1, True)
        # on the host, skip the guard when no row is fully masked; elsewhere keep
        # it (reading the flag back would wait for the device)
        if B.type == "cpu" and not bool(B.any(dead)):
            dead = None
    return apply(_sdpa_vjp, B, (query, key, value), (query.array, key.array, value.array),
                 {"mask": mask, "scale": sc, "drop": drop, "dead": dead})


def _share_heads(query, key, value):
    """``enable_gqa``: repeat each key/value head Hq/H times along dim -3, as
    torch's ``repeat_interleave(Hq // H, -3)``, through expand + reshape (views
    on the forward pass; the backward sums each group)."""
    if min(query.ndim, key.ndim, value.ndim) < 3:
        raise _err(f"enable_gqa=True needs query, key and value with a heads dim (..., heads, "
                   f"seq, features), got shapes {query.shape}, {key.shape} and {value.shape}")
    hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
    if hk != hv or hk == 0 or hq % hk:
        raise _err(f"enable_gqa=True: key and value must have the same number of heads, "
                   f"dividing query's {hq}; got shapes {query.shape}, {key.shape} and "
                   f"{value.shape}")
    g = hq // hk
    if g == 1:
        return key, value

    def rep(t):
        lead, (s, e) = t.shape[:-3], t.shape[-2:]
        t = expand(reshape(t, lead + (hk, 1, s, e)), lead + (hk, g, s, e))
        return reshape(t, lead + (hq, s, e))
    return rep(key), rep(value)


def _broadcast(a, b):
    out = broadcast_shapes(a, b)
    if out is None:
        raise _err(f"batch dims {tuple(a)} and {tuple(b)} do not broadcast")
    return out
