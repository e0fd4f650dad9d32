"""Gradient clipping (as torch.nn.utils.clip_grad). No value is read back to
the host (unless ``error_if_nonfinite=True``, which must look): the scale is a
device tensor ``min(max_norm / (total_norm + 1e-6), 1)`` multiplied in place."""
import math
import warnings

from ...autograd import no_grad
from ...creation import tensor as _tensor
from ...ops import functional as _F
from ...tensor import Tensor, GradkitError


def _params(parameters):
    if parameters.__class__ is Tensor:
        return [parameters]
    return list(parameters)


def _grads(parameters, name):
    out = []
    for p in _params(parameters):
        if p.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn.utils.{name}: expected Tensors (parameters), got "
                            f"{type(p).__name__}")
        if p.grad is not None:
            out.append(p.grad)
    return out


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of the norms of ``tensors`` (as if concatenated),
    as a 0-d tensor on the first tensor's device (torch.nn.utils.get_total_norm)."""
    tensors = _params(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return _tensor(0.0)
    with no_grad():
        dev = tensors[0].device
        norms = [_F.to_device(_F.norm(t.detach(), norm_type), dev) if t.device != dev
                 else _F.norm(t.detach(), norm_type) for t in tensors]
        if len({n.dtype for n in norms}) > 1:
            norms = [n.double() for n in norms]
        total = _F.norm(_F.stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    return total


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients of ``parameters`` in place so that their total
    ``norm_type``-norm is at most ``max_norm``; returns the total norm before
    clipping, a 0-d tensor (``torch.nn.utils.clip_grad_norm_``). Not differentiable."""
    grads = _grads(parameters, "clip_grad_norm_")
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    if not grads:
        return total
    with no_grad():
        coef = _F.clamp(_F.div(float(max_norm), _F.add(total, 1e-6)), max=1.0)
        for g in grads:
            c = coef if g.device == coef.device else _F.to_device(coef, g.device)
            if c.dtype != g.dtype:
                c = _F.astype(c, g.dtype)
            g.mul_(c)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                   foreach=None):
    """Deprecated alias of ``clip_grad_norm_`` (as torch)."""
    warnings.warn("gradkit.nn.utils.clip_grad_norm is now deprecated in favor of "
                  "gradkit.nn.utils.clip_grad_norm_.", FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient of ``parameters`` into ``[-clip_value, clip_value]``
    in place (``torch.nn.utils.clip_grad_value_``). Returns None."""
    if not isinstance(clip_value, (int, float)):
        raise GradkitError(f"gradkit.nn.utils.clip_grad_value_: clip_value must be a number, "
                           f"got {type(clip_value).__name__}")
    v = float(clip_value)
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            g.clamp_(-v, v)
