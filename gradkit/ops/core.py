"""The op registry and the one recording path.

A primitive is one block: ``@prim`` declares its kernel (the backend method of
that name), the residuals it saves and, below it, its VJP, written once against
a namespace ``F``: the engine passes the raw backend on the fast path and
``gradkit.ops.functional`` (differentiable functions of the same names) under
``create_graph``, so one formula serves both and any order.

VJP signature: ``vjp(F, needs, g, *saved, **params) -> tuple of input grads``
(None where ``needs[i]`` is False). ``save`` lists the input positions whose
values the VJP needs, ``out`` adds the output, ``res`` means the forward kernel
returns ``(out, residuals)`` and the residuals are saved too.

Public functions register with ``@op``: one entry gives the function form
(``gk.<name>``), the method form (``Tensor.<name>``, the same function object)
and the name in ``F``. ``install_methods`` puts the method table on Tensor, once.
"""
from ..errors import GradkitError
from ..failures import out_of_memory
from ..graph import QUIET, Node, creation_site, mode, next_seq
from ..tensor import Tensor, const, _new

PRIMS = {}      # name -> Prim
PUBLIC = {}     # gk.<name> -> function
METHODS = {}    # Tensor.<name> -> function (or property)
NAMESPACE = {}  # F.<name> -> function: what a VJP may call under create_graph
RAW_ONLY = set()  # F.<name> a VJP calls only on raw arrays (a backend kernel, no F twin)


class Prim:
    __slots__ = ("name", "vjp", "kernel", "save", "save_for", "out", "res", "view", "dvjp")

    def __init__(self, name, vjp, save=(), out=False, res=False, view=False, save_for=None,
                 kernel=""):
        self.name = name
        self.vjp = vjp
        # the backend method that runs the forward (None: the op computes it itself)
        self.kernel = name if kernel == "" else kernel
        self.save = save
        # save_for[k]: the input whose gradient needs saved value k (None: any);
        # a value no needed gradient uses is neither kept nor version-checked
        self.save_for = save_for
        self.out = out
        self.res = res
        self.view = view
        # (fn, wants_g, wants_saved) from @donating, or None: see ``donating``
        self.dvjp = None

    def __repr__(self):
        return f"<prim {self.name}>"


def prim(name, save=(), out=False, res=False, view=False, save_for=None, kernel=""):
    """Register the decorated ``vjp`` as the VJP of the primitive ``name``."""
    def deco(vjp):
        if name in PRIMS:
            raise RuntimeError(f"gradkit: primitive {name!r} is registered twice "
                               f"({PRIMS[name].vjp.__module__} and {vjp.__module__})")
        p = Prim(name, vjp, save, out, res, view, save_for, kernel)
        PRIMS[name] = p
        return p
    return deco


def donating(p, grad=False, saved=False):
    """Give primitive ``p`` a second, donating VJP for the engine's raw path
    (no ``create_graph``; gradients of at least the backend's ``donate_min``
    elements, which only the NumPy backend sets):
    ``fn(B, needs, g, g_free, saved_free, *saved, **params)``. ``g_free``: the
    incoming gradient array may be overwritten (nothing but the engine holds it);
    ``saved_free``: so may every saved array (the backward frees them after this
    VJP and nothing else holds them). ``grad`` / ``saved`` say which of the two the
    function uses, so the engine checks only those. The result must be
    bit-identical to ``p.vjp``'s: donation only saves the fresh buffers (on the
    CPU a fresh output costs a read for ownership of every cache line it writes;
    hand-written NumPy works in place)."""
    def deco(fn):
        if p.dvjp is not None:
            raise RuntimeError(f"gradkit: primitive {p.name!r} has two donating VJPs")
        p.dvjp = (fn, bool(grad), bool(saved))
        return fn
    return deco


def raw_only(*names):
    """Declare kernels a VJP calls as ``F.<name>`` only on the raw path (it
    branches to a composition under create_graph): checked on every backend,
    not looked up in the differentiable namespace."""
    RAW_ONLY.update(names)


def op(fn=None, *, name=None, aliases=(), method=True, public=True, namespace=True):
    """Register an op: ``F.<name>`` (unless ``namespace=False``: torch's public
    signature differs from the kernel-shaped one VJPs call, e.g. ``where``),
    ``gk.<name>`` when ``public``, ``Tensor.<name>`` when ``method`` (the same
    function object: no extra call frame). ``name`` overrides the function's
    own (a module that defines ``sum`` would otherwise shadow the builtin it
    also uses)."""
    def deco(f):
        n = name or f.__name__
        f.__name__ = f.__qualname__ = n
        for k in (n,) + tuple(aliases):
            if k in (NAMESPACE if namespace else PUBLIC):
                raise RuntimeError(f"gradkit: op {k!r} is registered twice "
                                   f"({f.__module__})")
            if namespace:
                NAMESPACE[k] = f
            if public:
                PUBLIC[k] = f
            if method:
                _add_method(k, f)
        return f
    return deco(fn) if fn is not None else deco


def method(name, fn=None):
    """Register a method form that is not the function itself (reflected
    operators, properties, conversions)."""
    def deco(f):
        _add_method(name, f)
        return f
    return deco(fn) if fn is not None else deco


def _add_method(name, f):
    if name in METHODS:
        raise RuntimeError(f"gradkit: Tensor.{name} is registered twice")
    METHODS[name] = f


def install_methods():
    """Put the method table on Tensor (called once, by ``gradkit/__init__``)."""
    for name, f in METHODS.items():
        setattr(Tensor, name, f)


# ---------------------------------------------------------------- errors
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
    if name == "sub" and isinstance(e, TypeError) and all(
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


# ------------------------------------------------------------- recording
# Shape tuples kept in edges, shared: an array's ``.shape`` is a new tuple on
# every call, and one per edge was ~10% of a recorded graph's bytes (the shared
# one also stays in cache for the engine's shape check). Bounded: a program
# with ever new shapes stops interning, it never grows without limit.
_SHAPES = {}
_MAX_SHAPES = 4096


def _intern(shape):
    if len(_SHAPES) < _MAX_SHAPES:
        _SHAPES[shape] = shape
    return shape


def edge(t):
    """The edge to a tensor that requires grad: its producing node (or the
    leaf itself), its output index, and its shape and dtype (for the engine's
    one place that undoes broadcasting and casting)."""
    fn = t.grad_fn
    a = t.array
    sh = a.shape
    return (t if fn is None else fn, t._oi, _SHAPES.get(sh) or _intern(sh), a.dtype)


def edges_of(args):
    """One edge per input (None where no gradient is needed), or None when no
    input requires grad."""
    edges = None
    for i, a in enumerate(args):
        if a.__class__ is Tensor and a._rg:
            if edges is None:
                edges = [None] * len(args)
            edges[i] = edge(a)
    return edges


def record(p, B, outs, args, arrays, edges, params=None, res=None):
    """The one recording path: a Node for ``outs`` (one Tensor, or a list for a
    multi-output op) with the residuals ``p`` declared. The fast paths below
    inline the common cases of this function and honour the same flags
    (``res`` and ``view`` excepted: tests/test_registry.py checks that no such
    primitive reaches them)."""
    if p.save_for is None:
        saved = tuple([arrays[i] for i in p.save])
        vers = ()
        for i in p.save:
            if args[i].__class__ is Tensor:
                vers += (args[i]._vc, args[i]._vc[0])
    else:
        saved, vers = _save_needed(p, args, arrays, edges)
    multi = outs.__class__ is list
    if p.out:
        t = outs[0] if multi else outs
        saved += (t.array,)
        vers += (t._vc, t._vc[0])
    if res is not None:
        saved += (res,)
    node = Node(p, B, params, saved, vers, edges, tuple([e is not None for e in edges]),
                len(outs) if multi else 1)
    for k, t in enumerate(outs if multi else (outs,)):
        t.grad_fn = node
        t._oi = k
        t._rg = True
    return node


def _save_needed(p, args, arrays, edges):
    saved = []
    vers = ()
    for i, f in zip(p.save, p.save_for):
        if f is None or edges[f] is not None:
            saved.append(arrays[i])
            a = args[i]
            if a.__class__ is Tensor:
                vers += (a._vc, a._vc[0])
        else:
            saved.append(None)
    return tuple(saved), vers


def apply(p, B, args, arrays, params=None, extra=None):
    """Run primitive ``p`` forward on raw ``arrays`` and record a node when an
    input requires grad. ``args`` are the original inputs (Tensors or Python
    constants), aligned with ``arrays``. ``params`` go to the forward kernel and
    the VJP, ``extra`` to the VJP only."""
    fwd = getattr(B, p.kernel)
    try:
        out = fwd(*arrays, **params) if params else fwd(*arrays)
    except Exception as e:
        raise op_error(p.name, args, e) from None
    res = None
    if p.res:
        out, res = out
    t = const(B, out, args[0]._vc if p.view else None, p.view)
    if mode.enabled:
        edges = edges_of(args)
        if edges is not None:
            if extra is not None:
                params = {**params, **extra} if params else extra
            record(p, B, t, args, arrays, edges, params, res)
    return t


def apply_unary(p, x):
    """``apply`` specialised for a one-input, parameter-free, non-view
    primitive: the hot path of chains of small ops (``save`` and ``out``
    honoured; tests/test_registry.py checks what reaches it)."""
    B = x._B
    xd = x.array
    try:
        out = getattr(B, p.kernel)(xd)
    except Exception as e:
        raise op_error(p.name, (x,), e) from None
    t = _new(Tensor)   # const(B, out), inlined: one call less per op
    t.array = out
    t._B = B
    t._grad = None
    t._oi = 0
    t._hooks = None
    t._view = False
    vc = t._vc = [0]
    if x._rg and (QUIET[0] or mode.enabled):
        fn = x.grad_fn
        sh = xd.shape
        e = (x if fn is None else fn, x._oi, _SHAPES.get(sh) or _intern(sh), xd.dtype)
        if p.out:
            if p.save:
                xv = x._vc
                saved, vers = (xd, out), (xv, xv[0], vc, 0)
            else:
                saved, vers = (out,), (vc, 0)
        elif p.save:
            xv = x._vc
            saved, vers = (xd,), (xv, xv[0])
        else:
            saved = vers = ()
        n = _new(Node)   # Node(p, B, None, saved, vers, (e,), _NEED1), inlined
        n.p = p
        n.B = B
        n.params = None
        n.saved = saved
        n.vers = vers
        n.edges = (e,)
        n.needs = _NEED1
        n.seq = next_seq()
        n.hooks = None
        n.nout = 1
        n.site = None if QUIET[0] or not mode.anomaly else creation_site()
        t.grad_fn = n
        t._rg = True
        return t
    t.grad_fn = None
    t._rg = False
    return t


_NEED1 = (True,)
_NEEDS2 = {(True, True): (True, True), (True, False): (True, False),
           (False, True): (False, True)}


def apply_binary(p, B, a, b, ad, bd):
    """``apply`` specialised for a two-input, parameter-free, non-view primitive
    whose operands are Tensors or Python scalars (already promoted and checked);
    ``save``, ``save_for`` and ``out`` honoured."""
    try:
        out = getattr(B, p.kernel)(ad, bd)
    except Exception as e:
        raise op_error(p.name, (a, b), e) from None
    t = _new(Tensor)   # const(B, out), inlined
    t.array = out
    t._B = B
    t._grad = None
    t._oi = 0
    t._hooks = None
    t._view = False
    vc = t._vc = [0]
    if QUIET[0] or mode.enabled:
        ra = a.__class__ is Tensor and a._rg
        rb = b.__class__ is Tensor and b._rg
        if ra or rb:
            if ra:
                fn = a.grad_fn
                sh = ad.shape
                ea = (a if fn is None else fn, a._oi, _SHAPES.get(sh) or _intern(sh), ad.dtype)
            else:
                ea = None
            if rb:
                fn = b.grad_fn
                sh = bd.shape
                eb = (b if fn is None else fn, b._oi, _SHAPES.get(sh) or _intern(sh), bd.dtype)
            else:
                eb = None
            edges = (ea, eb)
            save = p.save
            if not save and not p.out:
                saved = vers = ()
            else:
                sf = p.save_for
                saved = vers = ()   # tuples: a tuple of arrays leaves the collector's lists
                args = (a, b)
                arrays = (ad, bd)
                for k, i in enumerate(save):
                    if sf is None or sf[k] is None or edges[sf[k]] is not None:
                        saved += (arrays[i],)
                        x = args[i]
                        if x.__class__ is Tensor:
                            vers += (x._vc, x._vc[0])
                    else:
                        saved += (None,)
                if p.out:
                    saved += (out,)
                    vers += (vc, 0)
            n = _new(Node)   # Node(p, B, None, saved, vers, edges, needs), inlined
            n.p = p
            n.B = B
            n.params = None
            n.saved = saved
            n.vers = vers
            n.edges = edges
            n.needs = _NEEDS2[(ra, rb)]
            n.seq = next_seq()
            n.hooks = None
            n.nout = 1
            n.site = None if QUIET[0] or not mode.anomaly else creation_site()
            t.grad_fn = n
            t._rg = True
            return t
    t.grad_fn = None
    t._rg = False
    return t
