"""Parameter initialization, as ``torch.nn.init``: each function fills its
tensor in place (no graph is recorded, the version counter is bumped) with
gradkit's generator (seed it with ``gk.manual_seed``), and returns it."""
import math
import warnings

from ..autograd import no_grad
from ..tensor import Tensor
from ..creation import rand, randn


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _check(name, t):
    if t.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.init.{name}: expected a Tensor, got {type(t).__name__}")
    if not t._B.is_floating(t.array.dtype):
        raise TypeError(f"gradkit.nn.init.{name}: the tensor must be floating point, got "
                        f"{t.dtype_name}")


def _assign(t, arr):
    """Write ``arr`` (a raw array of t's backend) into ``t`` in place."""
    if arr.dtype != t.array.dtype:
        arr = t._B.astype(arr, t.array.dtype)
    t._B.setitem(t.array, Ellipsis, arr)
    t._vc[0] += 1
    return t


def _random(t, kind):
    with no_grad():
        fn = rand if kind == "uniform" else randn
        return fn(*t.shape, dtype=t.dtype, device=t.device).array


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    _check("uniform_", tensor)
    B = tensor._B
    return _assign(tensor, B.add(B.mul(_random(tensor, "uniform"), float(b - a)), float(a)))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std**2)."""
    _check("normal_", tensor)
    B = tensor._B
    return _assign(tensor, B.add(B.mul(_random(tensor, "normal"), float(std)), float(mean)))


def constant_(tensor, val):
    _check("constant_", tensor)
    tensor._B.setitem(tensor.array, Ellipsis, val)
    tensor._vc[0] += 1
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _calculate_fan_in_and_fan_out(tensor):
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions (shape {shape})")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _empty_noop(name, tensor):
    if tensor.numel() == 0:
        warnings.warn(f"gradkit.nn.init.{name}: initializing a zero-element tensor is a no-op",
                      stacklevel=3)
        return True
    return False


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    _check("xavier_uniform_", tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(2.0 / float(fan_in + fan_out)) * math.sqrt(3.0)
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    _check("xavier_normal_", tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with ``bound = gain * sqrt(3 / fan)`` (He et al.)."""
    _check("kaiming_uniform_", tensor)
    if _empty_noop("kaiming_uniform_", tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std**2) with ``std = gain / sqrt(fan)`` (He et al.)."""
    _check("kaiming_normal_", tensor)
    if _empty_noop("kaiming_normal_", tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)
