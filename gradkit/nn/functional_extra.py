"""More of ``torch.nn.functional``: activations, losses, ``pad``, similarity.

Every function here is a composition of differentiable gradkit ops, so first
and higher derivatives come from the ops themselves, on every device, with no
backward code of its own. ``gk.nn.functional`` re-exports every public name.
Each mirrors the ``torch.nn.functional`` function of the same name (arguments,
defaults, result shape and dtype); differences are named in the docstring.
"""
import warnings

from ..creation import as_tensor, tensor
from ..ops import functional as _F
from ..ops.core import const
from ..tensor import Tensor, GradkitError

__all__ = ["leaky_relu", "elu", "celu", "selu", "relu6", "hardtanh", "logsigmoid", "mish",
           "softsign", "tanhshrink", "hardsigmoid", "hardswish", "silu", "softplus",
           "softshrink", "hardshrink", "threshold", "glu", "softmin",
           "binary_cross_entropy", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div",
           "cosine_similarity", "pairwise_distance", "normalize", "pad"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _need(name, x, what="input"):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.functional.{name}: {what} must be a Tensor, got "
                        f"{type(x).__name__}")


def _need_float(name, x):
    _need(name, x)
    if not x._B.is_floating(x.array.dtype):
        raise GradkitError(f"gradkit.nn.functional.{name}: expected a floating point input, "
                           f"got {x.dtype_name}; convert it with .float()")


def _reduction(name, reduction, size_average=None, reduce=None, allowed=("none", "mean", "sum")):
    if size_average is not None or reduce is not None:  # torch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in allowed:
        raise ValueError(f"gradkit.nn.functional.{name}: {reduction!r} is not a valid value "
                         f"for reduction; use one of {', '.join(map(repr, allowed))}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return _F.mean(loss)
    if reduction == "sum":
        return _F.sum(loss)
    return loss


def _inplace_result(x, y, inplace):
    """``inplace=True`` writes ``y`` into ``x`` (through gradkit's in-place
    copy, so autograd and version counters see it) and returns ``x``."""
    if not inplace:
        return y
    return x.copy_(y)


# ============================================================== activations
def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where x > 0, else ``negative_slope * x`` (torch.nn.functional.leaky_relu)."""
    _need_float("leaky_relu", input)
    y = _F.where(_F.gt(input, 0.0), input, _F.mul(input, float(negative_slope)))
    return _inplace_result(input, y, inplace)


def _neg_expm1(x, alpha):
    """``alpha * (exp(min(x, 0)) - 1)``: no overflow on the branch ``where`` drops."""
    return _F.mul(_F.expm1(_F.minimum(x, 0.0)), float(alpha))


def elu(input, alpha=1.0, inplace=False):
    """``x`` where x > 0, else ``alpha * (exp(x) - 1)`` (torch.nn.functional.elu)."""
    _need_float("elu", input)
    y = _F.where(_F.gt(input, 0.0), input, _neg_expm1(input, alpha))
    return _inplace_result(input, y, inplace)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (torch.nn.functional.celu)."""
    _need_float("celu", input)
    if alpha == 0:
        raise ValueError("gradkit.nn.functional.celu: ZeroDivisionError, alpha must not be 0")
    neg = _F.mul(_F.expm1(_F.minimum(_F.div(input, float(alpha)), 0.0)), float(alpha))
    y = _F.where(_F.gt(input, 0.0), input, neg)
    return _inplace_result(input, y, inplace)


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with torch's fixed alpha and scale (torch.nn.functional.selu)."""
    _need_float("selu", input)
    y = _F.mul(_F.where(_F.gt(input, 0.0), input, _neg_expm1(input, _SELU_ALPHA)), _SELU_SCALE)
    return _inplace_result(input, y, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``clamp(x, min_val, max_val)`` (torch.nn.functional.hardtanh)."""
    _need("hardtanh", input)
    if min_val > max_val:
        raise ValueError("gradkit.nn.functional.hardtanh: min_val cannot be greater than max_val")
    return _inplace_result(input, _F.clamp(input, float(min_val), float(max_val)), inplace)


def relu6(input, inplace=False):
    """``min(max(0, x), 6)`` (torch.nn.functional.relu6)."""
    return hardtanh(input, 0.0, 6.0, inplace)


def logsigmoid(input):
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``: finite for every x
    (torch.nn.functional.logsigmoid)."""
    _need_float("logsigmoid", input)
    return _F.sub(_F.minimum(input, 0.0), _F.log1p(_F.exp(_F.neg(_F.abs(input)))))


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, ``x`` where ``beta x > threshold``
    (torch.nn.functional.softplus; the core op ``gk.softplus``)."""
    _need_float("softplus", input)
    return _F.softplus(input, beta, threshold)


def silu(input, inplace=False):
    """``x * sigmoid(x)`` (torch.nn.functional.silu)."""
    _need_float("silu", input)
    return _inplace_result(input, _F.silu(input), inplace)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))`` (torch.nn.functional.mish)."""
    _need_float("mish", input)
    return _inplace_result(input, _F.mul(input, _F.tanh(_F.softplus(input))), inplace)


def softsign(input):
    """``x / (1 + |x|)`` (torch.nn.functional.softsign)."""
    _need_float("softsign", input)
    return _F.div(input, _F.add(_F.abs(input), 1.0))


def tanhshrink(input):
    """``x - tanh(x)`` (torch.nn.functional.tanhshrink)."""
    _need_float("tanhshrink", input)
    return _F.sub(input, _F.tanh(input))


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6`` (torch.nn.functional.hardsigmoid)."""
    _need_float("hardsigmoid", input)
    y = _F.div(_F.clamp(_F.add(input, 3.0), 0.0, 6.0), 6.0)
    return _inplace_result(input, y, inplace)


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6`` (torch.nn.functional.hardswish)."""
    _need_float("hardswish", input)
    y = _F.mul(input, _F.div(_F.clamp(_F.add(input, 3.0), 0.0, 6.0), 6.0))
    return _inplace_result(input, y, inplace)


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0
    (torch.nn.functional.softshrink)."""
    _need_float("softshrink", input)
    if lambd < 0:
        raise ValueError(f"gradkit.nn.functional.softshrink: lambda must be greater or equal "
                         f"to 0, but found to be {lambd}")
    lam = float(lambd)
    zero = _F.mul(input, 0.0)
    return _F.where(_F.gt(input, lam), _F.sub(input, lam),
                    _F.where(_F.lt(input, -lam), _F.add(input, lam), zero))


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0 (torch.nn.functional.hardshrink)."""
    _need_float("hardshrink", input)
    return _F.where(_F.gt(_F.abs(input), float(lambd)), input, _F.mul(input, 0.0))


def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value`` (torch.nn.functional.threshold)."""
    _need("threshold", input)
    y = _F.where(_F.gt(input, threshold), input, _F.add(_F.mul(input, 0.0), value))
    return _inplace_result(input, y, inplace)


def glu(input, dim=-1):
    """``a * sigmoid(b)`` with ``a, b`` the two halves of ``input`` along ``dim``
    (torch.nn.functional.glu)."""
    _need_float("glu", input)
    if input.ndim == 0:
        raise GradkitError("gradkit.nn.functional.glu: glu does not support scalars because "
                           "halving size must be even")
    n = input.shape[dim]
    if n % 2:
        raise GradkitError(f"gradkit.nn.functional.glu: Halving dimension must be even, but "
                           f"dimension {dim} is size {n}")
    a, b = _F.chunk(input, 2, dim)
    return _F.mul(a, _F.sigmoid(b))


def softmin(input, dim=None, dtype=None):
    """``softmax(-x, dim)`` (torch.nn.functional.softmin)."""
    _need("softmin", input)
    if dim is None:
        warnings.warn("gradkit.nn.functional.softmin: implicit dimension choice is deprecated; "
                      "pass dim=", stacklevel=2)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return _F.softmax(_F.neg(input), dim, dtype)


# ================================================================== losses
def _same_shape(name, input, target):
    if target.__class__ is not Tensor:
        target = as_tensor(target, dtype=input.dtype, device=input.device)
    if target.shape != input.shape:
        warnings.warn(f"gradkit.nn.functional.{name}: Using a target size ({target.shape}) that "
                      f"is different to the input size ({input.shape}). This will likely lead "
                      "to incorrect results due to broadcasting. Please ensure they have the "
                      "same size.", stacklevel=3)
    return target


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """``-(t log(x) + (1 - t) log(1 - x))`` of probabilities ``input``, each
    log clamped at -100 as torch does (torch.nn.functional.binary_cross_entropy).
    ``target`` must have the input's shape; ``weight`` broadcasts."""
    reduction = _reduction("binary_cross_entropy", reduction, size_average, reduce)
    _need_float("binary_cross_entropy", input)
    if target.__class__ is not Tensor:
        target = as_tensor(target, dtype=input.dtype, device=input.device)
    if target.shape != input.shape:
        raise ValueError(f"gradkit.nn.functional.binary_cross_entropy: Using a target size "
                         f"({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    B = input._B
    if B.type == "cpu" and input.array.size:  # free on the host; a device check would sync
        a = input.array
        if bool(B.any(B.logical_or(B.lt(a, 0), B.gt(a, 1)))):
            raise GradkitError("gradkit.nn.functional.binary_cross_entropy: all elements of "
                               "input should be between 0 and 1 (apply sigmoid first, or use "
                               "binary_cross_entropy_with_logits on the logits)")
    log_x = _F.clamp(_F.log(input), min=-100.0)
    log_1mx = _F.clamp(_F.log(_F.sub(1.0, input)), min=-100.0)
    loss = _F.neg(_F.add(_F.mul(target, log_x), _F.mul(_F.sub(1.0, target), log_1mx)))
    if weight is not None:
        loss = _F.mul(loss, weight)
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean (or sum, or elementwise) absolute error (torch.nn.functional.l1_loss)."""
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    _need("l1_loss", input)
    target = _same_shape("l1_loss", input, target)
    return _reduce(_F.abs(_F.sub(input, target)), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, with
    ``d = input - target``; ``beta=0`` is the L1 loss
    (torch.nn.functional.smooth_l1_loss)."""
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    _need("smooth_l1_loss", input)
    if beta < 0:
        raise ValueError("gradkit.nn.functional.smooth_l1_loss: smooth_l1_loss does not "
                         "support negative values for beta.")
    target = _same_shape("smooth_l1_loss", input, target)
    d = _F.sub(input, target)
    a = _F.abs(d)
    if beta == 0:
        return _reduce(a, reduction)
    quad = _F.div(_F.mul(_F.mul(d, d), 0.5), float(beta))
    loss = _F.where(_F.lt(a, float(beta)), quad, _F.sub(a, 0.5 * beta))
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``
    (torch.nn.functional.huber_loss)."""
    reduction = _reduction("huber_loss", reduction)
    _need("huber_loss", input)
    if delta <= 0:
        raise ValueError("gradkit.nn.functional.huber_loss: huber_loss does not support "
                         "non-positive values for delta.")
    target = _same_shape("huber_loss", input, target)
    d = _F.sub(input, target)
    a = _F.abs(d)
    loss = _F.where(_F.lt(a, float(delta)), _F.mul(_F.mul(d, d), 0.5),
                    _F.mul(_F.sub(a, 0.5 * delta), float(delta)))
    if weight is not None:
        loss = _F.mul(loss, weight)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of log-probabilities ``input`` from
    ``target`` (probabilities, or log-probabilities with ``log_target=True``):
    ``target * (log(target) - input)``, 0 where ``target == 0``;
    ``reduction="batchmean"`` divides the sum by the batch size
    (torch.nn.functional.kl_div)."""
    reduction = _reduction("kl_div", reduction, size_average, reduce,
                           ("none", "mean", "sum", "batchmean"))
    _need_float("kl_div", input)
    if reduction == "mean":
        warnings.warn("gradkit.nn.functional.kl_div: reduction: 'mean' divides the total loss "
                      "by both the batch size and the support size. 'batchmean' divides only "
                      "by the batch size, and aligns with the KL div math definition. 'mean' "
                      "will be changed to behave the same as 'batchmean' in the next major "
                      "release.", stacklevel=2)
    if target.__class__ is not Tensor:
        target = as_tensor(target, dtype=input.dtype, device=input.device)
    if log_target:
        loss = _F.mul(_F.exp(target), _F.sub(target, input))
    else:
        # xlogy(t, t) - t * input: the log runs on t where t > 0 and on 1 elsewhere
        pos = _F.gt(target, 0.0)
        safe = _F.where(pos, target, _F.add(_F.mul(target, 0.0), 1.0))
        xlogy = _F.where(pos, _F.mul(target, _F.log(safe)), _F.mul(target, 0.0))
        loss = _F.sub(xlogy, _F.mul(target, input))
    if reduction == "batchmean":
        total = _F.sum(loss)
        return _F.div(total, float(input.shape[0])) if input.ndim else total
    return _reduce(loss, reduction)


# ============================================================ similarity
def _clamped_norm(x, dim, eps):
    """||x|| along ``dim`` (kept), clamped below at ``eps`` in value only: the
    gradient is the unclamped norm's, as torch's ``clamp_min_`` under no_grad."""
    n = _F.norm(x, 2, dim, keepdim=True)
    return _F.add(n, _F.sub(_F.clamp(n, min=float(eps)), n).detach())


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1/||x1|| * x2/||x2||, dim)`` with each norm at least ``eps``; the
    inputs broadcast (torch.nn.functional.cosine_similarity)."""
    _need_float("cosine_similarity", x1)
    _need_float("cosine_similarity", x2)
    try:
        x1b, x2b = _F.broadcast_to(x1, _bshape(x1, x2)), _F.broadcast_to(x2, _bshape(x1, x2))
    except ValueError as e:
        raise GradkitError(f"gradkit.nn.functional.cosine_similarity: {e}") from None
    a = _F.div(x1b, _clamped_norm(x1b, dim, eps))
    b = _F.div(x2b, _clamped_norm(x2b, dim, eps))
    return _F.sum(_F.mul(a, b), dim)


def _bshape(a, b):
    sa, sb = tuple(a.shape), tuple(b.shape)
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    out = []
    for i, (p, q) in enumerate(zip(sa, sb)):
        if p != q and p != 1 and q != 1:
            raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast "
                             f"(dimension {i}: {p} vs {q})")
        out.append(q if p == 1 else p)
    return tuple(out)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` along the last dimension
    (torch.nn.functional.pairwise_distance)."""
    _need_float("pairwise_distance", x1)
    d = _F.add(_F.sub(x1, x2), float(eps))
    return _F.norm(d, p, -1, keepdim=keepdim)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim`` (torch.nn.functional.normalize)."""
    _need_float("normalize", input)
    denom = _F.clamp(_F.norm(input, p, dim, keepdim=True), min=float(eps))
    y = _F.div(input, denom)
    if out is not None:
        out.copy_(y)
        return out
    return y


# ==================================================================== pad
_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative amounts, crop) the last ``len(pad) // 2``
    dimensions: ``pad = (left_last, right_last, left_2nd_last, ...)``.
    ``mode``: 'constant' (fill with ``value``, default 0), 'reflect' (mirror
    without the edge), 'replicate' (repeat the edge), 'circular' (wrap)
    (torch.nn.functional.pad). Differentiable; any device."""
    _need("pad", input)
    if not isinstance(pad, (tuple, list)) or len(pad) % 2 or any(
            not isinstance(p, int) for p in pad):
        raise ValueError(f"gradkit.nn.functional.pad: pad must be a tuple of an even number of "
                         f"ints (left, right, ...), got {pad!r}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"gradkit.nn.functional.pad: mode {mode!r} is not one of "
                                  f"{_PAD_MODES}")
    k = len(pad) // 2
    if k > input.ndim:
        raise ValueError(f"gradkit.nn.functional.pad: padding length {len(pad)} is too large "
                         f"for an input of {input.ndim} dimensions (at most {2 * input.ndim})")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"gradkit.nn.functional.pad: padding mode {mode!r} doesn't take in "
                         "value argument")
    if mode != "constant" and not (1 <= k <= 3 and input.ndim in (k + 1, k + 2)):
        raise NotImplementedError(
            f"gradkit.nn.functional.pad: padding size {len(pad)} is not supported for a "
            f"{input.ndim}D input in mode {mode!r} (as torch): non-constant padding of the "
            "last 1, 2 or 3 dimensions needs a 2D/3D, 3D/4D or 4D/5D input respectively")
    out = input
    for j in range(k):
        d = input.ndim - 1 - j
        lo, hi = pad[2 * j], pad[2 * j + 1]
        if lo == 0 and hi == 0:
            continue
        out = _pad_dim(out, d, lo, hi, mode, 0.0 if value is None else value)
    return out


def _pad_dim(x, d, lo, hi, mode, value):
    n = x.shape[d]
    pre = (slice(None),) * d
    if mode == "constant":
        if lo < 0 or hi < 0:  # crop first
            x = _F.getitem(x, pre + (slice(max(-lo, 0), n - max(-hi, 0)),))
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for amount in (lo, None, hi):
            if amount is None:
                parts.append(x)
            elif amount > 0:
                shape = list(x.shape)
                shape[d] = amount
                B = x._B
                parts.append(const(B, B.full(tuple(shape), value, x.array.dtype)))
        return _F.cat(parts, d) if len(parts) > 1 else x
    if n + lo + hi < 0 or (n == 0 and lo + hi > 0):
        raise GradkitError(f"gradkit.nn.functional.pad: can't pad dimension {d} of size {n} "
                           f"by ({lo}, {hi}) in mode {mode!r}")
    if mode == "reflect" and (lo >= n or hi >= n):
        raise GradkitError(f"gradkit.nn.functional.pad: Padding size should be less than the "
                           f"corresponding input dimension, but got: padding ({lo}, {hi}) at "
                           f"dimension {d} of input {x.shape} (mode 'reflect')")
    if mode == "circular" and (lo > n or hi > n):
        raise GradkitError(f"gradkit.nn.functional.pad: Padding value causes wrapping around more "
                           f"than once: padding ({lo}, {hi}) at dimension {d} of size {n}")
    idx = []
    for i in range(-lo, n + hi):
        if mode == "reflect":
            j = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
        elif mode == "replicate":
            j = min(max(i, 0), n - 1)
        else:
            j = i % n
        idx.append(j)
    it = tensor(idx, dtype="int64", device=x.device) if idx else None
    if it is None:
        return _F.getitem(x, pre + (slice(0, 0),))
    return _F.getitem(x, pre + (it,))



# ============================================================== embedding
def embedding_renorm_(weight, input, max_norm, norm_type=2.0):
    """In place, scale each row of ``weight`` that ``input`` indexes and whose
    ``norm_type``-norm exceeds ``max_norm`` to ``max_norm / (norm + 1e-7)`` of
    itself (torch.embedding_renorm_). Not recorded by autograd; bumps
    ``weight``'s version. No host round trip: unused rows are multiplied by 1."""
    B = weight._B
    dt = weight.array.dtype
    idx = input.array
    n = weight.array.shape[0]
    counts = B.scatter_add(B.zeros((n,), dt), idx, B.ones(tuple(idx.shape), dt))
    w = const(B, weight.array)
    norms = _F.norm(w, norm_type, 1, keepdim=True)
    over = _F.logical_and(_F.gt(norms, float(max_norm)),
                          _F.gt(_F.reshape(const(B, counts), (n, 1)), 0.0))
    scale = _F.where(over, _F.div(float(max_norm), _F.add(norms, 1e-7)),
                     _F.add(_F.mul(norms, 0.0), 1.0))
    B.setitem(weight.array, Ellipsis, _F.mul(w, scale).array)
    weight._vc[0] += 1
    return weight
