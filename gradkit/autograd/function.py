"""``gk.autograd.Function``: custom ops with a user-written backward.

    class Exp(gk.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    y = Exp.apply(x)

``apply`` makes the same Node type as the built-in ops (one way to make a node,
docs/ARCHITECTURE.md): a per-class ``Prim`` whose VJP calls ``backward``, one
edge per input, ``nout`` outputs. So hooks, ``retain_grad``, version counters
of the saved tensors, ``retain_graph`` freeing and anomaly mode work unchanged.

- ``forward`` runs with grad disabled; it gets and returns Tensors (or other
  values, passed through).
- ``backward`` gets one gradient per output (zeros for outputs no gradient
  reached, unless ``ctx.set_materialize_grads(False)``) and returns one
  gradient (or None) per ``forward`` argument. It always gets Tensors: under
  ``create_graph=True`` they are connected to the graph (saved inputs are the
  inputs themselves, saved outputs are the outputs), so a backward written with
  gradkit ops is itself differentiable.
- Saved tensors are stored as raw arrays plus where they came from (no Tensor
  objects: an output saving itself would otherwise be a reference cycle), and
  their versions are checked before ``backward`` runs.
"""
import weakref

import functools

from ..graph import FREED as _FREED, Node, mode
from ..ops.core import Prim, edge
from ..tensor import Tensor, const
from .engine import reattach
from .grad_mode import no_grad

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` passed to ``forward`` and ``backward``. Any attribute may be
    set on it (non-tensor state for the backward)."""

    def __init__(self):
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._to_save = ()
        self._non_diff = ()
        self._dirty = ()
        self._saved = None
        self._node = None
        self._B = None

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and t.__class__ is not Tensor:
                raise TypeError(f"gradkit.autograd.Function: save_for_backward can only save "
                                f"Tensors (or None); argument {i} is a {type(t).__name__}. "
                                "Store other values as ctx attributes (ctx.k = 3)")
        self._to_save = tensors

    @property
    def saved_tensors(self):
        if self._saved is None:
            if self._node is not None and self._node() is not None and self._node().saved is _FREED:
                raise RuntimeError("gradkit: trying to backward through the graph a second time; "
                                   "pass retain_graph=True to the first backward")
            raise RuntimeError("gradkit.autograd.Function: ctx.saved_tensors is only available "
                               "inside backward")
        return self._saved

    def mark_non_differentiable(self, *outputs):
        self._non_diff = tuple(id(t) for t in outputs)

    def mark_dirty(self, *tensors):
        """Inputs that ``forward`` modified in place (and returns)."""
        self._dirty = tuple(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)


class _FunctionMeta(type):
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        # one primitive per Function class: the node's name is the class name
        # (the base class is made before _function_vjp exists and needs none)
        cls._prim = Prim(name, globals().get("_function_vjp"), kernel=None)


class Function(metaclass=_FunctionMeta):
    """Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``
    and call ``YourFunction.apply(*args)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("gradkit.autograd.Function: define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("gradkit.autograd.Function: define a static backward(ctx, "
                                  "*grads) returning one gradient per forward input")

    # torch 2 style: ``forward(*args)`` without ctx, then ``setup_context(ctx,
    # inputs, output)`` saves what backward needs. Used when a subclass defines it.
    setup_context = None

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        recording = mode.enabled
        needs = tuple(recording and a.__class__ is Tensor and a._rg for a in args)
        ctx.needs_input_grad = needs
        mode.enabled = False
        try:
            if cls.setup_context is None:
                result = cls.forward(ctx, *args, **kwargs)
            else:
                result = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, result)
        finally:
            mode.enabled = recording
        single = result.__class__ is not tuple
        outs = [result] if single else list(result)
        B = None
        for a in list(args) + outs:
            if a.__class__ is Tensor:
                B = a._B
                break
        ctx._B = B

        # outputs that are inputs: a new Tensor aliasing the input (as torch's
        # view), unless forward modified the input in place (mark_dirty)
        ins = {id(a): i for i, a in enumerate(args) if a.__class__ is Tensor}
        orig = list(outs)
        for k, o in enumerate(outs):
            if o.__class__ is Tensor and id(o) in ins and id(o) not in ctx._dirty:
                outs[k] = _alias(o)
        diff = [o.__class__ is Tensor and id(orig[k]) not in ctx._non_diff
                and o._B.is_floating(o.array.dtype) for k, o in enumerate(outs)]
        if not any(needs) or not any(diff):
            ctx._to_save = ()
            return outs[0] if single else tuple(outs)

        edges = [None] * len(args)
        for i, a in enumerate(args):
            if needs[i]:
                if id(a) in ctx._dirty and a.grad_fn is None:
                    raise RuntimeError(
                        f"gradkit.autograd.Function {cls.__name__}: a leaf tensor that requires "
                        "grad was modified in place in forward (mark_dirty); clone() it first")
                edges[i] = edge(a)
        meta = tuple((tuple(o.array.shape), o.array.dtype) if o.__class__ is Tensor else None
                     for o in outs)
        node = Node(cls._prim, B, {"ctx": ctx, "cls": cls, "meta": meta}, (), (), edges, needs,
                    len(outs))
        ctx._node = weakref.ref(node)
        for k, o in enumerate(outs):
            if diff[k]:
                o.grad_fn = node
                o._oi = k
                o._rg = True
                if id(o) in ctx._dirty:
                    o._vc[0] += 1

        # saved tensors: raw array + where it came from, and its version now
        out_pos = {id(o): k for k, o in enumerate(orig)}
        packed, vers = [], ()
        for t in ctx._to_save:
            if t is None:
                packed.append(None)
                continue
            k = out_pos.get(id(t))
            if k is not None and diff[k]:
                o = outs[k]
                packed.append((2, o.array, None, k))
                vers += (o._vc, o._vc[0])
                continue
            i = ins.get(id(t))
            if i is not None and edges[i] is not None:
                target, oi = edges[i][0], edges[i][1]
                if target.__class__ is Tensor:   # a leaf: held weakly (no cycle via .grad)
                    target = weakref.ref(target)
                packed.append((1, t.array, target, oi))
            else:
                packed.append((0, t.array, None, 0))
            vers += (t._vc, t._vc[0])
        node.saved = (tuple(packed),)
        node.vers = vers
        ctx._to_save = ()
        return outs[0] if single else tuple(outs)


def _alias(t):
    a = const(t._B, t.array, t._vc, True)
    a.grad_fn = t.grad_fn
    a._rg = t._rg
    a._oi = t._oi
    return a


def _unpack(packed, ctx, B, graph):
    """The saved tensors for ``backward``: plain constants on the fast path;
    under create_graph, connected to the graph where they came from."""
    out = []
    for e in packed:
        if e is None:
            out.append(None)
            continue
        kind, arr, target, oi = e
        if not graph or kind == 0:
            out.append(const(B, arr))
        else:
            out.append(reattach(B, arr, target if kind == 1 else ctx._node(), oi))
    return tuple(out)


def _function_vjp(F, needs, g, packed, ctx=None, cls=None, meta=None):
    """The VJP of every Function node: wraps gradients as Tensors, calls the
    user's backward, checks and unwraps what it returns. The engine turns
    grad mode on exactly when it runs with create_graph."""
    graph = mode.enabled
    B = ctx._B
    gs = g if g.__class__ is list else [g]
    grads = []
    for k, gk in enumerate(gs):
        if gk is None:
            m = meta[k]
            grads.append(const(B, B.zeros(*m)) if (m is not None and ctx.materialize_grads)
                         else None)
        else:
            grads.append(gk if gk.__class__ is Tensor else const(B, gk))
    ctx._saved = _unpack(packed, ctx, B, graph)
    try:
        res = cls.backward(ctx, *grads)
    finally:
        ctx._saved = None
    if res.__class__ is not tuple:
        res = (res,) if not isinstance(res, list) else tuple(res)
    n = len(needs)
    if len(res) < n or any(r is not None for r in res[n:]):
        raise RuntimeError(f"gradkit.autograd.Function {cls.__name__}.backward returned an "
                           f"incorrect number of gradients (expected {n}, got {len(res)}): one "
                           "per forward argument, None for those that need none")
    out = []
    for i in range(n):
        r = res[i]
        if r is None or not needs[i]:
            out.append(None)
            continue
        if r.__class__ is not Tensor:
            raise TypeError(f"gradkit.autograd.Function {cls.__name__}.backward returned a "
                            f"{type(r).__name__} for input {i}; return a Tensor or None")
        if r._B is not B:
            raise RuntimeError(f"gradkit.autograd.Function {cls.__name__}.backward returned a "
                               f"gradient on {r._B.device_str} for input {i}, expected "
                               f"{B.device_str}")
        out.append(r if graph else r.array)
    return tuple(out)


def once_differentiable(fn):
    """Marks a backward that is not itself differentiable: under create_graph
    its result is cut from the graph (it still gives first derivatives)."""
    @functools.wraps(fn)
    def wrapper(ctx, *grads):
        with no_grad():
            res = fn(ctx, *grads)
        return res
    return wrapper
