"""``gk.autograd.Variable`` (as ``torch.autograd.Variable``): the pre-0.4
wrapper kept for old code. ``Variable(t)`` returns a Tensor sharing ``t``'s
memory, detached from its graph, requiring grad when asked; every Tensor is
an instance of ``Variable``."""
from ..creation import empty
from ..tensor import Tensor


class _VariableMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """``Variable(data, requires_grad=False, volatile=False)`` -> a Tensor
    (``data.detach()``, with ``requires_grad`` set), as torch."""

    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            data = empty(0)
        if data.__class__ is not Tensor:
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        t = data.detach()
        if requires_grad:
            t.requires_grad_(True)
        return t
