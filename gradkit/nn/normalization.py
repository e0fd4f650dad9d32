"""Layer, batch, instance and group normalization as functions
(``gk.nn.functional``), as ``torch.nn.functional``. Each runs the fused
primitive of ``gradkit/ops/norm.py`` (one statistics pass and one
normalize-and-affine pass forward, a closed-form backward; any order of
derivatives, every device); a composition of differentiable ops covers what
the kernels don't (parameters of another dtype, empty inputs) and batch norm's
eval mode (an affine map per channel). The running statistics are updated in
place, on the device, with no host round trip.
"""
from ..autograd import no_grad
from ..ops import functional as _F
from ..ops.norm import fused_norm
from ..tensor import Tensor, GradkitError

__all__ = ["layer_norm", "batch_norm", "instance_norm", "group_norm"]


def _name(op):
    return f"gradkit.nn.functional.{op}"


def _check(op, x, min_dim=2):
    if x.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim < min_dim:
        raise GradkitError(f"{_name(op)}: expected an input with at least {min_dim} dims "
                           f"(N, C, ...), got input of size {list(x.shape)}")
    if not x._B.is_floating(x.array.dtype):
        raise GradkitError(f"{_name(op)}: expected a floating point input, got {x.dtype_name}")


def _per_channel(op, x, t, what, C, cdim=1):
    """``t`` (C,) reshaped to broadcast along dim ``cdim`` of ``x``."""
    _check_param(op, x, t, what, C)
    return _F.reshape(t, (1,) * cdim + (C,) + (1,) * (x.ndim - cdim - 1))


def _check_param(op, x, t, what, C):
    if t.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: {what} must be a Tensor, got {type(t).__name__}")
    if tuple(t.shape) != (C,):
        raise GradkitError(f"{_name(op)}: {what} should contain {C} elements (one per channel), "
                           f"got shape {tuple(t.shape)}")
    if t._B is not x._B:
        raise GradkitError(f"{_name(op)}: input is on {x._B.device_str} but {what} is on "
                           f"{t._B.device_str}; move one with .to(device)")


def _check_params(op, x, C, **params):
    for what, t in params.items():
        if t is not None:
            _check_param(op, x, t, what, C)


def _fusable(x, *params):
    """The fused kernels take x (float16/32/64, not empty) with parameters of
    its own dtype and device (or None)."""
    dt = x.array.dtype
    if x.numel() == 0 or dt not in x._B.float_dtypes:
        return False
    return all(p is None or (p.__class__ is Tensor and p._B is x._B and p.array.dtype == dt)
               for p in params)


def _geom(op, xs, red, ws, lay, pshape):
    return (tuple(xs), tuple(red), tuple(ws), tuple(lay), tuple(pshape), op)


def _update_raw(running, value, momentum):
    """running = (1 - momentum) * running + momentum * value (a raw array of the
    statistics), in place on the device, no graph."""
    running._B.norm_running_update(running.array, value, momentum)
    running._vc[0] += 1


def _normalize(x, dims, eps):
    """(x - mean) / sqrt(biased var + eps) over ``dims``, and the mean and biased var."""
    mean = _F.mean(x, dims, keepdim=True)
    xc = _F.sub(x, mean)
    var = _F.mean(_F.mul(xc, xc), dims, keepdim=True)
    return _F.mul(xc, _F.rsqrt(_F.add(var, float(eps)))), mean, var


def _affine(op, y, weight, bias, C):
    if weight is not None:
        y = _F.mul(y, _per_channel(op, y, weight, "weight", C))
    if bias is not None:
        y = _F.add(y, _per_channel(op, y, bias, "bias", C))
    return y


def _update(running, value, momentum):
    """running = (1 - momentum) * running + momentum * value, in place, no graph."""
    with no_grad():
        v = value.detach()
        if v.dtype != running.dtype:
            v = v.to(running.dtype)
        _F.mul_(running, 1.0 - momentum)
        _F.add_(running, _F.mul(v, momentum))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalize (N, C, *) per channel C over the batch and every other dim.
    ``training=True``: with the batch's mean and biased variance, and update
    ``running_mean``/``running_var`` (when given) in place with ``momentum`` (the
    variance stored unbiased, as torch); ``training=False``: with the running
    statistics. Then ``* weight + bias`` (each (C,), optional). Result like input;
    differentiable in input, weight, bias; every device. Mirrors
    torch.nn.functional.batch_norm."""
    op = "batch_norm"
    _check(op, input)
    C = input.shape[1]
    dims = (0,) + tuple(range(2, input.ndim))
    n = input.numel() // C if C else 0
    if training:
        if n <= 1:
            raise ValueError(f"{_name(op)}: Expected more than 1 value per channel when training, "
                             f"got input size {list(input.shape)}")
        _check_params(op, input, C, running_mean=running_mean, running_var=running_var)
        if _fusable(input, weight, bias):
            _check_params(op, input, C, weight=weight, bias=bias)
            N, S = input.shape[0], n // input.shape[0]
            y, mean, var = fused_norm(input, weight, bias, _geom(
                op, (N, C, S), (0, 2), (1, C, 1), (N, C, S, C, 1, S), (C,)), eps)
            B = input._B
            if running_mean is not None:
                _update_raw(running_mean, B.reshape(mean, (C,)), momentum)
            if running_var is not None:
                _update_raw(running_var, B.mul(B.reshape(var, (C,)), n / (n - 1)), momentum)
            return y
        y, mean, var = _normalize(input, dims, eps)
        if running_mean is not None:
            _update(running_mean, _F.reshape(mean, (C,)), momentum)
        if running_var is not None:
            _update(running_var, _F.reshape(_F.mul(var, n / (n - 1)), (C,)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise GradkitError(f"{_name(op)}: running_mean and running_var must be defined in "
                               "evaluation mode (training=False)")
        return _eval_affine(op, input, running_mean, running_var, weight, bias, C, eps)
    return _affine(op, y, weight, bias, C)


def _eval_affine(op, x, running_mean, running_var, weight, bias, C, eps):
    """``x * scale + shift`` per channel, with ``scale = weight / sqrt(running_var
    + eps)`` and ``shift = bias - running_mean * scale`` formed on the (C,)
    vectors first: two passes over x instead of four (differentiable in every
    argument, by composition)."""
    _check_param(op, x, running_mean, "running_mean", C)
    _check_param(op, x, running_var, "running_var", C)
    scale = _F.rsqrt(_F.add(running_var, float(eps)))
    if weight is not None:
        _check_param(op, x, weight, "weight", C)
        scale = _F.mul(scale, weight)
    shift = _F.neg(_F.mul(running_mean, scale))
    if bias is not None:
        _check_param(op, x, bias, "bias", C)
        shift = _F.add(shift, bias)
    shape = (1, C) + (1,) * (x.ndim - 2)
    return _F.add(_F.mul(x, _F.reshape(scale, shape)), _F.reshape(shift, shape))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalize each (sample, channel) of (N, C, *) over its own spatial dims;
    with ``use_input_stats=False`` use the running statistics instead. Running
    statistics (when given) are updated with the batch average of the per-instance
    ones. Then ``* weight + bias``. Differentiable; every device. Mirrors
    torch.nn.functional.instance_norm."""
    op = "instance_norm"
    _check(op, input, 3)
    C = input.shape[1]
    dims = tuple(range(2, input.ndim))
    if use_input_stats:
        n = input.numel() // (C * input.shape[0]) if C and input.shape[0] else 0
        if n <= 1:
            raise ValueError(f"{_name(op)}: Expected more than 1 spatial element when training, "
                             f"got input size {list(input.shape)}")
        _check_params(op, input, C, running_mean=running_mean, running_var=running_var)
        if _fusable(input, weight, bias):
            _check_params(op, input, C, weight=weight, bias=bias)
            N = input.shape[0]
            y, mean, var = fused_norm(input, weight, bias, _geom(
                op, (N, C, n), (2,), (1, C, 1), (1, N * C, n, C, 1, n), (C,)), eps)
            B = input._B
            if running_mean is not None:
                m = B.mul(B.sum(B.reshape(mean, (N, C)), 0), 1.0 / N)
                _update_raw(running_mean, m, momentum)
            if running_var is not None:
                v = B.mul(B.sum(B.reshape(var, (N, C)), 0), n / ((n - 1) * N))
                _update_raw(running_var, v, momentum)
            return y
        y, mean, var = _normalize(input, dims, eps)
        if running_mean is not None:
            _update(running_mean, _F.mean(_F.reshape(mean, input.shape[:2]), 0), momentum)
        if running_var is not None:
            unb = _F.mul(_F.reshape(var, input.shape[:2]), n / (n - 1))
            _update(running_var, _F.mean(unb, 0), momentum)
    else:
        if running_mean is None or running_var is None:
            raise GradkitError(f"{_name(op)}: Expected running_mean and running_var to be defined "
                               "when use_input_stats is false")
        rm = _per_channel(op, input, running_mean, "running_mean", C)
        rv = _per_channel(op, input, running_var, "running_var", C)
        y = _F.mul(_F.sub(input, rm), _F.rsqrt(_F.add(rv, float(eps))))
    return _affine(op, y, weight, bias, C)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Split the C channels of (N, C, *) into ``num_groups`` groups and normalize
    each (sample, group) over its channels and spatial dims (biased variance);
    then ``* weight + bias`` per channel. Differentiable; every device. Mirrors
    torch.nn.functional.group_norm."""
    op = "group_norm"
    _check(op, input)
    N, C = input.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or C % num_groups:
        raise GradkitError(f"{_name(op)}: Expected number of channels in input to be divisible "
                           f"by num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    if _fusable(input, weight, bias):
        _check_params(op, input, C, weight=weight, bias=bias)
        G, cpg = num_groups, C // num_groups
        S = input.numel() // (N * C)
        y, _, _ = fused_norm(input, weight, bias, _geom(
            op, (N, G, cpg, S), (2, 3), (1, G, cpg, 1), (1, N * G, cpg * S, G, cpg, S), (C,)),
            eps)
        return y
    xg = _F.reshape(input, (N, num_groups, -1))
    y, _, _ = _normalize(xg, (2,), eps)
    return _affine(op, _F.reshape(y, tuple(input.shape)), weight, bias, C)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` dims with the biased
    variance, then ``* weight + bias`` (each of ``normalized_shape``, optional).
    Result like input; differentiable in input, weight and bias (any order);
    every device; one fused primitive. Mirrors torch.nn.functional.layer_norm."""
    op = "layer_norm"
    if input.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: input must be a Tensor, got {type(input).__name__}")
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or input.shape[input.ndim - k:] != ns:
        raise GradkitError(f"{_name(op)}: normalized_shape {ns} doesn't "
                           f"match the trailing dims of the input's shape {input.shape}")
    params = [p for p in (weight, bias) if p is not None]
    if _fusable(input, weight, bias) and all(tuple(p.shape) == ns for p in params):
        D = 1
        for s in ns:
            D *= s
        R = input.numel() // D
        y, _, _ = fused_norm(input, weight, bias, _geom(
            op, (R, D), (1,), (1, D), (1, R, D, 1, D, 1), ns), eps)
        return y
    dims = tuple(range(-k, 0))
    xc = _F.sub(input, _F.mean(input, dims, keepdim=True))
    var = _F.mean(_F.mul(xc, xc), dims, keepdim=True)
    y = _F.mul(xc, _F.pow(_F.add(var, float(eps)), -0.5))
    if weight is not None:
        y = _F.mul(y, weight)
    if bias is not None:
        y = _F.add(y, bias)
    return y
