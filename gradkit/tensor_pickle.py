"""``pickle`` and ``copy.deepcopy`` of Tensors (and so of Modules), as torch.

A tensor pickles as its values (a host copy), dtype name, device name and
``requires_grad``; it unpickles as a leaf on the device of that name (a cuda tensor
needs a usable GPU there: otherwise a clear error says how to get it onto the cpu).
``.grad`` and the graph are not pickled (as torch). ``deepcopy`` copies a leaf's
values on its own device (no host round trip), ``requires_grad`` and ``.grad``; a
non-leaf refuses, as torch. A parameter stays a parameter (``nn`` registers how to
recognise and mark one: this module sits below ``nn``).
"""
import copy

from . import cuda
from .creation import tensor
from .tensor import const
from .tensor_repr import parameter_kind


def _is_param(t):
    f = parameter_kind[0]
    return bool(f is not None and f(t))


def _rebuild(host, dtype, device, requires_grad, is_param=False):
    """Unpickle: a leaf with these values on ``device`` (by name)."""
    dev = str(device)
    if dev.startswith("cuda"):
        if not cuda.is_available():
            raise RuntimeError(
                f"gradkit: this tensor was pickled on {dev}, but CUDA is not usable here "
                f"({cuda.why_unavailable()}). Unpickle it where a GPU is available, or move "
                "it to the cpu with .cpu() before pickling.")
    t = tensor(host, dtype=dtype, device=dev)
    if requires_grad:
        t.requires_grad_(True)
    if is_param and parameter_kind[1] is not None:
        parameter_kind[1](t)
    return t


def reduce_tensor(t):
    """``Tensor.__reduce_ex__``: (rebuild, (host values, dtype, device, requires_grad,
    is_parameter)). A non-leaf pickles as a leaf holding its values, as torch."""
    return (_rebuild, (t._B.to_host(t.array), t.dtype_name, str(t.device), bool(t.requires_grad),
                       _is_param(t)))


def deepcopy_tensor(t, memo):
    """``Tensor.__deepcopy__``: a leaf copy on the same device."""
    if t.grad_fn is not None:
        raise RuntimeError(
            "gradkit: only Tensors created explicitly by the user (graph leaves) support the "
            "deepcopy protocol at the moment; deepcopy t.detach() (and set requires_grad "
            "again if needed)")
    k = id(t)
    if k in memo:
        return memo[k]
    B = t._B
    c = const(B, B.copy(t.array))
    if t.requires_grad:
        c.requires_grad_(True)
    memo[k] = c
    if t.grad is not None:
        c.grad = copy.deepcopy(t.grad, memo)
    if _is_param(t) and parameter_kind[1] is not None:
        parameter_kind[1](c)
    return c

