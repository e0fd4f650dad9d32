"""``gk.func``: vjp, jvp, jacobian, hessian, hvp, vhp with the signatures and
return structures of ``torch.autograd.functional`` (``create_graph`` and
``strict`` included), plus ``batch_jacobian`` for functions of a batch.

- ``jvp`` uses the double-vjp trick: with ``u`` a dummy cotangent that requires
  grad, ``J^T u`` is linear in ``u`` and its vjp with ``v`` is ``J v``.
- ``jacobian`` is exact for every function: one backward per output element
  through one retained graph (``strategy='reverse-mode'``, torch's default), or
  one double-vjp pass per input element (``'forward-mode'``: cheaper when the
  inputs have fewer elements than the outputs). gradkit has no vmap, so
  ``vectorize=True`` is accepted and computes the same thing the same way.
- ``batch_jacobian(f, x)`` is the vectorized seed: for ``f`` that maps a batch
  to a batch row by row (row b of the output depends on row b of the inputs
  only: no batch norm, no mixing), a seed that selects output element j in
  *every* row at once gives ``d out[b, j] / d x[b]`` for all b in one backward.
  It costs one backward per element of an output *row*, not per element of
  the output, and returns the per-sample Jacobians (B, *out_row, *in_row): what
  ``torch.func.vmap(torch.func.jacrev(f))(x)`` gives. ``jacobian`` cannot use
  this seed on its own: whether f mixes rows is not visible from outside, and
  the seed would silently add the cross-row blocks together.
- ``hvp`` is the vjp of the gradient (v^T H, equal to H v: a Hessian of a
  twice-differentiable function is symmetric), one double backward.
"""
from .autograd.engine import grad as _grad
from .autograd.grad_mode import enable_grad
from .ops import functional as _f
from .ops.core import const
from .tensor import Tensor, GradkitError

__all__ = ["vjp", "jvp", "jacobian", "batch_jacobian", "hessian", "hvp", "vhp"]


# ---------------------------------------------------------------- helpers
def _as_tuple(x, arg, fn):
    if isinstance(x, Tensor):
        return False, (x,)
    if not isinstance(x, (tuple, list)):
        raise TypeError(f"gradkit.func.{fn}: the {arg} must be a Tensor or a tuple of Tensors, "
                        f"got {type(x).__name__}")
    for i, t in enumerate(x):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradkit.func.{fn}: the {arg} must be Tensors, but element {i} is "
                            f"a {type(t).__name__}")
    return True, tuple(x)


def _untuple(xs, was_tuple):
    return xs if was_tuple else xs[0]


def _prepare(inputs, create_graph, fn):
    """Inputs the function is differentiated at: detached copies that require
    grad, or (create_graph, input already requiring grad) an identity op on
    the input, so the result stays differentiable with respect to it."""
    out = []
    for i, x in enumerate(inputs):
        if not x._B.is_floating(x.array.dtype):
            raise GradkitError(f"gradkit.func.{fn}: input {i} is {x.dtype_name}; only floating "
                               "point inputs can be differentiated")
        if create_graph and x.requires_grad:
            out.append(_f.clone(x))
        else:
            out.append(x.detach().requires_grad_(True))
    return tuple(out)


def _finish(ts, create_graph):
    """What the caller gets back: detached unless create_graph."""
    if create_graph:
        return ts
    return tuple(None if t is None else t.detach() for t in ts)


def _check_outputs(outs, fn):
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradkit.func.{fn}: the function must return Tensors, but output "
                            f"{i} is a {type(o).__name__}")


def _check_v(vs, refs, what, fn):
    if len(vs) != len(refs):
        raise GradkitError(f"gradkit.func.{fn}: v has {len(vs)} tensors but the {what} has "
                           f"{len(refs)}")
    for i, (v, r) in enumerate(zip(vs, refs)):
        if tuple(v.shape) != tuple(r.shape):
            raise GradkitError(f"gradkit.func.{fn}: entry {i} of v has shape {v.shape} but the "
                               f"{what}'s entry {i} has shape {r.shape}")
        if v._B is not r._B:
            raise GradkitError(f"gradkit.func.{fn}: entry {i} of v is on {v._B.device_str}, the "
                               f"{what}'s on {r._B.device_str}")


def _vjp_raw(outs, ins, vs, create_graph, retain_graph=None):
    """grad of sum(v * out) w.r.t. ins; None where an input is unused. Outputs
    that do not require grad contribute nothing."""
    pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    if not pairs:
        return (None,) * len(ins)
    return _grad([o for o, _ in pairs], list(ins), grad_outputs=[v for _, v in pairs],
                 retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


def _fill(gs, refs, strict, msg):
    out = []
    for i, (g, r) in enumerate(zip(gs, refs)):
        if g is None:
            if strict:
                raise GradkitError(msg.format(i=i))
            g = _zeros(r)
        out.append(g)
    return tuple(out)


def _zeros(r):
    return const(r._B, r._B.zeros(tuple(r.array.shape), r.array.dtype))


_INDEPENDENT = ("gradkit.func: the output of the user-provided function is independent of "
                "input {i}; this is not allowed in strict mode")


# ------------------------------------------------------------------ vjp/jvp
def _v_or_ones(v, ts, what, name):
    """The vector ``v`` checked against ``ts``; None means ones, allowed only for
    a single one-element tensor (as torch.autograd.functional)."""
    if v is None:
        if len(ts) != 1 or ts[0].numel() != 1:
            whose = "the function returns" if what == "output" else "the input is"
            raise GradkitError(f"gradkit.func.{name}: v can only be None if {whose} a "
                               "single Tensor with a single element")
        return (const(ts[0]._B, ts[0]._B.ones(tuple(ts[0].shape), ts[0].array.dtype)),)
    _, vs = _as_tuple(v, "v", name)
    _check_v(vs, ts, what, name)
    return vs


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J). ``v`` may be None only for a single-element output."""
    with enable_grad():
        in_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
        ins = _prepare(ins, create_graph, "vjp")
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the function", "vjp")
        _check_outputs(outs, "vjp")
        vs = _v_or_ones(v, outs, "output", "vjp")
        gs = _vjp_raw(outs, ins, vs, create_graph)
        gs = _fill(gs, ins, strict, _INDEPENDENT)
    return _untuple(_finish(outs, create_graph), out_tuple), _untuple(_finish(gs, create_graph),
                                                                       in_tuple)


def _double_vjp(outs, ins):
    """The dummy cotangents u and J^T u (recorded, linear in u)."""
    us = tuple(_zeros(o).requires_grad_(True) for o in outs)
    gi = _vjp_raw(outs, ins, us, create_graph=True, retain_graph=True)
    return us, gi


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v) by the double-vjp trick. ``v`` may be None only for a
    single-element input."""
    with enable_grad():
        in_tuple, ins = _as_tuple(inputs, "inputs", "jvp")
        ins = _prepare(ins, create_graph, "jvp")
        vs = _v_or_ones(v, ins, "input", "jvp")
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the function", "jvp")
        _check_outputs(outs, "jvp")
        us, gi = _double_vjp(outs, ins)
        pairs = [(g, v) for g, v in zip(gi, vs) if g is not None and g.requires_grad]
        if pairs:
            res = _grad([g for g, _ in pairs], list(us), grad_outputs=[v for _, v in pairs],
                        create_graph=create_graph, allow_unused=True)
        else:
            res = (None,) * len(outs)
        res = _fill(res, outs, strict, _INDEPENDENT.replace("input {i}", "the inputs "
                                                            "(output {i})"))
    return _untuple(_finish(outs, create_graph), out_tuple), _untuple(_finish(res, create_graph),
                                                                       out_tuple)


# ---------------------------------------------------------------- jacobian
def _seeds(t):
    """One-hot cotangents for every element of t, as raw rows of an identity."""
    B = t._B
    n = t.numel()
    eye = B.eye(n, n, t.array.dtype)
    shape = tuple(t.array.shape)
    return [const(B, B.reshape(B.getitem(eye, j), shape)) for j in range(n)]


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d outputs / d inputs, shaped out.shape + in.shape; tuples as torch
    (a tuple of outputs gives a tuple over outputs of tuples over inputs)."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"gradkit.func.jacobian: strategy must be 'reverse-mode' or "
                         f"'forward-mode', got {strategy!r}")
    with enable_grad():
        in_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
        ins = _prepare(ins, create_graph, "jacobian")
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the function", "jacobian")
        _check_outputs(outs, "jacobian")
        if strategy == "reverse-mode":
            jac = _jacobian_reverse(outs, ins, create_graph, strict)
        else:
            jac = _jacobian_forward(outs, ins, create_graph, strict)
    jac = tuple(_finish(row, create_graph) for row in jac)
    if out_tuple:
        return tuple(_untuple(row, in_tuple) for row in jac)
    return _untuple(jac[0], in_tuple)


def _jacobian_reverse(outs, ins, create_graph, strict):
    jac = []
    for oi, o in enumerate(outs):
        per_in = [[] for _ in ins]
        for seed in _seeds(o):
            vs = [seed if k == oi else _zeros(ok) for k, ok in enumerate(outs)]
            gs = _vjp_raw(outs, ins, vs, create_graph, retain_graph=True)
            for i, g in enumerate(gs):
                if g is None and strict:
                    raise GradkitError(_INDEPENDENT.format(i=i))
                per_in[i].append(g if g is not None else _zeros(ins[i]))
        jac.append(tuple(_stack_or_empty(per_in[i], o, ins[i]) for i in range(len(ins))))
    return jac


def _stack_or_empty(rows, o, x):
    shape = tuple(o.shape) + tuple(x.shape)
    if not rows:
        return const(x._B, x._B.zeros(shape, x.array.dtype))
    return _f.reshape(_f.stack(rows), shape)


def _jacobian_forward(outs, ins, create_graph, strict):
    us, gi = _double_vjp(outs, ins)
    cols = [[[] for _ in ins] for _ in outs]       # cols[o][i]: J[o][i] e_j for each j
    for i, x in enumerate(ins):
        g = gi[i]
        for seed in _seeds(x):
            if g is None or not g.requires_grad:
                res = (None,) * len(outs)
            else:
                res = _grad([g], list(us), grad_outputs=[seed], retain_graph=True,
                            create_graph=create_graph, allow_unused=True)
            for oi, r in enumerate(res):
                if r is None and strict:
                    raise GradkitError(_INDEPENDENT.format(i=i))
                cols[oi][i].append(r if r is not None else _zeros(outs[oi]))
    jac = []
    for oi, o in enumerate(outs):
        row = []
        for i, x in enumerate(ins):
            c = cols[oi][i]
            if not c:
                row.append(const(x._B, x._B.zeros(tuple(o.shape) + tuple(x.shape), x.array.dtype)))
                continue
            # stacked columns: (in elements, *out shape) -> (*out shape, *in shape)
            st = _f.stack(c)
            nd = st.ndim
            st = _f.permute(st, tuple(range(1, nd)) + (0,)) if nd > 1 else st
            row.append(_f.reshape(st, tuple(o.shape) + tuple(x.shape)))
        jac.append(tuple(row))
    return jac


def batch_jacobian(func, inputs, create_graph=False, strict=False):
    """Per-sample Jacobians of a function of a batch: for every output and input
    shaped (B, ...), ``J[b] = d out[b] / d in[b]`` shaped ``(B, *out_row, *in_row)``.

    Assumes rows are independent (row b of each output depends only on row b of
    each input). One backward per element of an output row, each seeding that
    element in every row at once (the identity seed broadcast over the batch)."""
    with enable_grad():
        in_tuple, ins = _as_tuple(inputs, "inputs", "batch_jacobian")
        ins = _prepare(ins, create_graph, "batch_jacobian")
        out_tuple, outs = _as_tuple(func(*ins), "outputs of the function", "batch_jacobian")
        _check_outputs(outs, "batch_jacobian")
        nb = None
        for t in ins + outs:
            if t.ndim == 0 or (nb is not None and t.shape[0] != nb):
                raise GradkitError("gradkit.func.batch_jacobian: every input and output needs "
                                   "the same leading batch dim; got shapes "
                                   + ", ".join(str(u.shape) for u in ins + outs))
            nb = t.shape[0]
        jac = []
        for oi, o in enumerate(outs):
            B = o._B
            row_shape = tuple(o.shape[1:])
            m = 1
            for s in row_shape:
                m *= s
            eye = B.eye(m, m, o.array.dtype)
            per_in = [[] for _ in ins]
            for j in range(m):
                row = B.reshape(B.getitem(eye, j), (1,) + row_shape)
                seed = const(B, B.copy(B.expand(row, tuple(o.shape))))
                vs = [seed if k == oi else _zeros(ok) for k, ok in enumerate(outs)]
                gs = _vjp_raw(outs, ins, vs, create_graph, retain_graph=True)
                for i, g in enumerate(gs):
                    if g is None and strict:
                        raise GradkitError(_INDEPENDENT.format(i=i))
                    per_in[i].append(g if g is not None else _zeros(ins[i]))
            res = []
            for i, x in enumerate(ins):
                st = _f.stack(per_in[i], 1)          # (B, m, *in_row)
                res.append(_f.reshape(st, (nb,) + row_shape + tuple(x.shape[1:])))
            jac.append(_finish(tuple(res), create_graph))
    if out_tuple:
        return tuple(_untuple(r, in_tuple) for r in jac)
    return _untuple(jac[0], in_tuple)


# ----------------------------------------------------------------- hessian
def _scalar_output(func, fn):
    def f(*xs):
        out = func(*xs)
        is_tuple, outs = _as_tuple(out, "outputs of the function", fn)
        if len(outs) != 1:
            raise GradkitError(f"gradkit.func.{fn}: the function must return a single Tensor, "
                               f"got {len(outs)}")
        if outs[0].numel() != 1:
            raise GradkitError(f"gradkit.func.{fn}: the function must return a single-element "
                               f"Tensor, got shape {outs[0].shape}")
        return outs[0]
    return f


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """Second derivatives of a scalar function: in.shape + in.shape (a tuple of
    tuples for a tuple of inputs)."""
    f = _scalar_output(func, "hessian")
    is_tuple, _ = _as_tuple(inputs, "inputs", "hessian")

    def grad_fn(*xs):
        return jacobian(f, xs if is_tuple else xs[0], create_graph=True, strict=strict)

    return jacobian(grad_fn, inputs, create_graph=create_graph, strict=strict,
                    vectorize=vectorize, strategy=outer_jacobian_strategy)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a scalar function."""
    f = _scalar_output(func, "vhp")
    with enable_grad():
        in_tuple, ins = _as_tuple(inputs, "inputs", "vhp")
        ins = _prepare(ins, create_graph, "vhp")
        vs = _v_or_ones(v, ins, "input", "vhp")
        out = f(*ins)
        gs = _grad([out], list(ins), create_graph=True, allow_unused=True)
        if strict and any(g is None for g in gs):
            i = [k for k, g in enumerate(gs) if g is None][0]
            raise GradkitError(_INDEPENDENT.format(i=i))
        pairs = [(g, v) for g, v in zip(gs, vs) if g is not None and g.requires_grad]
        if pairs:
            res = _grad([g for g, _ in pairs], list(ins), grad_outputs=[v for _, v in pairs],
                        create_graph=create_graph, allow_unused=True)
        else:
            res = (None,) * len(ins)
        res = _fill(res, ins, strict, "gradkit.func: the gradient with respect to input {i} is "
                    "independent of the inputs; this is not allowed in strict mode")
    return _finish((out,), create_graph)[0], _untuple(_finish(res, create_graph), in_tuple)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a scalar function (H is symmetric: v^T H)."""
    return vhp(func, inputs, v, create_graph=create_graph, strict=strict)
