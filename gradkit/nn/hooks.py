"""Module hooks: forward pre-hooks, forward hooks, full backward hooks (as
``torch.nn.Module.register_forward_pre_hook`` / ``register_forward_hook`` /
``register_full_backward_hook``), and the handles that remove them.

A module keeps its hooks in one ``_hook_state`` attribute, made on the first
registration: a module without hooks pays one dict lookup per call.

Full backward (pre-)hooks work as torch's ``BackwardHook``: the module's tensor
inputs and outputs pass through identity ``autograd.Function`` nodes. The
output node's backward records ``grad_output``; the input node's backward
calls ``hook(module, grad_input, grad_output)`` once every input gradient is
known, and a tuple it returns replaces ``grad_input``.
"""
import itertools
from collections import OrderedDict

from ..autograd.function import Function
from ..autograd import is_grad_enabled
from ..tensor import Tensor

_ids = itertools.count()


class RemovableHandle:
    """What ``register_*_hook`` returns: ``handle.remove()`` unregisters the
    hook (also as a context manager). Mirrors torch.utils.hooks.RemovableHandle."""

    def __init__(self, hooks_dict, extra=None):
        self._dicts = [hooks_dict] + ([extra] if extra is not None else [])
        self.id = next(_ids)

    def remove(self):
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class HookState:
    """A module's hooks: ordered dicts id -> hook, and which take kwargs."""

    __slots__ = ("pre", "fwd", "bwd", "bwd_pre", "pre_kwargs", "fwd_kwargs", "always")

    def __init__(self):
        self.pre = OrderedDict()
        self.fwd = OrderedDict()
        self.bwd = OrderedDict()
        self.bwd_pre = OrderedDict()
        self.pre_kwargs = {}
        self.fwd_kwargs = {}
        self.always = {}

    def __bool__(self):
        return bool(self.pre or self.fwd or self.bwd or self.bwd_pre)


def _state(module):
    st = module.__dict__.get("_hook_state")
    if st is None:
        st = module.__dict__["_hook_state"] = HookState()
    return st


def _add(d, hook, prepend, flags=None, flag=False):
    if not callable(hook):
        raise TypeError(f"gradkit.nn.Module: a hook must be callable, got {type(hook).__name__}")
    h = RemovableHandle(d, flags)
    d[h.id] = hook
    if prepend:
        d.move_to_end(h.id, last=False)
    if flags is not None and flag:
        flags[h.id] = True
    return h


def register_forward_pre_hook(module, hook, prepend=False, with_kwargs=False):
    st = _state(module)
    return _add(st.pre, hook, prepend, st.pre_kwargs, with_kwargs)


def register_forward_hook(module, hook, prepend=False, with_kwargs=False, always_call=False):
    st = _state(module)
    h = _add(st.fwd, hook, prepend, st.fwd_kwargs, with_kwargs)
    if always_call:
        st.always[h.id] = True
        h._dicts.append(st.always)
    return h


def register_full_backward_hook(module, hook, prepend=False):
    return _add(_state(module).bwd, hook, prepend)


def register_full_backward_pre_hook(module, hook, prepend=False):
    return _add(_state(module).bwd_pre, hook, prepend)


def call_with_hooks(module, st, args, kwargs):
    """Module.__call__ when the module has hooks (torch's ``_call_impl``)."""
    for hid, hook in list(st.pre.items()):
        if hid in st.pre_kwargs:
            r = hook(module, args, kwargs)
            if r is not None:
                if not (isinstance(r, tuple) and len(r) == 2):
                    raise RuntimeError("gradkit.nn: a forward pre-hook registered with "
                                       "with_kwargs=True must return None or (args, kwargs), "
                                       f"got {type(r).__name__}")
                args, kwargs = r
        else:
            r = hook(module, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
    bw = None
    if (st.bwd or st.bwd_pre) and is_grad_enabled():
        bw = _BackwardHook(module, st.bwd, st.bwd_pre)
        args = bw.setup_input_hook(args)
    try:
        result = module.forward(*args, **kwargs)
    except Exception:
        for hid, hook in list(st.fwd.items()):
            if hid in st.always:
                try:
                    if hid in st.fwd_kwargs:
                        hook(module, args, kwargs, None)
                    else:
                        hook(module, args, None)
                except Exception:
                    pass
        raise
    for hid, hook in list(st.fwd.items()):
        r = hook(module, args, kwargs, result) if hid in st.fwd_kwargs else hook(module, args,
                                                                                 result)
        if r is not None:
            result = r
    if bw is not None:
        result = bw.setup_output_hook(result)
    return result


class _Identity(Function):
    """Passes its tensors through; its backward hands the gradients to a callback."""

    @staticmethod
    def forward(ctx, callback, *tensors):
        ctx.callback = callback
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        res = ctx.callback(grads)
        return (None,) + tuple(res if res is not None else grads)


class _BackwardHook:
    def __init__(self, module, hooks, pre_hooks):
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_tensors_index = None

    def _wrap(self, values, callback):
        values = values if isinstance(values, tuple) else (values,)
        idx = [i for i, v in enumerate(values) if v.__class__ is Tensor]
        if not idx:
            return values, idx
        tensors = [values[i] for i in idx]
        if not any(t.requires_grad for t in tensors):
            return values, idx
        out = _Identity.apply(callback, *tensors)
        new = list(values)
        for k, i in enumerate(idx):
            new[i] = out[k]
        return tuple(new), idx

    def setup_input_hook(self, args):
        def on_input_grads(grads):
            return self._run_hooks(tuple(grads))
        new, idx = self._wrap(args, on_input_grads)
        self.n_inputs = len(idx)
        self.input_requires_grad = any(
            args[i].requires_grad for i in idx) if idx else False
        return new

    def setup_output_hook(self, result):
        def on_output_grads(grads):
            grads = tuple(grads)
            for hook in list(self.pre_hooks.values()):
                r = hook(self.module, grads)
                if r is not None:
                    r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
                    if len(r) != len(grads):
                        raise RuntimeError(f"gradkit.nn: a backward pre-hook returned {len(r)} "
                                           f"gradients for {len(grads)} module outputs")
                    grads = r
            self.grad_outputs = grads
            if not self.input_requires_grad and self.hooks:  # no input node will call them
                self._run_hooks((None,) * max(self.n_inputs, 1))
            return grads
        single = not isinstance(result, tuple)
        new, _ = self._wrap(result, on_output_grads)
        return new[0] if single else new

    def _run_hooks(self, grad_inputs):
        grad_outputs = self.grad_outputs if self.grad_outputs is not None else ()
        for hook in list(self.hooks.values()):
            r = hook(self.module, grad_inputs, grad_outputs)
            if r is None:
                continue
            r = tuple(r) if isinstance(r, (tuple, list)) else (r,)
            if len(r) != len(grad_inputs):
                raise RuntimeError(f"gradkit.nn: a backward hook returned {len(r)} gradients, "
                                   f"but the module has {len(grad_inputs)} tensor inputs")
            grad_inputs = r
        return grad_inputs
