"""``Module`` and ``Parameter``.

A parameter is a plain leaf ``Tensor``, not a subclass: the core recognizes
tensors with ``x.__class__ is Tensor`` on its hot path, so a subclass would not
be taken for a tensor by the ops. ``nn.Parameter(data)`` returns a leaf Tensor
that shares ``data``'s memory, requires grad, and is remembered (by identity) as
a parameter: ``isinstance(t, nn.Parameter)`` is True for it.

A module registers as a parameter every Tensor attribute that was made by
``nn.Parameter``, or that is a leaf requiring grad (so ``self.w =
gk.randn(3, requires_grad=True)`` is a parameter too); other tensors stay plain
attributes unless registered with ``register_buffer``.
"""
import weakref
from collections import OrderedDict, namedtuple

from ..tensor import Tensor, GradkitError
from ..ops.core import const
from ..creation import _backend
from ..creation import as_tensor
from ..creation import empty
from ..device import is_device_spec
from ..tensor import DType
from ..tensor import to_dtype
from . import hooks as _hooks
from .. import tensor_pickle as _tensor_pickle

# id(tensor) -> weakref(tensor). Not a WeakSet: comparing two weakrefs compares
# their referents with ==, and Tensor.__eq__ is elementwise.
_params = {}


def _forget(key):
    def callback(_ref):
        r = _params.get(key)
        if r is not None and r() is None:
            del _params[key]
    return callback


def _mark_parameter(t):
    k = id(t)
    r = _params.get(k)
    if r is None or r() is not t:
        _params[k] = weakref.ref(t, _forget(k))
    return t


def is_parameter(t):
    r = _params.get(id(t))
    return r is not None and r() is t


_tensor_pickle.parameter_kind[:] = [is_parameter, _mark_parameter]  # deepcopy/pickle keep it


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return obj.__class__ is Tensor and is_parameter(obj)


class Parameter(metaclass=_ParameterMeta):
    """``Parameter(data=None, requires_grad=True)`` -> a leaf Tensor sharing
    ``data``'s memory, marked as a parameter (see the module docstring: it is a
    plain Tensor, and ``isinstance(p, Parameter)`` is True)."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = empty(0)
        elif data.__class__ is not Tensor:
            data = as_tensor(data)
        t = const(data._B, data.array)
        t._vc = data._vc
        if requires_grad:
            t.requires_grad_(True)
        return _mark_parameter(t)


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _to_backend(t, B, dtype):
    """Move ``t`` (a Tensor) onto backend ``B`` and/or cast it to ``dtype`` (a
    backend dtype or None), in place: the Tensor object stays the same."""
    arr = t.array
    if t._B is not B:
        arr = B.to_device(t._B, arr)
    if dtype is not None and arr.dtype != dtype:
        arr = B.astype(arr, dtype)
    if arr is t.array:
        return
    t.array = arr
    t._B = B
    t._vc[0] += 1
    g = t.grad
    if g is not None:
        _to_backend(g, B, dtype)


def _parse_to(args, kwargs):
    """Module.to's arguments -> (device or None, dtype or None)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"gradkit.nn.Module.to: unexpected arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif is_device_spec(a):
            device = a
        elif isinstance(a, (DType, str)) or a in (float, int, bool) or hasattr(a, "itemsize"):
            dtype = a
        else:
            raise TypeError(f"gradkit.nn.Module.to: expected a device or a dtype, got {a!r}")
    return device, dtype


class Module:
    """Base class of layers and models (as ``torch.nn.Module``)."""

    training = True

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["training"] = True

    # ---------------------------------------------------------- registration
    def _check_init(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call: call "
                f"super().__init__() first in {type(self).__name__}.__init__")

    def __setattr__(self, name, value):
        d = self.__dict__
        params = d.get("_parameters")
        if value.__class__ is Tensor and (is_parameter(value) or (
                value.requires_grad and value.grad_fn is None)):
            self._check_init(name)
            self._discard(name)
            params[name] = _mark_parameter(value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(an nn.Parameter, a leaf tensor that requires grad, or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_init(name)
            self._discard(name)
            d["_modules"][name] = value
        elif params is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (a Module or None expected)")
            d["_modules"][name] = None
        elif params is not None and name in d["_buffers"]:
            if value is not None and value.__class__ is not Tensor:
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                "(a Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name):
        d = self.__dict__
        d.pop(name, None)
        for k in ("_parameters", "_buffers", "_modules"):
            d[k].pop(name, None)
        d["_non_persistent"].discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: parameters, buffers, submodules
        d = self.__dict__
        for k in ("_parameters", "_buffers", "_modules"):
            sub = d.get(k)
            if sub is not None and name in sub:
                return sub[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        d = self.__dict__
        for k in ("_parameters", "_buffers", "_modules"):
            if name in d.get(k, ()):
                del d[k][name]
                d["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name, param):
        """Register ``param`` (a leaf Tensor, or None) as parameter ``name``."""
        self._check_name("register_parameter", name)
        if param is None:
            self._discard(name)
            self._parameters[name] = None
            return
        if param.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn: cannot register a {type(param).__name__} as "
                            f"parameter {name!r}: a Tensor is expected")
        if param.grad_fn is not None:
            raise ValueError(f"gradkit.nn: cannot register the non-leaf tensor {name!r} as a "
                             "parameter: it was computed by an op; pass t.detach() (or "
                             "create it with nn.Parameter)")
        self._discard(name)
        self._parameters[name] = _mark_parameter(param)

    def register_buffer(self, name, tensor, persistent=True):
        """Register ``tensor`` (or None) as a buffer: saved in the state dict
        (unless ``persistent=False``) and moved by ``to()``, but not a parameter."""
        self._check_name("register_buffer", name)
        if tensor is not None and tensor.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn: cannot register a {type(tensor).__name__} as "
                            f"buffer {name!r}: a Tensor or None is expected")
        self._discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        self._check_name("add_module", name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"gradkit.nn: {type(module).__name__} is not a Module subclass")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, what, name):
        self._check_init(name)
        if not isinstance(name, str):
            raise TypeError(f"gradkit.nn.{what}: name must be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"gradkit.nn.{what}: name {name!r} can't be empty or contain '.'")
        if hasattr(type(self), name):
            raise KeyError(f"gradkit.nn.{what}: attribute {name!r} already exists")

    # ------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, prefix + ("." if prefix else "") + name,
                                           remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, kind, prefix, recurse, remove_duplicate):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mp, m in mods:
            for k, v in m.__dict__[kind].items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(v))
                yield mp + ("." if mp else "") + k, v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs; a parameter shared by two modules comes once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        m = self
        for part in target.split(".") if target else ():
            sub = m._modules.get(part)
            if sub is None:
                raise AttributeError(f"{type(m).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            m = sub
        return m

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- modes
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("gradkit.nn.Module.train: mode must be a bool")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter (set to None, or zero them in place)."""
        for p in self.parameters():
            _zero_grad(p, set_to_none)

    # --------------------------------------------------------------- devices
    def to(self, *args, **kwargs):
        """Move (and/or cast floating point) parameters and buffers in place:
        every Parameter object stays the same, so optimizers built earlier keep
        working. ``to("cuda")``, ``to(gk.float64)``, ``to("cpu", gk.float32)``."""
        device, dtype = _parse_to(list(args), dict(kwargs))
        for t in list(self.parameters()) + list(self.buffers()):
            B = t._B if device is None else _backend(device)
            dt = None
            if dtype is not None and B.is_floating(t.array.dtype):
                dt = B.dtypes[to_dtype(dtype).name]
                if not B.is_floating(dt):
                    raise TypeError(f"gradkit.nn.Module.to: only floating point dtypes are "
                                    f"allowed for a module's tensors, got {dtype!r}")
            _to_backend(t, B, dt)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def float(self):
        return self.to(dtype="float32")

    def double(self):
        return self.to(dtype="float64")

    def half(self):
        return self.to(dtype="float16")

    # ------------------------------------------------------------ state dict
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered dict of every parameter and persistent buffer by dotted
        name. Values are detached tensors sharing memory with the module's
        (``keep_vars=True``: the tensors themselves)."""
        out = OrderedDict() if destination is None else destination
        for mp, m in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            d = m.__dict__
            pre = mp + "." if mp else ""
            for k, v in d["_parameters"].items():
                if v is not None:
                    out[pre + k] = v if keep_vars else v.detach()
            for k, v in d["_buffers"].items():
                if v is not None and k not in d["_non_persistent"]:
                    out[pre + k] = v if keep_vars else v.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy ``state_dict``'s tensors into this module's parameters and
        buffers, in place (converting device and dtype). Everything is checked
        first: on any problem (missing or unexpected keys with ``strict=True``,
        mismatched shapes, values that are not tensors) it raises an error that
        lists them, and the module is left unchanged. Returns
        ``(missing_keys, unexpected_keys)``."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict:
            if unexpected:
                problems.append("Unexpected key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                problems.append("Missing key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in missing) + ".")
        plan = []
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if v.__class__ is not Tensor:
                try:
                    v = as_tensor(v)
                except Exception:
                    problems.append(f"value for {k!r} is a {type(v).__name__}, not a tensor.")
                    continue
            if tuple(v.array.shape) != tuple(t.array.shape):
                problems.append(f"size mismatch for {k}: copying a param with shape "
                                f"{tuple(v.array.shape)} from checkpoint, the shape in current "
                                f"model is {tuple(t.array.shape)}.")
                continue
            B = t._B
            try:
                arr = v.array if v._B is B else B.to_device(v._B, v.array)
                if arr.dtype != t.array.dtype:
                    arr = B.astype(arr, t.array.dtype)
            except Exception as e:
                problems.append(f"can't convert {k!r} ({v.dtype_name} on {v._B.device_str}) to "
                                f"{t.dtype_name} on {B.device_str}: {str(e).splitlines()[0]}")
                continue
            plan.append((t, arr))
        if problems:
            raise GradkitError(f"Error(s) in loading state_dict for {type(self).__name__} "
                               "(nothing was changed):\n\t" + "\n\t".join(problems))
        for t, arr in plan:
            if arr is not t.array:
                t._B.setitem(t.array, Ellipsis, arr)
                t._vc[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"gradkit.nn: {type(self).__name__} has no forward(); "
                                  "define forward(self, ...) in your Module subclass")

    def __call__(self, *args, **kwargs):
        st = self.__dict__.get("_hook_state")
        if st:
            return _hooks.call_with_hooks(self, st, args, kwargs)
        return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- hooks
    # (gradkit/nn/hooks.py; as torch.nn.Module's; each returns a handle with .remove())
    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """``hook(module, args)`` runs before ``forward``; a non-None result
        replaces ``args`` (``with_kwargs=True``: ``hook(module, args, kwargs)``
        returning ``(args, kwargs)``)."""
        return _hooks.register_forward_pre_hook(self, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """``hook(module, args, output)`` runs after ``forward``; a non-None
        result replaces the output."""
        return _hooks.register_forward_hook(self, hook, prepend, with_kwargs, always_call)

    def register_full_backward_hook(self, hook, prepend=False):
        """``hook(module, grad_input, grad_output)`` runs when the gradients
        with respect to the module's tensor inputs are computed; a tuple it
        returns replaces ``grad_input``."""
        return _hooks.register_full_backward_hook(self, hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """``hook(module, grad_output)`` runs when the gradients with respect
        to the module's outputs are computed; a tuple it returns replaces them."""
        return _hooks.register_full_backward_pre_hook(self, hook, prepend)

    # ------------------------------------------------------------------ repr
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _zero_grad(p, set_to_none):
    g = p.grad
    if g is None:
        return
    if set_to_none:
        p.grad = None
        return
    if g.grad_fn is not None:
        g = p.grad = g.detach()
    g._B.setitem(g.array, Ellipsis, 0)
    g._vc[0] += 1
