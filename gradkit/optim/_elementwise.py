"""Shared pieces of the optimizers written with gradkit ops (RMSprop, Adagrad,
Adadelta, LBFGS): each update is a few elementwise ops on the parameter's
device (no host round trip), written into the parameter in place with its
version bumped, as SGD/Adam's fused kernels do."""
from ..ops import functional as _F
from ..ops.core import const
from .optimizer import _check_grad


def grad_of(p, maximize):
    """p's gradient as a constant Tensor (negated with ``maximize``), or None."""
    g = p.grad
    if g is None:
        return None
    _check_grad(p, g)
    g = const(g._B, g.array)
    return _F.neg(g) if maximize else g


def value(p):
    """p's values as a constant Tensor sharing its memory."""
    return const(p._B, p.array)


def write(p, new):
    """Write the Tensor ``new`` into parameter (or state tensor) ``p`` in place."""
    B = p._B
    B.setitem(p.array, Ellipsis, new.array)
    p._vc[0] += 1


def zeros_like(p, fill=0.0):
    B = p._B
    return const(B, B.full(tuple(p.array.shape), fill, p.array.dtype))


def check_number(name, v, low=0.0):
    if not isinstance(v, (int, float)) or v < low:
        raise ValueError(f"Invalid {name} value: {v}")
