"""Shared pieces of the optimizers written with gradkit ops (RMSprop, Adagrad,
Adadelta, LBFGS): each update is a few elementwise ops on the parameter's
device (no host round trip), the state and the parameter updated in place
(``add_``/``mul_`` straight into their buffers under no_grad) and the
parameter's version bumped, as SGD/Adam's fused kernels do."""
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


def bump(p):
    """Record that parameter ``p`` was updated in place (through ``value(p)``)."""
    p._vc[0] += 1


def zeros_like(p, fill=0.0):
    B = p._B
    return const(B, B.full(tuple(p.array.shape), fill, p.array.dtype))


def check_number(name, v, low=0.0):
    if not isinstance(v, (int, float)) or v < low:
        raise ValueError(f"Invalid {name} value: {v}")
