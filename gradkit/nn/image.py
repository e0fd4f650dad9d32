"""Image layers as functions (``gk.nn.functional``): convolution, pooling,
pixel shuffle, interpolation. Names, arguments, defaults, shapes and errors as
``torch.nn.functional``.

Convolution and max pooling are primitives (``gradkit/ops/convolution.py``);
everything else is a composition of differentiable ops: average pooling is a
depthwise convolution with a constant kernel, adaptive average pooling and
bilinear interpolation are separable (``A_h @ x @ A_w^T`` with constant matrices),
adaptive max pooling and nearest interpolation gather with integer indices.
Every op accepts an unbatched input (no N dim) as torch does. All run on every
device and are differentiable to any order (max pooling: almost everywhere).
"""
import math
from collections import OrderedDict

from ..ops import functional as _F
from ..ops.core import const
from ..tensor import Tensor, GradkitError
from ..creation import tensor as _tensor, ones as _ones
from .functional_extra import pad as _pad

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d",
           "adaptive_avg_pool2d", "adaptive_max_pool2d", "pixel_shuffle", "pixel_unshuffle",
           "interpolate"]


def _name(op):
    return f"gradkit.nn.functional.{op}"


_TABLES = OrderedDict()   # constant index/weight tables, built on the host once per geometry


def _table(key, build, like, dtype=None):
    """A constant Tensor on ``like``'s device (``dtype`` None: int64), made from the
    nested list ``build()`` the first time and then reused: a layer called every
    step does not copy the same small table to the GPU every step."""
    k = (key, like.device.type, like.device.index, None if dtype is None else str(dtype))
    t = _TABLES.get(k)
    if t is None:
        t = _tensor(build(), dtype=dtype, device=like.device)
        _TABLES[k] = t
        if len(_TABLES) > 256:
            _TABLES.popitem(last=False)
    return t


def _tuple(op, v, n, what):
    if isinstance(v, bool) or not isinstance(v, (int, tuple, list)):
        raise TypeError(f"{_name(op)}: {what} must be an int or a tuple of {n} ints, got {v!r}")
    t = (v,) * n if isinstance(v, int) else tuple(v)
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n or not all(isinstance(i, int) and not isinstance(i, bool) for i in t):
        raise ValueError(f"{_name(op)}: {what} must be an int or a tuple of {n} ints, got {v!r}")
    return t


def _batched(op, x, nd):
    """(x with a batch dim, whether one was added); checks the rank."""
    if x.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == nd + 1:
        return _F.unsqueeze(x, 0), True
    if x.ndim != nd + 2:
        raise GradkitError(f"{_name(op)}: expected a {nd + 1}D (unbatched) or {nd + 2}D (batched) "
                           f"input, but got input of size {list(x.shape)}")
    return x, False


def _same_place(op, x, other, what):
    if other._B is not x._B:
        raise GradkitError(f"{_name(op)}: input is on {x._B.device_str} but {what} is on "
                           f"{other._B.device_str}; move one with .to(device)")
    if other.array.dtype != x.array.dtype:
        raise GradkitError(f"{_name(op)}: input type ({x.dtype_name}) and {what} type "
                           f"({other.dtype_name}) should be the same; convert one with .to(dtype)")


def _add_bias(op, y, bias, x):
    if bias is None:
        return y
    _same_place(op, x, bias, "bias")
    if bias.shape != (y.shape[1],):
        raise GradkitError(f"{_name(op)}: bias must have shape ({y.shape[1]},) (one per output "
                           f"channel), got {tuple(bias.shape)}")
    return _F.add(y, _F.reshape(bias, (1, -1) + (1,) * (y.ndim - 2)))


def _check_conv(op, x, weight, nd, groups, transposed=False):
    if weight.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != nd + 2:
        raise GradkitError(f"{_name(op)}: expected a {nd + 2}D weight, got weight of size "
                           f"{list(weight.shape)}")
    _same_place(op, x, weight, "weight")
    if not x._B.is_floating(x.array.dtype):
        raise GradkitError(f"{_name(op)}: expected a floating point input, got {x.dtype_name}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{_name(op)}: groups must be a positive integer, got {groups!r}")
    C = x.shape[1]
    if transposed:
        if weight.shape[0] != C:
            raise GradkitError(f"{_name(op)}: Given transposed=1, weight of size "
                               f"{list(weight.shape)}, expected input{list(x.shape)} to have "
                               f"{weight.shape[0]} channels, but got {C} channels instead")
        if C % groups:
            raise ValueError(f"{_name(op)}: in_channels ({C}) must be divisible by groups ({groups})")
    else:
        if weight.shape[1] * groups != C:
            raise GradkitError(f"{_name(op)}: Given groups={groups}, weight of size "
                               f"{list(weight.shape)}, expected input{list(x.shape)} to have "
                               f"{weight.shape[1] * groups} channels, but got {C} channels instead")
        if weight.shape[0] % groups:
            raise ValueError(f"{_name(op)}: out_channels ({weight.shape[0]}) must be divisible by "
                             f"groups ({groups})")


def _conv_padding(op, padding, K, stride, dilation):
    nd = len(K)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{_name(op)}: padding='same' is not supported for strided "
                                 "convolutions")
            out = []
            for k, d in zip(K, dilation):  # torch: the extra pixel goes on the high side
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ValueError(f"{_name(op)}: Invalid padding string {padding!r}, should be one of "
                         "'valid', 'same'")
    p = _tuple(op, padding, nd, "padding")
    if any(v < 0 for v in p):
        raise ValueError(f"{_name(op)}: negative padding is not supported, got {padding!r}")
    return tuple((v, v) for v in p)


def _convnd(op, nd, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = _batched(op, input, nd)
    _check_conv(op, x, weight, nd, groups)
    K = tuple(weight.shape[2:])
    stride = _tuple(op, stride, nd, "stride")
    dilation = _tuple(op, dilation, nd, "dilation")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"{_name(op)}: stride and dilation must be positive, got stride={stride}, "
                         f"dilation={dilation}")
    pad = _conv_padding(op, padding, K, stride, dilation)
    sp = x.shape[2:]
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(sp, pad))
    eff = tuple(d * (k - 1) + 1 for k, d in zip(K, dilation))
    if any(p < e for p, e in zip(padded, eff)):
        raise GradkitError(f"{_name(op)}: Calculated padded input size per channel: "
                           f"({' x '.join(map(str, padded))}). Kernel size: "
                           f"({' x '.join(map(str, eff))}). Kernel size can't be greater than "
                           "actual input size")
    y = _add_bias(op, _F.conv(x, weight, stride, pad, dilation, groups), bias, x)
    return _F.squeeze(y, 0) if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation over (N, C_in, L) (or (C_in, L)) with ``weight``
    (C_out, C_in/groups, k) and optional ``bias`` (C_out,). ``padding``: int, tuple,
    'valid' or 'same' (stride 1). Result (N, C_out, L_out), input dtype. Differentiable
    in input, weight and bias to any order; every device. Mirrors torch.nn.functional.conv1d."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation over (N, C_in, H, W) (or (C_in, H, W)) with ``weight``
    (C_out, C_in/groups, kH, kW) and optional ``bias`` (C_out,); ``stride``,
    ``padding`` (int, pair, 'valid', or 'same' with stride 1), ``dilation``: int or
    pair; ``groups`` splits the channels. Result (N, C_out, H_out, W_out) in the
    input's dtype. Forward and both gradients are GEMMs over an im2col taken as a
    strided view; differentiable to any order; every device. Mirrors
    torch.nn.functional.conv2d (padding_mode other than zeros: pad first)."""
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the gradient of conv2d with respect to its
    input) of (N, C_in, H, W) with ``weight`` (C_in, C_out/groups, kH, kW). Output
    size ``(H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.
    Differentiable to any order; every device. Mirrors
    torch.nn.functional.conv_transpose2d (output_padding must be smaller than stride or
    dilation)."""
    op = "conv_transpose2d"
    x, unbatched = _batched(op, input, 2)
    _check_conv(op, x, weight, 2, groups, transposed=True)
    K = tuple(weight.shape[2:])
    stride = _tuple(op, stride, 2, "stride")
    dilation = _tuple(op, dilation, 2, "dilation")
    pad = _tuple(op, padding, 2, "padding")
    opad = _tuple(op, output_padding, 2, "output_padding")
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation) or any(p < 0 for p in pad):
        raise ValueError(f"{_name(op)}: stride and dilation must be positive and padding "
                         f"non-negative, got stride={stride}, dilation={dilation}, padding={pad}")
    if any(o < 0 or o >= max(s, d) for o, s, d in zip(opad, stride, dilation)):
        raise ValueError(f"{_name(op)}: output padding must be smaller than either stride or "
                         f"dilation, but got output_padding={opad}, stride={stride} and "
                         f"dilation={dilation}")
    out_sp = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1
                   for n, s, p, d, k, o in zip(x.shape[2:], stride, pad, dilation, K, opad))
    if any(v <= 0 for v in out_sp):
        raise GradkitError(f"{_name(op)}: the output size {out_sp} is not positive for input "
                           f"{list(x.shape)}, kernel {K}, stride {stride}, padding {pad}")
    # output_padding o adds rows at the high end. The first min(o, p) of them can
    # receive contributions (the windows' high padding overlaps them): they are part
    # of the adjoint's geometry, with the high pad reduced to p - min(o, p) so that
    # conv(h, w) of the backward pass sweeps exactly the input's positions (o may
    # reach the stride when dilation is larger: o < max(stride, dilation), as torch).
    # The remaining max(0, o - p) rows get nothing and are zeros padded on after.
    cut = tuple(min(o, p) for o, p in zip(opad, pad))
    tail = tuple(o - c for o, c in zip(opad, cut))
    in_shape = (x.shape[0], weight.shape[1] * groups) + tuple(
        v - t for v, t in zip(out_sp, tail))
    y = _F.conv_input_grad(x, weight, stride, tuple((p, p - c) for p, c in zip(pad, cut)),
                           dilation, groups, in_shape)
    if any(tail):
        y = _pad(y, [v for t in reversed(tail) for v in (0, t)])
    y = _add_bias(op, y, bias, x)
    return _F.squeeze(y, 0) if unbatched else y


# ================================================================= pooling
def _pool_geometry(op, sp, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, (lo, hi) pads, dilation, output size) with torch's rules:
    the high side grows in ceil mode; a last window starting in the padding is dropped."""
    nd = len(sp)
    K = _tuple(op, kernel_size, nd, "kernel_size")
    S = K if stride is None or stride == () or stride == [] else _tuple(op, stride, nd, "stride")
    P = _tuple(op, padding, nd, "padding")
    D = _tuple(op, dilation, nd, "dilation")
    if any(v <= 0 for v in K + S + D):
        raise ValueError(f"{_name(op)}: kernel_size, stride and dilation must be greater than "
                         f"zero, got kernel_size={K}, stride={S}, dilation={D}")
    pads, OS = [], []
    for n, k, s, p, d in zip(sp, K, S, P, D):
        if p < 0 or p > k // 2:
            raise ValueError(f"{_name(op)}: pad should be at most half of effective kernel size, "
                             f"but got pad={p}, kernel_size={k} and dilation={d}")
        span = n + 2 * p - d * (k - 1) - 1
        o = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:
            o -= 1
        if o < 1:
            raise GradkitError(f"{_name(op)}: output size is too small: input {tuple(sp)}, "
                               f"kernel_size {K}, stride {S}, padding {P}, dilation {D}")
        pads.append((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)))
        OS.append(o)
    return K, S, tuple(pads), D, tuple(OS)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each (kH, kW) window of (N, C, H, W) (or (C, H, W)); ``stride``
    defaults to ``kernel_size``; padding never wins. Result (N, C, H_out, W_out),
    and with ``return_indices`` also the int64 flat index ``h * W + w`` of each max
    (torch's). Gradient flows to the max (first one on ties); any order; every
    device. Mirrors torch.nn.functional.max_pool2d."""
    op = "max_pool2d"
    x, unbatched = _batched(op, input, 2)
    K, S, P, D, _ = _pool_geometry(op, x.shape[2:], kernel_size, stride, padding, dilation,
                                   ceil_mode)
    v, idx = _F.max_pool(x, K, S, P, D)
    if unbatched:
        v, idx = _F.squeeze(v, 0), _F.squeeze(idx, 0)
    return (v, idx) if return_indices else v


def _axis_counts(n, k, s, p, o, include_pad):
    """Per output position along one axis: how many inputs its window averages."""
    out = []
    for i in range(o):
        start = i * s - p
        end = min(start + k, n + p)
        if not include_pad:
            start, end = max(start, 0), min(end, n)
        out.append(end - start)
    return out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each (kH, kW) window of (N, C, H, W) (or (C, H, W)); zero padding
    counts unless ``count_include_pad=False``; ``divisor_override`` replaces the
    count. Result (N, C, H_out, W_out). A depthwise convolution with a constant
    kernel, so differentiable to any order; every device. Mirrors
    torch.nn.functional.avg_pool2d."""
    op = "avg_pool2d"
    x, unbatched = _batched(op, input, 2)
    K, S, P, D, OS = _pool_geometry(op, x.shape[2:], kernel_size, stride, padding, 1, ceil_mode)
    C = x.shape[1]
    w = _ones(C, 1, *K, dtype=x.dtype, device=x.device)
    y = _F.conv(x, w, S, P, D, C)
    if divisor_override:
        y = _F.div(y, float(divisor_override))
    else:
        ch = _axis_counts(x.shape[2], K[0], S[0], P[0][0], OS[0], count_include_pad)
        cw = _axis_counts(x.shape[3], K[1], S[1], P[1][0], OS[1], count_include_pad)
        if len(set(ch)) == 1 and len(set(cw)) == 1:
            y = _F.div(y, float(ch[0] * cw[0]))
        else:
            cnt = _table(("avg", tuple(ch), tuple(cw)),
                         lambda: [[float(a * b) for b in cw] for a in ch], x, x.dtype)
            y = _F.div(y, cnt)
    return _F.squeeze(y, 0) if unbatched else y


def _out_size(op, output_size, sp):
    t = (output_size,) * len(sp) if isinstance(output_size, int) or output_size is None \
        else tuple(output_size)
    if len(t) != len(sp):
        raise ValueError(f"{_name(op)}: output_size must be an int or a tuple of {len(sp)}, got "
                         f"{output_size!r}")
    t = tuple(n if o is None else o for o, n in zip(t, sp))
    if any(not isinstance(o, int) or o < 1 for o in t):
        raise ValueError(f"{_name(op)}: output_size must be positive, got {output_size!r}")
    return t


def _adaptive_bounds(n, o):
    return [((i * n) // o, -((-(i + 1) * n) // o)) for i in range(o)]


def _avg_matrix(x, n, o):
    return _table(("adaptive_avg", n, o), lambda: [
        [1.0 / (b - a) if a <= j < b else 0.0 for j in range(n)]
        for a, b in _adaptive_bounds(n, o)], x, x.dtype)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) (or (C, H, W)) to ``output_size`` (int or
    pair; None keeps that dim): window i spans [floor(i H / out), ceil((i+1) H / out)).
    Result (N, C, oH, oW); computed as ``A_h @ x @ A_w^T``; any order; every device.
    Mirrors torch.nn.functional.adaptive_avg_pool2d."""
    op = "adaptive_avg_pool2d"
    x, unbatched = _batched(op, input, 2)
    H, W = x.shape[2:]
    oh, ow = _out_size(op, output_size, (H, W))
    y = x
    if oh != H:
        y = _F.matmul(_avg_matrix(x, H, oh), y)
    if ow != W:
        y = _F.matmul(y, _F.transpose(_avg_matrix(x, W, ow), 0, 1))
    if y is x:
        y = _F.mul(x, 1.0)
    return _F.squeeze(y, 0) if unbatched else y


def _index_table(x, n, o):
    """(o, kmax) int64 indices of each adaptive window, the last one repeated to pad."""
    b = _adaptive_bounds(n, o)
    k = max(e - s for s, e in b)
    rows = [[min(s + t, e - 1) for t in range(k)] for s, e in b]
    return rows, _table(("adaptive_index", n, o), lambda: rows, x), k


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (N, C, H, W) (or (C, H, W)) to ``output_size``, windows as
    adaptive_avg_pool2d; with ``return_indices`` also the int64 flat index of each
    max. Differentiable; every device. Mirrors torch.nn.functional.adaptive_max_pool2d."""
    op = "adaptive_max_pool2d"
    x, unbatched = _batched(op, input, 2)
    N, C, H, W = x.shape
    oh, ow = _out_size(op, output_size, (H, W))
    if H % oh == 0 and W % ow == 0:  # uniform windows: plain max pooling
        kh, kw = H // oh, W // ow
        v, idx = _F.max_pool(x, (kh, kw), (kh, kw), ((0, 0), (0, 0)), (1, 1))
    else:
        th, ih, kh = _index_table(x, H, oh)
        tw, iw, kw = _index_table(x, W, ow)
        g = _F.getitem(x, (slice(None), slice(None), ih))          # (N, C, oh, kh, W)
        g = _F.getitem(g, (Ellipsis, iw))                          # (N, C, oh, kh, ow, kw)
        g = _F.reshape(_F.permute(g, (0, 1, 2, 4, 3, 5)), (N, C, oh, ow, kh * kw))
        v, k = _F.max(g, -1)
        # flat plane index of window slot t at output (i, j), tabulated on the host
        tab = _table(("adaptive_flat", H, W, oh, ow), lambda: [
            [[th[i][t // kw] * W + tw[j][t % kw] for t in range(kh * kw)] for j in range(ow)]
            for i in range(oh)], x)
        B = x._B
        tab = B.expand(B.reshape(tab.array, (1, 1, oh, ow, kh * kw)), (N, C, oh, ow, kh * kw))
        idx = const(B, B.take_along_dim(tab, k.array, -1, False))
    if unbatched:
        v, idx = _F.squeeze(v, 0), _F.squeeze(idx, 0)
    return (v, idx) if return_indices else v


# ================================================================ reshuffles
def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r), as torch.nn.functional.pixel_shuffle
    (a reshape and a permute: differentiable, every device)."""
    op = "pixel_shuffle"
    r = upscale_factor
    if input.__class__ is not Tensor or input.ndim < 3:
        raise GradkitError(f"{_name(op)}: expected an input with at least 3 dims, got "
                           f"{getattr(input, 'shape', type(input).__name__)}")
    *lead, C, H, W = input.shape
    if not isinstance(r, int) or r < 1 or C % (r * r):
        raise GradkitError(f"{_name(op)}: the channel dim ({C}) must be divisible by the square "
                           f"of upscale_factor ({r})")
    lead = tuple(lead)
    n = len(lead)
    y = _F.reshape(input, lead + (C // (r * r), r, r, H, W))
    y = _F.permute(y, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return _F.reshape(y, lead + (C // (r * r), H * r, W * r))


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of pixel_shuffle, as
    torch.nn.functional.pixel_unshuffle."""
    op = "pixel_unshuffle"
    r = downscale_factor
    if input.__class__ is not Tensor or input.ndim < 3:
        raise GradkitError(f"{_name(op)}: expected an input with at least 3 dims")
    *lead, C, H, W = input.shape
    if not isinstance(r, int) or r < 1 or H % r or W % r:
        raise GradkitError(f"{_name(op)}: height ({H}) and width ({W}) must be divisible by "
                           f"downscale_factor ({r})")
    lead = tuple(lead)
    n = len(lead)
    y = _F.reshape(input, lead + (C, H // r, r, W // r, r))
    y = _F.permute(y, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return _F.reshape(y, lead + (C * r * r, H // r, W // r))


# ============================================================= interpolation
def _scales(op, sp, size, scale_factor, recompute):
    nd = len(sp)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{_name(op)}: either size or scale_factor should be defined (not both)")
    if size is not None:
        out = (size,) * nd if isinstance(size, int) else tuple(size)
        if len(out) != nd:
            raise ValueError(f"{_name(op)}: size must have {nd} elements for a "
                             f"{nd + 2}-D input, got {size!r}")
        return out, tuple(n / o for n, o in zip(sp, out))
    sf = (float(scale_factor),) * nd if isinstance(scale_factor, (int, float)) \
        else tuple(float(s) for s in scale_factor)
    if len(sf) != nd:
        raise ValueError(f"{_name(op)}: scale_factor must have {nd} elements, got {scale_factor!r}")
    out = tuple(int(math.floor(n * s)) for n, s in zip(sp, sf))
    if recompute:
        return out, tuple(n / o for n, o in zip(sp, out))
    return out, tuple(1.0 / s for s in sf)


def _linear_matrix(x, n, o, scale, align_corners):
    return _table(("linear", n, o, scale, align_corners),
                  lambda: _linear_rows(n, o, scale, align_corners), x, x.dtype)


def _linear_rows(n, o, scale, align_corners):
    rows = []
    for i in range(o):
        if align_corners:
            src = i * (n - 1) / (o - 1) if o > 1 else 0.0
        else:
            src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n - 1)
        i1 = min(i0 + 1, n - 1)
        lam = src - i0
        row = [0.0] * n
        row[i0] += 1.0 - lam
        row[i1] += lam
        rows.append(row)
    return rows


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, L) or (N, C, H, W) to ``size`` or by ``scale_factor``.
    Modes: 'nearest' (index floor(i * scale), torch's), 'nearest-exact'
    (floor((i + 0.5) * scale)), 'linear' (3-D), 'bilinear' (4-D), with
    ``align_corners`` as torch, and 'area' (adaptive average pooling, 4-D). Result in the input's dtype;
    differentiable (nearest: gather with scatter-add gradient; linear modes:
    separable constant matrices); every device. Mirrors torch.nn.functional.interpolate
    (no antialias, no 'bicubic'/'trilinear')."""
    op = "interpolate"
    if input.__class__ is not Tensor:
        raise TypeError(f"{_name(op)}: input must be a Tensor, got {type(input).__name__}")
    if antialias:
        raise NotImplementedError(f"{_name(op)}: antialias=True is not supported")
    nd = input.ndim - 2
    linear = {"linear": 1, "bilinear": 2}
    if mode not in ("nearest", "nearest-exact", "area") + tuple(linear):
        raise NotImplementedError(f"{_name(op)}: mode {mode!r} is not supported; use 'nearest', "
                                  "'nearest-exact', 'area', 'linear' (3-D input) or 'bilinear' "
                                  "(4-D input)")
    if nd not in (1, 2) or (mode in linear and linear[mode] != nd) or (mode == "area" and nd != 2):
        raise NotImplementedError(f"{_name(op)}: got {input.ndim}-D input with mode {mode!r}; "
                                  "expected 3-D for 'nearest'/'linear', 4-D for "
                                  "'nearest'/'bilinear'/'area'")
    if align_corners is not None and mode not in linear:
        raise ValueError(f"{_name(op)}: align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear | bicubic | trilinear")
    sp = tuple(input.shape[2:])
    out, scales = _scales(op, sp, size, scale_factor, recompute_scale_factor)
    if any(o < 1 for o in out):
        raise ValueError(f"{_name(op)}: output size {out} must be positive")
    if mode == "area":   # torch: adaptive average pooling to the output size
        return adaptive_avg_pool2d(input, out)
    y = input
    for ax, (n, o, s) in enumerate(zip(sp, out, scales)):
        dim = 2 + ax
        if mode in ("nearest", "nearest-exact"):
            half = 0.5 if mode == "nearest-exact" else 0.0
            idx = _table((mode, n, o, s), lambda: [
                min(int(math.floor((i + half) * s)), n - 1) for i in range(o)], input)
            y = _F.getitem(y, (slice(None),) * dim + (idx,))
        else:
            A = _linear_matrix(input, n, o, s, bool(align_corners))
            if dim == y.ndim - 1:
                y = _F.matmul(y, _F.transpose(A, 0, 1))
            else:
                y = _F.transpose(_F.matmul(A, _F.transpose(y, dim, -1)), dim, -1) \
                    if dim != y.ndim - 2 else _F.matmul(A, y)
    return y
