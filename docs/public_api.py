"""Every public name of gradkit, by module: what the API reference lists and what
``tests/test_docs.py`` requires a docstring for. One list, used by both."""
import importlib
import inspect

# (module, title) in the order the reference shows them; optional ones may be absent
MODULES = [
    ("gradkit", "Tensors, creation and ops (gradkit)"),
    ("gradkit.autograd", "Autograd (gradkit.autograd)"),
    ("gradkit.func", "Function transforms (gradkit.func)"),
    ("gradkit.nn", "Layers (gradkit.nn)"),
    ("gradkit.nn.functional", "Functional layers (gradkit.nn.functional)"),
    ("gradkit.nn.init", "Initialisation (gradkit.nn.init)"),
    ("gradkit.nn.utils", "Utilities (gradkit.nn.utils)"),
    ("gradkit.nn.parallel", "Data parallel (gradkit.nn.parallel)"),
    ("gradkit.optim", "Optimizers (gradkit.optim)"),
    ("gradkit.optim.lr_scheduler", "Learning-rate schedules (gradkit.optim.lr_scheduler)"),
    ("gradkit.utils.data", "Data loading (gradkit.utils.data)"),
    ("gradkit.distributed", "Distributed (gradkit.distributed)"),
    ("gradkit.cuda", "CUDA (gradkit.cuda)"),
    ("gradkit.viz", "Graph pictures (gradkit.viz)"),
]
# classes whose public methods are part of the API (not only the class itself)
METHOD_CLASSES = ["gradkit.Tensor", "gradkit.nn.Module", "gradkit.optim.Optimizer"]


def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def names(modname):
    """The public names of one module: ``__all__`` when it has one, else every
    public attribute defined in gradkit that is not a module or a constant."""
    mod = _module(modname)
    if mod is None:
        return []
    listed = getattr(mod, "__all__", None)
    out = []
    for n in (listed if listed is not None else dir(mod)):
        if n.startswith("_") or not hasattr(mod, n):
            continue
        obj = getattr(mod, n)
        if inspect.ismodule(obj) or not (callable(obj) or isinstance(obj, property)):
            continue
        if not getattr(obj, "__module__", "").startswith("gradkit"):
            continue
        out.append(n)
    return sorted(set(out))


def modules():
    """[(module name, title)] for the modules that import here."""
    return [(m, t) for m, t in MODULES if _module(m) is not None]


def methods(clsname):
    """Public methods and properties a class defines itself (inherited ones excluded)."""
    modname, _, cname = clsname.rpartition(".")
    cls = getattr(_module(modname), cname, None)
    if cls is None:
        return []
    return sorted(n for n, v in vars(cls).items()
                  if not n.startswith("_") and (callable(v) or isinstance(v, (property, staticmethod,
                                                                            classmethod))
                                                or type(v).__name__ == "member_descriptor"))


def undocumented():
    """'module.name' for each public name without a docstring."""
    miss = []
    for m, _ in modules():
        mod = _module(m)
        for n in names(m):
            if not (inspect.getdoc(getattr(mod, n)) or "").strip() or \
                    (inspect.isclass(getattr(mod, n)) and not (getattr(mod, n).__doc__ or "").strip()):
                miss.append(f"{m}.{n}")
    for c in METHOD_CLASSES:
        modname, _, cname = c.rpartition(".")
        cls = getattr(_module(modname), cname, None)
        for n in methods(c):
            v = vars(cls)[n]
            if type(v).__name__ == "member_descriptor":
                # a slot cannot carry a docstring: the class's Attributes section describes it
                doc = n if f"\n    {n}: " in (cls.__doc__ or "") else None
            else:
                doc = v.__doc__ if isinstance(v, property) else getattr(getattr(cls, n), "__doc__", None)
            if not (doc or "").strip():
                miss.append(f"{c}.{n}")
    return miss
