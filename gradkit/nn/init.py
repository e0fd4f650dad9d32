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


# ---- more of torch.nn.init (issue 12): orthogonal_, trunc_normal_, eye_, dirac_, sparse_
from .. import backends as _backends  # noqa: E402
from ..creation import eye as _eye, rand as _rand, randn as _randn  # noqa: E402
def _host(t, arr):
    """A raw array of t's backend from a host (NumPy) array, in t's dtype."""
    B = t._B
    return B.astype(B.from_host(_backends.host_xp().ascontiguousarray(arr)), t.array.dtype)


def orthogonal_(tensor, gain=1, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain``: the Q of the QR
    decomposition of a normal matrix, its columns' signs fixed by R's diagonal
    (Saxe et al.; as ``torch.nn.init.orthogonal_``). Tensors of 3+ dims are
    treated as (size(0), numel / size(0)). The QR runs on the host (NumPy)."""
    _check("orthogonal_", tensor)
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    xp = _backends.host_xp()
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = tensor._B.to_host(_randn(rows, cols, dtype="float64", device=tensor.device).array)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return _assign(tensor, _host(tensor, (q * gain).reshape(tuple(tensor.shape))))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std**2) truncated to [a, b]: values outside are drawn
    again, on the device, for as many rounds as make a leftover less likely
    than 1e-20 per tensor (capped at 200 rounds; any leftover is clamped).
    torch draws by inverse CDF: the same distribution, not the same numbers.
    As ``torch.nn.init.trunc_normal_``."""
    _check("trunc_normal_", tensor)
    if not a < b:
        raise ValueError(f"gradkit.nn.init.trunc_normal_: a ({a}) must be less than b ({b})")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)
    B = tensor._B

    def cdf(v):
        return 0.5 * (1.0 + math.erf((v - mean) / (std * math.sqrt(2.0))))
    p_out = min(max(1.0 - (cdf(b) - cdf(a)), 0.0), 1.0)
    n = max(tensor.numel(), 1)
    rounds = 0 if p_out == 0.0 else (200 if p_out >= 1.0 else
                                     min(200, math.ceil(math.log(1e-20 / n) / math.log(p_out))))

    def draw():
        return B.add(B.mul(_random(tensor, "normal"), float(std)), float(mean))
    x = draw()
    for _ in range(rounds):  # no host read: a fixed number of rounds
        bad = B.logical_or(B.lt(x, float(a)), B.gt(x, float(b)))
        x = B.where(bad, draw(), x)
    return _assign(tensor, B.where(B.lt(x, float(a)), float(a),
                                   B.where(B.gt(x, float(b)), float(b), x)))


def eye_(tensor):
    """Fill the 2-D ``tensor`` with the identity (as ``torch.nn.init.eye_``)."""
    _check("eye_", tensor)
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    n, m = tensor.shape
    return _assign(tensor, _eye(n, m, dtype=tensor.dtype, device=tensor.device).array)


def dirac_(tensor, groups=1):
    """Fill the 3-, 4- or 5-D ``tensor`` with the Dirac delta: a convolution
    with it keeps its input channels (in ``groups``); as ``torch.nn.init.dirac_``."""
    _check("dirac_", tensor)
    d = tensor.ndim
    if d not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per = sizes[0] // groups
    n = min(out_per, sizes[1])
    host = _backends.host_xp().zeros(tuple(sizes))
    centers = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for k in range(n):
            host[(g * out_per + k, k) + centers] = 1
    return _assign(tensor, _host(tensor, host))


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Fill the 2-D ``tensor`` with N(0, std**2) and zero ``ceil(sparsity *
    rows)`` random entries in every column (as ``torch.nn.init.sparse_``)."""
    _check("sparse_", tensor)
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    normal_(tensor, 0.0, std)
    keys = tensor._B.to_host(_rand(rows, cols, dtype="float64", device=tensor.device).array)
    xp = _backends.host_xp()
    order = xp.argsort(keys, axis=0)[:num_zeros]   # a random permutation per column
    mask = xp.ones((rows, cols))
    mask[order, xp.arange(cols)[None, :]] = 0
    B = tensor._B
    return _assign(tensor, B.mul(tensor.array, _host(tensor, mask)))
