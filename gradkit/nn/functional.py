"""``gk.nn.functional``: activations, losses and layers as functions
(as ``torch.nn.functional``).

Everything here is a composition of gradkit ops (the softmax family and GELU
are the core ops ``gk.softmax``, ``gk.log_softmax``, ``gk.gelu``), except
``linear``, a primitive whose VJP writes the weight's gradient in the weight's
own layout. The losses are stable for large inputs (log-sum-exp with the row
max subtracted; log-sigmoid through ``exp(-|x|)``) and never synchronize with
the device: ``ignore_index``, class weights and label smoothing go into one
constant matrix, so no value is read back to the host.
"""
import warnings

from ..creation import as_tensor, rand
from ..errors import GradkitError
from ..graph import mode as _mode
from ..ops import functional as _F
from ..ops import nnfused as _nnfused
from ..ops.torch_ops import one_hot  # noqa: F401  (torch.nn.functional.one_hot)
from ..tensor import Tensor, const

_REDUCTIONS = ("none", "mean", "sum")


def _check_tensor(name, x, what="input"):
    if x.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.functional.{name}: {what} must be a Tensor, got "
                        f"{type(x).__name__}")


def _reduction(name, reduction, size_average=None, reduce=None):
    if size_average is not None or reduce is not None:  # torch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"gradkit.nn.functional.{name}: {reduction!r} is not a valid value "
                         "for reduction; use 'none', 'mean' or 'sum'")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return _F.mean(loss)
    if reduction == "sum":
        return _F.sum(loss)
    return loss


# ============================================================== activations
def relu(input, inplace=False):
    """``max(input, 0)`` elementwise, as ``gk.relu`` (``inplace`` is accepted for torch's
    signature; the result is a new tensor). Differentiable; cpu and cuda.
    PyTorch: mirrors ``torch.nn.functional.relu``."""
    return _F.relu(input)


def tanh(input):
    """Hyperbolic tangent elementwise, as ``gk.tanh``. Differentiable; cpu and cuda.
    PyTorch: mirrors ``torch.nn.functional.tanh``."""
    return _F.tanh(input)


def sigmoid(input):
    """Logistic sigmoid elementwise, as ``gk.sigmoid``. Differentiable; cpu and cuda.
    PyTorch: mirrors ``torch.nn.functional.sigmoid``."""
    return _F.sigmoid(input)


def gelu(input, approximate="none"):
    """``x * Phi(x)`` (``approximate="tanh"``: the tanh approximation)."""
    return _F.gelu(input, approximate=approximate)


def _softmax_dim(name, ndim, dim):
    if dim is None:
        warnings.warn(f"gradkit.nn.functional.{name}: implicit dimension choice is "
                      "deprecated; pass dim=", stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None, dtype=None):
    """``exp(x) / sum(exp(x), dim)``, computed stably in one pass; ``dim=None`` picks torch's
    legacy default (0 for 0-, 1- and 3-d input, else 1). Differentiable to any order;
    cpu and cuda. PyTorch: mirrors ``torch.nn.functional.softmax``."""
    _check_tensor("softmax", input)
    return _F.softmax(input, _softmax_dim("softmax", input.ndim, dim), dtype)


def log_softmax(input, dim=None, dtype=None):
    """``log(softmax(input, dim))``, computed stably; ``dim=None`` as in ``softmax``.
    Differentiable to any order; cpu and cuda. PyTorch: mirrors
    ``torch.nn.functional.log_softmax``."""
    _check_tensor("log_softmax", input)
    return _F.log_softmax(input, _softmax_dim("log_softmax", input.ndim, dim), dtype)


def _log_sigmoid(x):
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``: no overflow for any x."""
    return _F.sub(_F.minimum(x, 0.0), _F.log1p(_F.exp(_F.neg(_F.abs(x)))))


# ================================================================== losses
def _class_target(name, x, target, ignore_index, cdim):
    """``target``'s raw array, checked as class indices for ``x`` (device,
    integer dtype, shape, range outside ``ignore_index``)."""
    B = x._B
    C = x.shape[cdim]
    if target.__class__ is not Tensor:
        target = as_tensor(target, device=x.device)
    if target._B is not B:
        raise GradkitError(f"gradkit.nn.functional.{name}: input is on {B.device_str} but "
                           f"target is on {target._B.device_str}; move one with .to(device)")
    if not B.is_integral(target.array.dtype):
        raise GradkitError(
            f"gradkit.nn.functional.{name}: class-index targets must be an integer tensor, got "
            f"{target.dtype_name}; use target.long() (or pass class probabilities with the "
            f"input's shape {x.shape})")
    want = x.shape[:cdim] + x.shape[cdim + 1:]
    if target.shape != want:
        raise ValueError(f"gradkit.nn.functional.{name}: expected target of shape {want} for "
                         f"input of shape {x.shape} (classes along dim {cdim}), got "
                         f"{target.shape}")
    t = target.array
    if B.type == "cpu" and t.size:  # free on the host; a device check would sync
        if int(B.amin(t)) >= 0 and int(B.amax(t)) < C:   # the common case: two reductions
            return t
        bad = B.logical_and(B.logical_or(B.lt(t, 0), B.ge(t, C)), B.ne(t, ignore_index))
        if bool(B.any(bad)):
            raise IndexError(f"gradkit.nn.functional.{name}: target holds class indices "
                             f"outside [0, {C}) (other than ignore_index={ignore_index})")
    elif B.type != "cpu":   # on the device: checked without a host sync
        B.check_index(t, 0, C, f"nn.functional.{name}", ignore=ignore_index)
    return t


def _class_matrix(name, x, target, weight, ignore_index, label_smoothing, cdim):
    """The constant matrix M (shaped like ``x``) with ``loss_i = -sum_c M[i,c] *
    logp[i,c]``, and the per-sample weights ``w[y_i]`` (0 where ignored)."""
    B = x._B
    C = x.shape[cdim]
    t = _class_target(name, x, target, ignore_index, cdim)
    shape = [1] * x.ndim
    shape[cdim] = C
    cls = B.reshape(B.arange(0, C, 1, t.dtype), tuple(shape))
    tk = B.unsqueeze(t, cdim)
    valid = B.ne(tk, ignore_index)
    hit = B.astype(B.logical_and(B.eq(tk, cls), valid), x.array.dtype)
    M = const(B, hit)
    validf = const(B, B.astype(valid, x.array.dtype))
    if weight is not None:
        _check_tensor(name, weight, "weight")
        if tuple(weight.shape) != (C,):
            raise ValueError(f"gradkit.nn.functional.{name}: weight must have shape ({C},) "
                             f"(one per class), got {weight.shape}")
        wb = _F.reshape(weight, tuple(shape))
        M = _F.mul(M, wb)
    wy = _F.sum(M, cdim)
    if label_smoothing:
        smooth = validf if weight is None else _F.mul(validf, wb)
        M = _F.add(_F.mul(M, 1.0 - label_smoothing), _F.mul(smooth, label_smoothing / C))
    return M, wy


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices, from log-probabilities ``input``
    (N, C, d1, ...) or (C,)."""
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    return _nll("nll_loss", input, target, weight, ignore_index, reduction, 0.0)


def _nll(name, logp, target, weight, ignore_index, reduction, label_smoothing):
    _check_tensor(name, logp)
    if logp.ndim == 0:
        raise ValueError(f"gradkit.nn.functional.{name}: input must have a class dimension, "
                         "got a 0-d tensor")
    cdim = 1 if logp.ndim >= 2 else 0
    M, wy = _class_matrix(name, logp, target, weight, ignore_index, label_smoothing, cdim)
    loss = _F.neg(_F.sum(_F.mul(logp, M), cdim))
    if reduction == "none":
        return loss
    total = _F.sum(loss)
    if reduction == "sum":
        return total
    if wy.numel() == 0:   # an empty batch: torch's nan, without a 0/0 warning
        return _F.mul(total, float("nan"))
    return _F.div(total, _F.sum(wy))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C, d1, ...) or (C,) against
    class indices (``target`` of shape (N, d1, ...)) or class probabilities
    (``target`` shaped like ``input``), as ``torch.nn.functional.cross_entropy``:
    ``weight`` per class, ``ignore_index`` for class indices, ``label_smoothing``
    in [0, 1], ``reduction`` 'mean' (weighted by the targets' class weights),
    'sum' or 'none'."""
    reduction = _reduction("cross_entropy", reduction, size_average, reduce)
    _check_tensor("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"gradkit.nn.functional.cross_entropy: label_smoothing must be "
                         f"between 0.0 and 1.0, got {label_smoothing}")
    if input.ndim == 0:
        raise ValueError("gradkit.nn.functional.cross_entropy: input must have a class "
                         "dimension, got a 0-d tensor")
    cdim = 1 if input.ndim >= 2 else 0
    soft = target.__class__ is Tensor and target._B.is_floating(target.array.dtype)
    if weight is None and not label_smoothing and not soft and input.ndim == 2 \
            and input.shape[0] and input.dtype_name in ("float32", "float64"):
        # the common case, one fused node (log_softmax, pick and reduction)
        t = _class_target("cross_entropy", input, target, ignore_index, cdim)
        return _F.cross_entropy_index(input, t, ignore_index, reduction)
    logp = log_softmax(input, cdim)
    if soft:
        return _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, cdim)
    return _nll("cross_entropy", logp, target, weight, ignore_index, reduction,
                label_smoothing)


def _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, cdim):
    if target.shape != logp.shape:
        raise GradkitError(
            f"gradkit.nn.functional.cross_entropy: got a {target.dtype_name} target of shape "
            f"{target.shape} for input of shape {logp.shape}: class-index targets must be an "
            f"integer tensor (use target.long()); class-probability targets must have the "
            f"input's shape")
    C = logp.shape[cdim]
    if label_smoothing:
        target = _F.add(_F.mul(target, 1.0 - label_smoothing), label_smoothing / C)
    prod = _F.mul(logp, target)
    if weight is not None:
        shape = [1] * logp.ndim
        shape[cdim] = C
        prod = _F.mul(prod, _F.reshape(weight, tuple(shape)))
    loss = _F.neg(_F.sum(prod, cdim))
    if reduction == "none":
        return loss
    total = _F.sum(loss)
    if reduction == "sum":
        return total
    n = logp.numel() // C if C else 0
    return _F.div(total, float(n)) if n else _F.mul(total, float("nan"))


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean (or sum, or elementwise) squared error."""
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    _check_tensor("mse_loss", input)
    if target.__class__ is Tensor and target.shape != input.shape:
        warnings.warn(f"gradkit.nn.functional.mse_loss: target size {target.shape} differs "
                      f"from input size {input.shape}; they are broadcast, which is "
                      "likely not what you want", stacklevel=2)
    d = _F.sub(input, target)
    return _reduce(_F.mul(d, d), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable formula:
    ``(1 - t) * x - (1 + (pos_weight - 1) * t) * log_sigmoid(x)``, times ``weight``."""
    reduction = _reduction("binary_cross_entropy_with_logits", reduction, size_average, reduce)
    _check_tensor("binary_cross_entropy_with_logits", input)
    if target.__class__ is Tensor and target.shape != input.shape:
        raise ValueError(f"gradkit.nn.functional.binary_cross_entropy_with_logits: target "
                         f"size {target.shape} must be the same as input size {input.shape}")
    ls = _log_sigmoid(input)
    if pos_weight is not None:
        ls = _F.mul(ls, _F.add(_F.mul(_F.sub(pos_weight, 1.0), target), 1.0))
    loss = _F.sub(_F.mul(_F.sub(1.0, target), input), ls)
    if weight is not None:
        loss = _F.mul(loss, weight)
    return _reduce(loss, reduction)


# ================================================================== layers
linear = _nnfused.linear   # a primitive: gradkit/ops/nnfused.py


# layer_norm: gradkit/nn/normalization.py (a fused primitive, like batch_norm)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p)
    (training only); the mask comes from gradkit's generator (``gk.manual_seed``)."""
    _check_tensor("dropout", input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    B = input._B
    u = rand(*input.shape, dtype=input.dtype, device=input.device).array
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    m = const(B, B.mul(B.astype(B.ge(u, p), input.array.dtype), scale))
    if inplace:
        return _F.mul_(input, m)
    return _F.mul(input, m)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` at the integer indices ``input`` (any shape); the
    ``padding_idx`` row gets no gradient. With ``max_norm``, the rows that
    ``input`` uses and whose ``norm_type``-norm exceeds it are first scaled in
    place to norm ``max_norm`` (as torch's ``embedding_renorm_``). Not supported:
    ``scale_grad_by_freq``, ``sparse``."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("gradkit.nn.functional.embedding: scale_grad_by_freq and "
                                  "sparse gradients are not supported; leave them False")
    _check_tensor("embedding", weight, "weight")
    if input.__class__ is not Tensor:
        input = as_tensor(input, device=weight.device)
    B = weight._B
    if not B.is_integral(input.array.dtype) or input.array.dtype == B.bool_dtype:
        raise GradkitError(f"gradkit.nn.functional.embedding: indices must be an integer "
                           f"tensor (int64 or int32), got {input.dtype_name}; use .long()")
    if input._B is not B:
        raise GradkitError(f"gradkit.nn.functional.embedding: indices are on "
                           f"{input._B.device_str} but weight is on {B.device_str}")
    if weight.ndim != 2:
        raise GradkitError(f"gradkit.nn.functional.embedding: weight must be 2-D "
                           f"(num_embeddings, embedding_dim), got shape {weight.shape}")
    if B.type == "cpu" and input.array.size:
        n = weight.shape[0]
        if bool(B.any(B.logical_or(B.lt(input.array, 0), B.ge(input.array, n)))):
            raise IndexError(f"gradkit.nn.functional.embedding: index out of range: indices "
                             f"must be in [0, {n}) for a weight of shape {weight.shape}")
    elif B.type != "cpu":   # on the device: checked without a host sync
        B.check_index(input.array, 0, weight.shape[0], "nn.functional.embedding")
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = _F.getitem(weight, input)
    if padding_idx is not None and _mode.enabled and weight.requires_grad:
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        keep = const(B, B.unsqueeze(B.ne(input.array, padding_idx), -1))
        out = _F.where(keep, out, out.detach())
    return out


# More of torch.nn.functional (activations, losses, pad, similarity): compositions
# of gradkit ops kept in their own module; re-exported here.
from .functional_extra import *  # noqa: E402,F401,F403
from .functional_extra import embedding_renorm_ as _embedding_renorm_  # noqa: E402

# ====================================================== attention (issue 13)
from ..ops.attention import scaled_dot_product_attention  # noqa: E402

# image layers: convolution, pooling, pixel shuffle, interpolation (gradkit/nn/image.py)
from .image import *  # noqa: E402,F401,F403

# batch, instance and group normalization (gradkit/nn/normalization.py)
from .normalization import *  # noqa: E402,F401,F403
