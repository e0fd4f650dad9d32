"""Primitives: forward, saved residuals and VJP side by side, in one table.

A primitive's forward is the backend kernel of the same name (``B.mul``); its
VJP is written once against a namespace ``F``: the engine passes the raw backend
on the fast path and this module (differentiable gradkit functions of the same
names) under ``create_graph``, so one formula serves both and any order.

VJP signature: ``vjp(F, needs, g, *saved, **params) -> tuple of input grads``
(None where ``needs[i]`` is False). ``save`` lists the input positions whose
values the VJP needs, ``out`` adds the output, ``res`` means the forward kernel
returns ``(out, residuals)`` and the residuals are saved too.
"""
import builtins

from ..autograd.graph import Node, mode
from ..tensor import Tensor, GradkitError, _new
from ..autograd.failures import out_of_memory

_PRIMS = {}


class Prim:
    __slots__ = ("name", "vjp", "save", "save_for", "out", "res", "view")

    def __init__(self, name, vjp, save=(), out=False, res=False, view=False, save_for=None):
        self.name = name
        self.vjp = vjp
        self.save = save
        # save_for[k]: the input whose gradient needs saved value k (None: any);
        # a value no needed gradient uses is neither kept nor version-checked
        self.save_for = save_for
        self.out = out
        self.res = res
        self.view = view

    def __repr__(self):
        return f"<prim {self.name}>"


def prim(name, save=(), out=False, res=False, view=False, save_for=None):
    """Register ``vjp`` as the VJP of the primitive ``name``."""
    def deco(vjp):
        p = Prim(name, vjp, save, out, res, view, save_for)
        _PRIMS[name] = p
        return p
    return deco


def prims():
    return dict(_PRIMS)


_SCALARS = (int, float, bool)


def _describe(args):
    parts = []
    for a in args:
        if type(a) is Tensor:
            parts.append(f"Tensor(shape={tuple(a.array.shape)}, dtype={a.dtype_name}, device={a._B.device_str})")
        elif isinstance(a, (list, tuple)) and a and type(a[0]) is Tensor:
            parts.append("[" + ", ".join(f"{tuple(t.array.shape)}" for t in a) + "]")
        else:
            parts.append(repr(a) if len(repr(a)) < 60 else type(a).__name__)
    return ", ".join(parts)


def op_error(name, args, e, hint=""):
    """Translate a backend exception into a gradkit error naming the op, the
    shapes, dtypes and devices; keep IndexError/TypeError types."""
    if isinstance(e, MemoryError):   # stays a MemoryError (except MemoryError works)
        return out_of_memory(name, _describe(args), e)
    if name == "sub" and isinstance(e, TypeError) and builtins.all(
            a.__class__ is not Tensor or a.array.dtype == a._B.bool_dtype
            for a in args):   # bool - bool: NumPy's wording is not torch's
        return GradkitError("gradkit.sub: subtraction, the `-` operator, with two bool tensors "
                            "is not supported; use `a != b` (logical xor) instead")
    msg = str(e).split("\n")[0]
    text = f"gradkit.{name}: {msg}; inputs: {_describe(args)}"
    if hint:
        text += f". {hint}"
    if isinstance(e, IndexError):
        return IndexError(text)
    if isinstance(e, TypeError):
        return TypeError(text)
    if isinstance(e, GradkitError):
        return e
    return GradkitError(text)


def apply(p, B, args, arrays, params=None, extra=None):
    """Run primitive ``p`` forward on raw ``arrays`` and record a node when an
    input requires grad. ``args`` are the original inputs (Tensors or Python
    constants), aligned with ``arrays``. ``params`` go to the forward kernel and
    the VJP, ``extra`` to the VJP only."""
    fwd = getattr(B, p.name)
    try:
        out = fwd(*arrays, **params) if params else fwd(*arrays)
    except Exception as e:
        raise op_error(p.name, args, e) from None
    res = None
    if p.res:
        out, res = out
    t = _new(Tensor)
    t.array = out
    t._B = B
    t._grad = None
    t._oi = 0
    t._hooks = None
    t._vc = args[0]._vc if p.view else [0]
    t._view = p.view
    if mode.enabled:
        edges = None
        for i, a in enumerate(args):
            if a.__class__ is Tensor and a._rg:
                if edges is None:
                    edges = [None] * len(args)
                fn = a.grad_fn
                edges[i] = (a if fn is None else fn, a._oi, a.array.shape, a.array.dtype)
        if edges is not None:
            if p.save_for is None:
                saved = tuple([arrays[i] for i in p.save])
                vers = tuple([(args[i]._vc, args[i]._vc[0]) for i in p.save
                              if args[i].__class__ is Tensor])
            else:
                saved, vers = _save_needed(p, args, arrays, edges)
            if p.out:
                saved += (out,)
                vers += ((t._vc, t._vc[0]),)
            if res is not None:
                saved += (res,)
            if extra is not None:
                params = {**params, **extra} if params else extra
            t.grad_fn = Node(p, B, params, saved, vers, edges,
                             tuple([e is not None for e in edges]))
            t._rg = True
            return t
    t.grad_fn = None
    t._rg = False
    return t


def apply_unary(p, x):
    """``apply`` specialised for a one-input, parameter-free elementwise
    primitive: the hot path of chains of small ops."""
    B = x._B
    xd = x.array
    try:
        out = getattr(B, p.name)(xd)
    except Exception as e:
        raise op_error(p.name, (x,), e) from None
    t = _new(Tensor)
    t.array = out
    t._B = B
    t._grad = None
    t._oi = 0
    t._hooks = None
    t._view = False
    vc = t._vc = [0]
    if x._rg and mode.enabled:
        fn = x.grad_fn
        edge = (x if fn is None else fn, x._oi, xd.shape, xd.dtype)
        if p.out:
            saved, vers = (out,), ((vc, 0),)
        elif p.save:
            xv = x._vc
            saved, vers = (xd,), ((xv, xv[0]),)
        else:
            saved = vers = ()
        t.grad_fn = Node(p, B, None, saved, vers, (edge,), _NEED1)
        t._rg = True
        return t
    t.grad_fn = None
    t._rg = False
    return t


_NEED1 = (True,)
_NEEDS2 = {(True, True): (True, True), (True, False): (True, False),
           (False, True): (False, True)}


def apply_binary(p, B, a, b, ad, bd):
    """``apply`` specialised for a two-input, parameter-free primitive whose
    operands are Tensors or Python scalars (already promoted and checked)."""
    try:
        out = getattr(B, p.name)(ad, bd)
    except Exception as e:
        raise op_error(p.name, (a, b), e) from None
    t = _new(Tensor)
    t.array = out
    t._B = B
    t._grad = None
    t._oi = 0
    t._hooks = None
    t._view = False
    vc = t._vc = [0]
    if mode.enabled:
        ra = a.__class__ is Tensor and a._rg
        rb = b.__class__ is Tensor and b._rg
        if ra or rb:
            if ra:
                fn = a.grad_fn
                ea = (a if fn is None else fn, a._oi, ad.shape, ad.dtype)
            else:
                ea = None
            if rb:
                fn = b.grad_fn
                eb = (b if fn is None else fn, b._oi, bd.shape, bd.dtype)
            else:
                eb = None
            edges = (ea, eb)
            save = p.save
            if not save:
                saved = vers = ()
            else:
                sf = p.save_for
                saved = []
                vers = []
                args = (a, b)
                arrays = (ad, bd)
                for k, i in enumerate(save):
                    if sf is None or sf[k] is None or edges[sf[k]] is not None:
                        saved.append(arrays[i])
                        x = args[i]
                        if x.__class__ is Tensor:
                            vers.append((x._vc, x._vc[0]))
                    else:
                        saved.append(None)
                if p.out:
                    saved.append(out)
                    vers.append((vc, 0))
            t.grad_fn = Node(p, B, None, saved, vers, edges, _NEEDS2[(ra, rb)])
            t._rg = True
            return t
    t.grad_fn = None
    t._rg = False
    return t


def _save_needed(p, args, arrays, edges):
    saved = []
    vers = []
    for i, f in zip(p.save, p.save_for):
        if f is None or edges[f] is not None:
            saved.append(arrays[i])
            a = args[i]
            if a.__class__ is Tensor:
                vers.append((a._vc, a._vc[0]))
        else:
            saved.append(None)
    return tuple(saved), tuple(vers)


def const(B, arr):
    """A Tensor that needs no grad, wrapping a raw array."""
    t = _new(Tensor)
    t.array = arr
    t._B = B
    t._grad = None
    t.grad_fn = None
    t._rg = False
    t._oi = 0
    t._hooks = None
    t._vc = [0]
    t._view = False
    return t
