"""The one op table (docs/ARCHITECTURE.md). Each record: a gradkit function, a
NumPy reference, how to draw its inputs, and whether it is smooth enough for a
second-derivative check. test_ops.py runs every record on every device."""
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

import gradkit as gk
import gradkit.nn.functional as _nnF

import image_refs as _ir


@dataclass
class Op:
    name: str
    fn: Callable            # gradkit: fn(*tensors) -> Tensor
    ref: Callable           # numpy:   ref(*arrays) -> array
    shapes: Sequence        # one shape per input
    domain: Sequence = ()   # per input: "any" | "pos" | "nonzero" | "unit" | ("int", n)
    smooth: bool = True     # run gradgradcheck
    grad: Sequence = None   # per input: differentiable? (default: floating inputs)
    tags: Sequence = field(default_factory=tuple)


def draw(rng, shape, domain):
    if isinstance(domain, tuple) and domain[0] == "int":
        return rng.integers(0, domain[1], size=shape)
    if isinstance(domain, tuple) and domain[0] == "bool":
        return rng.random(shape) > 0.5
    x = rng.standard_normal(shape)
    if domain == "pos":
        return np.abs(x) + 0.5
    if domain == "nonzero":
        return np.where(np.abs(x) < 0.3, np.sign(x + 1e-12) * 0.3, x) + 0.0
    if domain == "unit":
        return np.clip(x, -0.9, 0.9)
    if domain == "distinct":
        # values far apart: max/min/sort-like ops have no ties
        return rng.permutation(np.prod(shape, dtype=int)).reshape(shape) * 0.37 + 0.1
    if domain == "zeros":
        # exact zeros along the last dim: row i has i % (n + 1) of them (prod's
        # gradient with 0, 1, 2, ... zeros in a reduced slice)
        rows = x.reshape(-1, shape[-1])
        for i, r in enumerate(rows):
            r[:i % (shape[-1] + 1)] = 0.0
        return rows.reshape(shape)
    return x


def _sm(x, d):
    e = np.exp(x - x.max(axis=d, keepdims=True))
    return e / e.sum(axis=d, keepdims=True)


def _const(a, arr):
    return gk.tensor(np.asarray(arr, dtype=np.float64), dtype=a.dtype, device=a.device)


_RM, _RV = np.array([0.3, -0.2, 0.1]), np.array([0.5, 2.0, 1.5])


def _layer_norm(x, k, eps=1e-5):
    d = tuple(range(-k, 0))
    return (x - x.mean(d, keepdims=True)) / np.sqrt(x.var(d, keepdims=True) + eps)

# Image layers (issue 13): convolution, pooling, resampling, normalization
IMAGE_OPS = [
    Op("conv2d", lambda x, w, b: _nnF.conv2d(x, w, b), lambda x, w, b: _ir.conv(x, w, b),
       [(2, 3, 5, 6), (4, 3, 3, 3), (4,)]),
    Op("conv2d_stride_pad_dil_groups",
       lambda x, w: _nnF.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
       lambda x, w: _ir.conv(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
       [(2, 4, 6, 5), (6, 2, 3, 2)]),
    Op("conv2d_same_even_kernel", lambda x, w: _nnF.conv2d(x, w, padding="same"),
       lambda x, w: _ir.conv(x, w, padding=((1, 2), (0, 1))), [(1, 2, 5, 4), (3, 2, 4, 2)]),
    Op("conv2d_valid_unbatched", lambda x, w: _nnF.conv2d(x, w, padding="valid"),
       lambda x, w: _ir.conv(x[None], w)[0], [(2, 4, 4), (3, 2, 2, 3)]),
    Op("conv1d", lambda x, w, b: _nnF.conv1d(x, w, b, stride=2, padding=1),
       lambda x, w, b: _ir.conv(x, w, b, stride=2, padding=1), [(2, 3, 9), (4, 3, 3), (4,)]),
    Op("conv1d_same_dilated_groups", lambda x, w: _nnF.conv1d(x, w, padding="same", dilation=2,
                                                              groups=3),
       lambda x, w: _ir.conv(x, w, padding=((2, 2),), dilation=2, groups=3),
       [(2, 3, 7), (6, 1, 3)]),
    Op("conv_transpose2d", lambda x, w, b: _nnF.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                                 output_padding=1),
       lambda x, w, b: _ir.conv_transpose2d(x, w, b, 2, 1, 1), [(2, 3, 3, 4), (3, 2, 3, 3), (2,)]),
    # output_padding at or above the stride (allowed below the dilation, as torch), more
    # than the padding in dim 0: rows no window reaches are zeros
    Op("conv_transpose2d_output_padding_dilation",
       lambda x, w: _nnF.conv_transpose2d(x, w, stride=(1, 2), padding=(1, 0),
                                          output_padding=(2, 1), dilation=(3, 2)),
       lambda x, w: _ir.conv_transpose2d(x, w, None, (1, 2), (1, 0), (2, 1), 1, (3, 2)),
       [(2, 2, 3, 3), (2, 3, 2, 2)]),
    Op("conv_transpose2d_groups_dilation",
       lambda x, w: _nnF.conv_transpose2d(x, w, stride=(1, 2), groups=2, dilation=(2, 1)),
       lambda x, w: _ir.conv_transpose2d(x, w, None, (1, 2), 0, 0, 2, (2, 1)),
       [(1, 4, 3, 3), (4, 1, 2, 3)]),
    Op("max_pool2d", lambda x: _nnF.max_pool2d(x, 2), lambda x: _ir.max_pool2d(x, 2),
       [(2, 3, 4, 6)], ["distinct"]),
    Op("max_pool2d_overlap_pad_ceil",
       lambda x: _nnF.max_pool2d(x, 3, 2, 1, ceil_mode=True),
       lambda x: _ir.max_pool2d(x, 3, 2, 1, ceil=True), [(2, 2, 6, 5)], ["distinct"]),
    Op("max_pool2d_dilation_indices",
       lambda x: _nnF.max_pool2d(x, (2, 3), (1, 2), dilation=(2, 1), return_indices=True)[0],
       lambda x: _ir.max_pool2d(x, (2, 3), (1, 2), d=(2, 1)), [(1, 2, 5, 7)], ["distinct"]),
    Op("avg_pool2d", lambda x: _nnF.avg_pool2d(x, 2), lambda x: _ir.avg_pool2d(x, 2),
       [(2, 3, 4, 6)]),
    Op("avg_pool2d_pad_ceil_exclude",
       lambda x: _nnF.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
       lambda x: _ir.avg_pool2d(x, 3, 2, 1, True, False), [(2, 2, 6, 5)]),
    Op("avg_pool2d_divisor", lambda x: _nnF.avg_pool2d(x, (2, 3), 1, (1, 0), divisor_override=4),
       lambda x: _ir.avg_pool2d(x, (2, 3), 1, (1, 0), divisor=4), [(1, 2, 4, 5)]),
    Op("adaptive_avg_pool2d", lambda x: _nnF.adaptive_avg_pool2d(x, (3, 2)),
       lambda x: _ir.adaptive_pool2d(x, (3, 2), np.mean), [(2, 3, 7, 5)]),
    Op("adaptive_max_pool2d", lambda x: _nnF.adaptive_max_pool2d(x, (3, 4)),
       lambda x: _ir.adaptive_pool2d(x, (3, 4), np.max), [(2, 2, 7, 5)], ["distinct"]),
    Op("adaptive_max_pool2d_even", lambda x: _nnF.adaptive_max_pool2d(x, 2),
       lambda x: _ir.adaptive_pool2d(x, 2, np.max), [(2, 2, 4, 6)], ["distinct"]),
    Op("pixel_shuffle", lambda x: _nnF.pixel_shuffle(x, 2), lambda x: _ir.pixel_shuffle(x, 2),
       [(2, 8, 2, 3)]),
    Op("interpolate_nearest", lambda x: _nnF.interpolate(x, size=(5, 7)),
       lambda x: _ir.interpolate(x, (5, 7)), [(2, 2, 3, 4)]),
    Op("interpolate_bilinear", lambda x: _nnF.interpolate(x, size=(5, 3), mode="bilinear"),
       lambda x: _ir.interpolate(x, (5, 3), "bilinear"), [(2, 2, 3, 4)]),
    Op("interpolate_bilinear_align_corners",
       lambda x: _nnF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True),
       lambda x: _ir.interpolate(x, (6, 8), "bilinear", True), [(1, 2, 3, 4)]),
    Op("interpolate_linear", lambda x: _nnF.interpolate(x, size=7, mode="linear"),
       lambda x: _ir.interpolate(x, (7,), "linear"), [(2, 3, 4)]),
    Op("batch_norm_train", lambda x, w, b: _nnF.batch_norm(x, None, None, w, b, training=True),
       lambda x, w, b: _ir.batch_norm(x, w, b), [(4, 3, 2, 3), (3,), (3,)]),
    Op("batch_norm_1d_eval", lambda x: _nnF.batch_norm(x, _const(x, _RM), _const(x, _RV)),
       lambda x: (x - _RM[:, None]) / np.sqrt(_RV[:, None] + 1e-5), [(4, 3, 5)]),
    Op("instance_norm", lambda x, w, b: _nnF.instance_norm(x, weight=w, bias=b),
       lambda x, w, b: _ir.group_norm(x, 3, w, b), [(2, 3, 3, 4), (3,), (3,)]),
    Op("group_norm", lambda x, w, b: _nnF.group_norm(x, 2, w, b),
       lambda x, w, b: _ir.group_norm(x, 2, w, b), [(2, 6, 2, 3), (6,), (6,)]),
    # the fused normalization primitive (gradkit/ops/norm.py): each layout, with and
    # without the affine parameters
    Op("layer_norm", lambda x, w, b: _nnF.layer_norm(x, (4,), w, b),
       lambda x, w, b: _layer_norm(x, 1) * w + b, [(2, 3, 4), (4,), (4,)]),
    Op("layer_norm_2d_plain", lambda x: _nnF.layer_norm(x, (3, 4)),
       lambda x: _layer_norm(x, 2), [(2, 3, 4)]),
    Op("layer_norm_weight_only", lambda x, w: _nnF.layer_norm(x, (2, 3), w),
       lambda x, w: _layer_norm(x, 2) * w, [(4, 2, 3), (2, 3)]),
    Op("batch_norm_train_plain", lambda x: _nnF.batch_norm(x, None, None, training=True),
       lambda x: _ir.batch_norm(x), [(5, 3)]),
    Op("group_norm_weight_only", lambda x, w: _nnF.group_norm(x, 3, w),
       lambda x, w: _ir.group_norm(x, 3, w, np.zeros(6)), [(2, 6, 5), (6,)]),
]

I = np.array([0, 2, 2, 1])  # repeated indices: their gradients must accumulate

OPS = [
    # arithmetic (broadcasting)
    Op("add", lambda a, b: a + b, np.add, [(3, 1, 4), (2, 1)]),
    Op("sub", lambda a, b: a - b, np.subtract, [(2, 3), (3,)]),
    Op("mul", lambda a, b: a * b, np.multiply, [(4, 1), (1, 5)]),
    Op("div", lambda a, b: a / b, np.divide, [(2, 3), (2, 3)], ["any", "nonzero"]),
    Op("pow_tensor", lambda a, b: a ** b, np.power, [(2, 3), (2, 3)], ["pos", "any"]),
    Op("pow_2", lambda a: a ** 2, lambda a: a ** 2, [(5,)]),
    Op("pow_half", lambda a: a ** 0.5, np.sqrt, [(5,)], ["pos"]),
    Op("pow_neg", lambda a: a ** -1.5, lambda a: a ** -1.5, [(2, 2)], ["pos"]),
    Op("rpow", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [(4,)]),
    Op("neg", lambda a: -a, np.negative, [(3, 2)]),
    Op("radd", lambda a: 1.5 + a, lambda a: 1.5 + a, [(3,)]),
    Op("rsub", lambda a: 2.0 - a, lambda a: 2.0 - a, [(3,)]),
    Op("rmul", lambda a: 3 * a, lambda a: 3 * a, [(3,)]),
    Op("rdiv", lambda a: 1.0 / a, lambda a: 1.0 / a, [(3,)], ["nonzero"]),
    Op("sub_scalar", lambda a: a - 0.25, lambda a: a - 0.25, [(3,)]),
    Op("div_scalar", lambda a: a / 4, lambda a: a / 4, [(3,)]),
    # elementwise
    Op("exp", gk.exp, np.exp, [(3, 4)]),
    Op("log", gk.log, np.log, [(3, 4)], ["pos"]),
    Op("sqrt", gk.sqrt, np.sqrt, [(3, 4)], ["pos"]),
    Op("abs", gk.abs, np.abs, [(3, 4)], ["nonzero"]),
    Op("sin", gk.sin, np.sin, [(3, 4)]),
    Op("cos", gk.cos, np.cos, [(3, 4)]),
    Op("tanh", gk.tanh, np.tanh, [(3, 4)]),
    Op("sigmoid", gk.sigmoid, lambda a: 1 / (1 + np.exp(-a)), [(3, 4)]),
    Op("relu", gk.relu, lambda a: np.maximum(a, 0), [(3, 4)], ["nonzero"]),
    Op("maximum", gk.maximum, np.maximum, [(3, 4), (4,)], ["distinct", "nonzero"]),
    Op("minimum", gk.minimum, np.minimum, [(3, 1), (3, 4)], ["distinct", "nonzero"]),
    Op("where", lambda a, b: gk.where(a > 0, a, b), lambda a, b: np.where(a > 0, a, b),
       [(3, 4), (4,)], ["nonzero", "any"]),
    Op("clamp", lambda a: gk.clamp(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [(4, 4)],
       ["distinct"]),
    Op("clamp_min", lambda a: a.clamp(min=0.1), lambda a: np.maximum(a, 0.1), [(4, 4)],
       ["nonzero"]),
    # reductions
    Op("sum_all", lambda a: a.sum(), np.sum, [(3, 4)]),
    Op("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), [(3, 4, 2)]),
    Op("sum_negdim_keep", lambda a: a.sum(-1, keepdim=True), lambda a: a.sum(-1, keepdims=True),
       [(3, 4)]),
    Op("sum_dims", lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), [(3, 4, 2)]),
    Op("mean_all", lambda a: a.mean(), np.mean, [(3, 4)]),
    Op("mean_dim", lambda a: a.mean(0, keepdim=True), lambda a: a.mean(0, keepdims=True),
       [(3, 4)]),
    Op("max_all", lambda a: a.max(), np.max, [(3, 4)], ["distinct"]),
    Op("min_all", lambda a: a.min(), np.min, [(3, 4)], ["distinct"]),
    Op("max_dim", lambda a: a.max(1)[0], lambda a: a.max(1), [(3, 4)], ["distinct"]),
    Op("max_dim_keep", lambda a: a.max(-1, keepdim=True).values,
       lambda a: a.max(-1, keepdims=True), [(2, 3, 4)], ["distinct"]),
    Op("min_dim", lambda a: a.min(0)[0], lambda a: a.min(0), [(3, 4)], ["distinct"]),
    # shape
    Op("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [(2, 3, 2)]),
    Op("view", lambda a: a.view(6, 2), lambda a: a.reshape(6, 2), [(3, 4)]),
    Op("transpose", lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2), [(2, 3, 4)]),
    Op("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    Op("T", lambda a: a.T, lambda a: a.T, [(2, 3)]),
    Op("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
       [(3, 1)]),
    Op("broadcast_to", lambda a: gk.broadcast_to(a, (3, 4)), lambda a: np.broadcast_to(a, (3, 4)),
       [(4,)]),
    Op("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [(3, 1, 2)]),
    Op("squeeze_all", lambda a: a.squeeze(), lambda a: a.squeeze(), [(1, 3, 1)]),
    Op("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], [(3, 2)]),
    Op("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 2)]),
    # matmul
    Op("matmul_2d", gk.matmul, np.matmul, [(3, 4), (4, 2)]),
    Op("matmul_1d_1d", gk.matmul, np.matmul, [(4,), (4,)]),
    Op("matmul_1d_2d", gk.matmul, np.matmul, [(4,), (4, 3)]),
    Op("matmul_2d_1d", gk.matmul, np.matmul, [(3, 4), (4,)]),
    Op("matmul_batched", lambda a, b: a @ b, np.matmul, [(2, 1, 3, 4), (5, 4, 2)]),
    Op("matmul_1d_batched", gk.matmul, np.matmul, [(4,), (2, 4, 3)]),
    Op("mm", gk.mm, np.matmul, [(3, 4), (4, 2)]),
    Op("bmm", gk.bmm, np.matmul, [(2, 3, 4), (2, 4, 5)]),
    Op("matmul_empty_k", gk.matmul, np.matmul, [(2, 3, 0), (0, 4)]),
    # indexing
    Op("getitem_int", lambda a: a[1], lambda a: a[1], [(3, 4)]),
    Op("getitem_neg_int", lambda a: a[-1, 2], lambda a: a[-1, 2], [(3, 4)]),
    Op("getitem_slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(3, 5)]),
    Op("getitem_none_ellipsis", lambda a: a[None, ..., 1], lambda a: a[None, ..., 1], [(2, 3, 4)]),
    Op("getitem_intarray", lambda a: a[I], lambda a: a[I], [(3, 2)]),
    Op("getitem_inttensor", lambda a: a[:, gk.tensor(I, device=a.device)], lambda a: a[:, I],
       [(2, 3)]),
    Op("getitem_mask", lambda a: a[a > 0], lambda a: a[a > 0], [(3, 4)], ["nonzero"]),
    Op("getitem_pairs", lambda a: a[gk.tensor([0, 1, 1], device=a.device),
                                    gk.tensor([2, 0, 0], device=a.device)],
       lambda a: a[[0, 1, 1], [2, 0, 0]], [(2, 3)]),
    Op("setitem", lambda a, b: _setitem(a, b), lambda a, b: _np_setitem(a, b), [(3, 4), (4,)]),
    # joining
    Op("cat", lambda a, b: gk.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1),
       [(2, 3), (2, 1)]),
    Op("cat_neg", lambda a, b: gk.cat([a, b, a], -1), lambda a, b: np.concatenate([a, b, a], -1),
       [(2, 2), (2, 3)]),
    Op("stack", lambda a, b: gk.stack([a, b], 1), lambda a, b: np.stack([a, b], 1),
       [(2, 3), (2, 3)]),
    # compositions
    Op("softmax_composed", lambda a: (a - a.max(1, keepdim=True)[0]).exp()
       / (a - a.max(1, keepdim=True)[0]).exp().sum(1, keepdim=True),
       lambda a: _sm(a, 1), [(3, 4)], ["distinct"]),
    Op("chain", lambda a: ((a * 0.5 + 0.1).tanh().exp() * a).sin().sum(0),
       lambda a: np.sin(np.exp(np.tanh(a * 0.5 + 0.1)) * a).sum(0), [(3, 4)]),
    # ---------------------------------------------- the rest of the public API
    # elementwise
    Op("log1p", gk.log1p, np.log1p, [(3, 4)], ["pos"]),
    Op("expm1", lambda a: a.expm1(), np.expm1, [(3, 4)]),
    Op("rsqrt", gk.rsqrt, lambda a: 1 / np.sqrt(a), [(3, 4)], ["pos"]),
    Op("reciprocal", lambda a: a.reciprocal(), np.reciprocal, [(3, 4)], ["nonzero"]),
    Op("square", gk.square, np.square, [(3, 4)]),
    Op("tan", lambda a: a.tan(), np.tan, [(3, 4)], ["unit"]),
    Op("erf", gk.erf, lambda a: _np_erf(a), [(3, 4)]),
    Op("erf_tails", lambda a: (a * 3.0).erf(), lambda a: _np_erf(a * 3.0), [(4, 4)]),
    Op("gelu", gk.gelu, lambda a: 0.5 * a * (1 + _np_erf(a / np.sqrt(2))), [(3, 4)]),
    Op("gelu_tanh", lambda a: a.gelu(approximate="tanh"),
       lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3))),
       [(3, 4)]),
    Op("silu", gk.silu, lambda a: a / (1 + np.exp(-a)), [(3, 4)]),
    Op("softplus", gk.softplus, lambda a: np.log1p(np.exp(a)), [(3, 4)]),
    Op("softplus_beta_threshold", lambda a: (a * 4).softplus(beta=2, threshold=3),
       lambda a: np.where(8 * a > 3, 4 * a, np.log1p(np.exp(8 * a)) / 2), [(3, 4)], ["distinct"]),
    Op("sign", gk.sign, np.sign, [(3, 4)], ["nonzero"], smooth=False),
    # reductions
    Op("prod_all", lambda a: a.prod(), lambda a: np.array(a.prod()), [(2, 3)]),
    Op("prod_dim", lambda a: a.prod(1), lambda a: a.prod(1), [(3, 4)]),
    Op("prod_dim_keep", lambda a: gk.prod(a, -1, keepdim=True), lambda a: a.prod(-1, keepdims=True),
       [(2, 3, 2)]),
    Op("prod_zeros", lambda a: a.prod(1), lambda a: a.prod(1), [(5, 4)], ["zeros"]),
    Op("prod_zeros_all", lambda a: a.prod(), lambda a: np.array(a.prod()), [(1, 3)], ["zeros"]),
    Op("var", lambda a: a.var(), lambda a: np.array(a.var(ddof=1)), [(3, 4)]),
    Op("var_dim_keep", lambda a: a.var(1, keepdim=True), lambda a: a.var(1, ddof=1, keepdims=True),
       [(3, 4)]),
    Op("var_correction0", lambda a: gk.var(a, (0, 2), correction=0), lambda a: a.var((0, 2)),
       [(2, 3, 2)]),
    Op("std", lambda a: a.std(0), lambda a: a.std(0, ddof=1), [(3, 4)]),
    Op("std_unbiased_false", lambda a: gk.std(a, 1, False), lambda a: a.std(1), [(3, 4)]),
    Op("logsumexp", lambda a: a.logsumexp(1), lambda a: np.log(np.exp(a).sum(1)), [(3, 4)]),
    Op("logsumexp_dims_keep", lambda a: gk.logsumexp(a, (0, 2), keepdim=True),
       lambda a: np.log(np.exp(a).sum((0, 2), keepdims=True)), [(2, 3, 2)]),
    Op("norm", lambda a: a.norm(), lambda a: np.array(np.sqrt((a * a).sum())), [(3, 4)]),
    Op("norm_p2_dim", lambda a: gk.norm(a, 2, 1), lambda a: np.sqrt((a * a).sum(1)), [(3, 4)]),
    Op("norm_fro_dims", lambda a: gk.norm(a, "fro", (1, 2), keepdim=True),
       lambda a: np.sqrt((a * a).sum((1, 2), keepdims=True)), [(2, 3, 2)]),
    Op("norm_p1", lambda a: a.norm(1, 0), lambda a: np.abs(a).sum(0), [(3, 4)], ["nonzero"],
       smooth=False),
    Op("norm_p3", lambda a: gk.norm(a, 3, -1), lambda a: (np.abs(a) ** 3).sum(-1) ** (1 / 3),
       [(3, 4)], ["nonzero"]),
    Op("norm_inf", lambda a: gk.norm(a, float("inf"), 1), lambda a: np.abs(a).max(1), [(3, 4)],
       ["distinct"], smooth=False),
    Op("norm_neg_inf", lambda a: gk.norm(a, -float("inf")), lambda a: np.array(np.abs(a).min()),
       [(3, 4)], ["distinct"], smooth=False),
    Op("norm_p0", lambda a: gk.norm(a, 0, 1), lambda a: (a != 0).sum(1).astype(a.dtype), [(3, 4)],
       ["nonzero"], smooth=False),
    Op("cumsum", lambda a: a.cumsum(1), lambda a: a.cumsum(1), [(3, 4)]),
    Op("cumsum_neg", lambda a: gk.cumsum(a, -3), lambda a: a.cumsum(-3), [(3, 2, 2)]),
    Op("argmax", lambda a: a.argmax(1), lambda a: a.argmax(1), [(3, 4)], ["distinct"],
       tags=("nograd",)),
    Op("argmax_keep", lambda a: gk.argmax(a, -1, keepdim=True),
       lambda a: a.argmax(-1, keepdims=True), [(2, 3, 4)], ["distinct"], tags=("nograd",)),
    Op("argmin_all", lambda a: gk.argmin(a), lambda a: np.array(a.argmin()), [(3, 4)],
       ["distinct"], tags=("nograd",)),
    Op("all", lambda a: (a > 0).all(1), lambda a: (a > 0).all(1), [(3, 4)], ["nonzero"],
       tags=("nograd",)),
    Op("any_float", lambda a: gk.any(a - a, 0), lambda a: (a - a).any(0), [(3, 4)],
       tags=("nograd",)),
    Op("all_dims", lambda a: gk.all(a > -1, (0, 1)), lambda a: np.array((a > -1).all()),
       [(3, 4)], ["nonzero"], tags=("nograd",)),
    Op("lt", lambda a, b: a < b, np.less, [(3, 4), (4,)], ["distinct", "nonzero"],
       tags=("nograd",)),
    Op("eq_scalar", lambda a: a == 1.2, lambda a: a == 1.2, [(3, 4)], tags=("nograd",)),
    # softmax family
    Op("softmax", lambda a: gk.softmax(a, 1), lambda a: _sm(a, 1), [(3, 4)]),
    Op("softmax_method_dim0", lambda a: a.softmax(0), lambda a: _sm(a, 0), [(3, 4)]),
    Op("log_softmax", lambda a: gk.log_softmax(a, -1), lambda a: _lsm(a, -1), [(2, 3, 4)]),
    Op("softmax_1e4", lambda a: gk.softmax(a * 1e4, 1), lambda a: _sm(a * 1e4, 1), [(3, 4)],
       ["distinct"]),
    Op("log_softmax_1e4", lambda a: (a * -1e4).log_softmax(1), lambda a: _lsm(a * -1e4, 1),
       [(3, 4)], ["distinct"]),
    # shape and indexing
    Op("chunk", lambda a: _wcat(gk.chunk(a, 3, 1), 1),
       lambda a: _np_wcat(np.split(a, [2, 4], 1), 1), [(2, 5)]),
    Op("chunk_one_used", lambda a: a.chunk(2)[1] * 2.0, lambda a: a[2:] * 2.0, [(4, 3)]),
    Op("split", lambda a: _wcat(a.split(2, -1), -1),
       lambda a: _np_wcat(np.split(a, [2, 4], -1), -1), [(3, 5)]),
    Op("split_sizes", lambda a: _wcat(gk.split(a, [1, 3, 0], 0), 0),
       lambda a: _np_wcat(np.split(a, [1, 4], 0), 0), [(4, 2)]),
    Op("flip", lambda a: a.flip(0), lambda a: np.flip(a, 0), [(3, 4)]),
    Op("flip_dims", lambda a: gk.flip(a, (0, -1)), lambda a: np.flip(a, (0, -1)), [(2, 3, 4)]),
    Op("repeat", lambda a: a.repeat(2, 3), lambda a: np.tile(a, (2, 3)), [(2, 3)]),
    Op("repeat_new_dims", lambda a: gk.repeat(a, (2, 1, 2)), lambda a: np.tile(a, (2, 1, 2)),
       [(3,)]),
    Op("contiguous", lambda a: a.T.contiguous(), lambda a: a.T, [(2, 3)]),
    Op("clone", lambda a: a.clone(), lambda a: a.copy(), [(2, 3)]),
    Op("to_double", lambda a: a.double() * 2.0, lambda a: a.astype(np.float64) * 2.0, [(2, 3)]),
    Op("detach", lambda a: a.detach() * 2.0, lambda a: a * 2.0, [(2, 3)], tags=("nograd",)),
    Op("gather", lambda a, i: gk.gather(a, 1, i), lambda a, i: np.take_along_axis(a, i, 1),
       [(3, 4), (3, 5)], ["any", ("int", 4)]),
    Op("gather_dim0_smaller", lambda a, i: a.gather(0, i),
       lambda a, i: np.take_along_axis(a[:, :2], i, 0), [(3, 4), (4, 2)], ["any", ("int", 3)]),
    Op("index_add", lambda a, s: gk.index_add(a, 0, _idx(a, [0, 2, 2, 1]), s),
       lambda a, s: _np_index_add(a, 0, [0, 2, 2, 1], s), [(3, 2), (4, 2)]),
    Op("index_add_alpha_dim1", lambda a, s: a.index_add(1, _idx(a, [2, 2]), s, alpha=2.0),
       lambda a, s: _np_index_add(a, 1, [2, 2], 2.0 * s), [(2, 3), (2, 2)]),
    Op("einsum_matmul", lambda a, b: gk.einsum("ij,jk->ik", a, b), np.matmul, [(3, 4), (4, 2)]),
    Op("einsum_batch", lambda a, b: gk.einsum("bij,bjk->bik", a, b), np.matmul,
       [(2, 3, 4), (2, 4, 2)]),
    Op("einsum_trace", lambda a: gk.einsum("ii", a), lambda a: np.array(np.trace(a)), [(3, 3)]),
    Op("einsum_diag", lambda a: gk.einsum("ii->i", a), np.diag, [(3, 3)]),
    Op("einsum_outer", lambda a, b: gk.einsum("i,j->ij", a, b), np.outer, [(3,), (2,)]),
    Op("einsum_sum_permute", lambda a: gk.einsum("ijk->kj", a), lambda a: a.sum(0).T, [(2, 3, 4)]),
    Op("einsum_implicit", lambda a, b: gk.einsum("jk,ij", a, b), lambda a, b: b @ a,
       [(4, 2), (3, 4)]),
    Op("einsum_ellipsis_broadcast", lambda a, b: gk.einsum("...ij,...jk->...ik", a, b),
       np.matmul, [(2, 1, 3, 4), (3, 4, 2)]),
    Op("einsum_three", lambda a, b, c: gk.einsum("ij,jk,kl->il", a, b, c),
       lambda a, b, c: a @ b @ c, [(2, 3), (3, 4), (4, 2)]),
    Op("einsum_bilinear", lambda a, b, c: gk.einsum("bn,anm,bm->ba", [a, b, c]),
       lambda a, b, c: np.einsum("bn,anm,bm->ba", a, b, c), [(2, 3), (4, 3, 5), (2, 5)]),
    Op("einsum_diag_batch", lambda a, b: gk.einsum("iij,Aj->Ai", a, b),
       lambda a, b: np.einsum("iij,Aj->Ai", a, b), [(3, 3, 2), (2, 2)]),
    # in place (on a non-leaf copy: the gradient flows through the rebased history)
    Op("add_", lambda a, b: _ip(a, "add_", b), np.add, [(3, 4), (4,)]),
    Op("sub_alpha", lambda a, b: _ip(a, "sub_", b, alpha=2.0), lambda a, b: a - 2 * b,
       [(3, 4), (3, 4)]),
    Op("mul_", lambda a, b: _ip(a, "mul_", b), np.multiply, [(3, 4), (3, 1)]),
    Op("div_", lambda a, b: _ip(a, "div_", b), np.divide, [(3, 4), (4,)], ["any", "nonzero"]),
    Op("zero_", lambda a: _ip(a, "zero_") + a, lambda a: a + 0.0, [(3,)]),
    Op("fill_", lambda a: _ip(a, "fill_", 2.5) * a, lambda a: 2.5 * a, [(3,)]),
    Op("copy_", lambda a, b: _ip(a, "copy_", b) * a, lambda a, b: np.broadcast_to(b, a.shape) * a,
       [(3, 4), (4,)]),
    Op("clamp_", lambda a: _ip(a, "clamp_", -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), [(4, 4)],
       ["distinct"]),
    # the rest of the public op set (tests/test_registry.py checks that every
    # primitive and public op is reached from this table)
    Op("ne", gk.ne, np.not_equal, [(3, 4), (4,)], tags=("nograd",)),
    Op("logical_or_not", lambda a, b: gk.logical_or(a > 0, gk.logical_not(b > 0)),
       lambda a, b: np.logical_or(a > 0, ~(b > 0)), [(3, 4), (3, 4)], ["nonzero", "nonzero"],
       tags=("nograd",)),
    Op("bitwise_and_or", lambda a, b: gk.bitwise_or(gk.bitwise_and(a, b), a),
       lambda a, b: (a & b) | a, [(3, 4), (3, 4)], [("int", 8), ("int", 8)], tags=("nograd",)),
    Op("masked_fill", lambda a: a.masked_fill(a > 0, 0.5), lambda a: np.where(a > 0, 0.5, a),
       [(3, 4)], ["nonzero"]),
    Op("t", gk.t, lambda a: a.T, [(2, 3)]),
    Op("detach_fn", lambda a: gk.detach(a) * 2.0, lambda a: a * 2.0, [(2, 3)], tags=("nograd",)),
    Op("to_device_round_trip", lambda a: _round_trip(a) * 2.0, lambda a: a * 2.0, [(2, 3)]),
    Op("isnan_isinf", lambda a: gk.logical_or(gk.isnan(a / a), gk.isinf(1.0 / (a - a))),
       lambda a: np.isnan(a / a) | np.isinf(1.0 / (a - a)), [(3,)], ["zeros"], tags=("nograd",)),
    Op("allclose", lambda a: gk.tensor(gk.allclose(a, a + 1e-9), device=a.device),
       lambda a: np.array(True), [(3,)], tags=("nograd",)),
    Op("equal", lambda a: gk.tensor([gk.equal(a, a * 1.0), gk.equal(a, a + 1.0),
                                     gk.equal(a, a[:1])], device=a.device),
       lambda a: np.array([True, False, False]), [(3,)], tags=("nograd",)),
    Op("is_floating_point_numel", lambda a: gk.tensor(
        [float(gk.is_floating_point(a)), float(gk.numel(a))], dtype=a.dtype, device=a.device),
       lambda a: np.array([1.0, float(a.size)], dtype=a.dtype), [(2, 3)], tags=("nograd",)),
    Op("argwhere", lambda a: gk.argwhere(a > 0), lambda a: np.argwhere(a > 0), [(3, 4)],
       ["nonzero"], tags=("nograd",)),
    Op("detach_", lambda a: gk.detach_(a * 1.0) * 2.0, lambda a: a * 2.0, [(2, 3)],
       tags=("nograd",)),
    Op("msort", gk.msort, lambda a: np.sort(a, axis=0), [(4, 3)], ["distinct"]),
    Op("reshape_as", lambda a, b: gk.reshape_as(a, b), lambda a, b: a.reshape(b.shape),
       [(2, 6), (3, 4)], ["any", "any"]),
    Op("take_along_dim_fn", lambda a, i: gk.take_along_dim(a, i, 1),
       lambda a, i: np.take_along_axis(a, i, 1), [(3, 4), (3, 2)], ["any", ("int", 4)]),
    Op("linear", lambda x, w: gk.nn.functional.linear(x, w), lambda x, w: x @ w.T,
       [(3, 4), (2, 4)]),
    Op("linear_bias_batched", lambda x, w, b: gk.nn.functional.linear(x, w, b),
       lambda x, w, b: x @ w.T + b, [(2, 3, 4), (2, 4), (2,)]),
    # ---------------------------------------------- image layers (issue 13)
    *IMAGE_OPS,
]

# ------------------------------------------ ops real PyTorch programs use (issue 12)
OPS += [
    Op("tril", gk.tril, np.tril, [(3, 4)]),
    Op("tril_neg_batched", lambda a: a.tril(-1), lambda a: np.tril(a, -1), [(2, 3, 4)]),
    Op("triu", lambda a: gk.triu(a, 1), lambda a: np.triu(a, 1), [(2, 4, 3)]),
    Op("topk", lambda a: gk.topk(a, 2, 1).values, lambda a: -np.sort(-a, 1)[:, :2], [(3, 4)],
       ["distinct"]),
    Op("topk_smallest_dim0", lambda a: a.topk(2, dim=0, largest=False)[0],
       lambda a: np.sort(a, 0)[:2], [(3, 4)], ["distinct"]),
    Op("topk_indices", lambda a: gk.topk(a, 3).indices,
       lambda a: np.argsort(-a, -1, kind="stable")[..., :3], [(2, 5)], ["distinct"],
       tags=("nograd",)),
    Op("sort", lambda a: gk.sort(a, 1)[0], lambda a: np.sort(a, 1), [(3, 4)], ["distinct"]),
    Op("sort_descending", lambda a: a.sort(0, descending=True).values,
       lambda a: -np.sort(-a, 0), [(3, 2, 2)], ["distinct"]),
    Op("argsort", lambda a: gk.argsort(a, -1), lambda a: np.argsort(a, -1, kind="stable"),
       [(3, 4)], ["distinct"], tags=("nograd",)),
    Op("argsort_descending_ties", lambda a: gk.argsort(gk.where(a > 0, 1.0, 0.0), 0, True),
       lambda a: _np_argsort_desc(np.where(a > 0, 1.0, 0.0), 0), [(6, 3)], tags=("nograd",)),
    Op("roll", lambda a: gk.roll(a, 1, 1), lambda a: np.roll(a, 1, 1), [(3, 4)]),
    Op("roll_dims", lambda a: a.roll((1, -3), (0, 1)), lambda a: np.roll(a, (1, -3), (0, 1)),
       [(3, 4)]),
    Op("roll_flat", lambda a: gk.roll(a, 5), lambda a: np.roll(a, 5), [(3, 4)]),
    Op("unbind", lambda a: gk.stack([p * float(i + 1) for i, p in enumerate(a.unbind(1))]),
       lambda a: np.stack([a[:, i] * float(i + 1) for i in range(a.shape[1])]), [(2, 3)]),
    Op("select", lambda a: a.select(1, -1), lambda a: a[:, -1], [(2, 3, 2)]),
    Op("outer", gk.outer, np.outer, [(3,), (4,)]),
    Op("mm", lambda a, b: a.mm(b), np.matmul, [(3, 4), (4, 2)]),
    Op("bmm", gk.bmm, np.matmul, [(2, 3, 4), (2, 4, 5)]),
    Op("addmm", lambda i, a, b: gk.addmm(i, a, b, beta=0.5, alpha=2.0),
       lambda i, a, b: 0.5 * i + 2.0 * (a @ b), [(4,), (3, 2), (2, 4)]),
    Op("baddbmm", lambda i, a, b: i.baddbmm(a, b), lambda i, a, b: i + a @ b,
       [(2, 3, 4), (2, 3, 5), (2, 5, 4)]),
    Op("diag_vector", lambda a: gk.diag(a, 1), lambda a: np.diag(a, 1), [(3,)]),
    Op("diag_matrix", lambda a: a.diag(-1), lambda a: np.diag(a, -1), [(4, 3)]),
    Op("diagonal", lambda a: gk.diagonal(a, 1, 0, 2), lambda a: np.diagonal(a, 1, 0, 2).copy(),
       [(3, 2, 4)]),
    Op("trace", gk.trace, lambda a: np.array(np.trace(a)), [(3, 4)]),
    Op("cumprod", lambda a: gk.cumprod(a, 1), lambda a: np.cumprod(a, 1), [(3, 4)]),
    Op("cumprod_dim0", lambda a: a.cumprod(0), lambda a: np.cumprod(a, 0), [(4, 2)]),
    Op("cumprod_zeros", lambda a: a.cumprod(-1), lambda a: np.cumprod(a, -1), [(5, 4)],
       ["zeros"]),
    Op("isclose", lambda a, b: gk.isclose(a, a + b * 1e-5),
       lambda a, b: np.isclose(a, a + b * 1e-5), [(4, 5), (4, 5)], tags=("nograd",)),
    Op("nonzero", lambda a: gk.nonzero(a > 0), lambda a: np.argwhere(a > 0), [(3, 4)],
       ["nonzero"], tags=("nograd",)),
    Op("one_hot", lambda i: gk.nn.functional.one_hot(i, 5),
       lambda i: (i[..., None] == np.arange(5)).astype(np.int64), [(2, 3)], [("int", 5)],
       tags=("nograd",)),
    Op("masked_fill_", lambda a: _ip(a, "masked_fill_", a.detach() > 0.5, 2.0),
       lambda a: np.where(a > 0.5, 2.0, a), [(3, 4)]),
    Op("view_as", lambda a: a.view_as(a.t()) * 2.0, lambda a: a.reshape(4, 3) * 2.0, [(3, 4)]),
    Op("index_select", lambda a: gk.index_select(a, 1, _idx(a, [2, 0, 2])),
       lambda a: a[:, [2, 0, 2]], [(2, 3)]),
    Op("index_select_dim0", lambda a: a.index_select(0, _idx(a, [1])), lambda a: a[[1]],
       [(3, 2, 2)]),
    Op("masked_select", lambda a, b: gk.masked_select(a, b.detach() > 0),
       lambda a, b: np.broadcast_to(a, (3, 4))[np.broadcast_to(b > 0, (3, 4))],
       [(3, 1), (4,)]),
    Op("narrow", lambda a: a.narrow(1, -3, 2), lambda a: a[:, 1:3], [(3, 4)]),
    Op("clamp_min_max", lambda a: gk.clamp_max(a.clamp_min(-0.5), 0.5),
       lambda a: np.clip(a, -0.5, 0.5), [(4, 4)], ["distinct"]),
    Op("normal_", lambda a: _ip(a, "normal_", 2.0, 0.0), lambda a: np.full(a.shape, 2.0),
       [(3, 2)], tags=("nograd",)),
    Op("uniform_", lambda a: _ip(a, "uniform_", 1.0, 1.0), lambda a: np.ones(a.shape),
       [(3, 2)], tags=("nograd",)),
    Op("randperm", lambda a: gk.sort(gk.randperm(a.shape[0], device=a.device)).values,
       lambda a: np.arange(a.shape[0]), [(7,)], tags=("nograd",)),
    Op("multinomial_support", lambda a: _multinomial_support(a),
       lambda a: np.ones(40, dtype=bool), [(6,)], tags=("nograd",)),
]


def _np_argsort_desc(a, axis):
    """torch's stable descending order: equal values keep their index order."""
    return np.flip(a.shape[axis] - 1 - np.argsort(np.flip(a, axis), axis, kind="stable"), axis)


def _multinomial_support(a):
    """Samples (with replacement) land only on categories of positive weight."""
    p = gk.cat([a[:1].abs() + 0.1, gk.where(a[1:] > 0, a[1:], 0.0)]).detach()
    return p[gk.multinomial(p, 40, replacement=True)] > 0


def _np_erf(a):
    return np.vectorize(math.erf, otypes=[a.dtype])(a)


def _lsm(x, d):
    z = x - x.max(axis=d, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=d, keepdims=True))


def _wcat(parts, dim):
    """Pieces of a multi-output op, each weighted differently, joined again."""
    return gk.cat([p * float(i + 1) for i, p in enumerate(parts)], dim)


def _np_wcat(parts, dim):
    return np.concatenate([p * float(i + 1) for i, p in enumerate(parts)], dim)


def _idx(a, values):
    return gk.tensor(np.array(values), device=a.device)


def _np_index_add(a, dim, index, s):
    out = a.copy()
    for k, i in enumerate(index):
        sl = (slice(None),) * dim + (i,)
        out[sl] += s[(slice(None),) * dim + (k,)]
    return out


def _ip(a, name, *args, **kwargs):
    c = a * 1.0
    getattr(c, name)(*args, **kwargs)
    return c


def _round_trip(a):
    """To another device and back: both copies are differentiable."""
    other = "fake" if a.device == "cpu" else "cpu"
    return a.to(other).to(a.device)


def _setitem(a, b):
    c = a * 1.0
    c[1] = b
    c[0, :2] = 0.0
    return c


def _np_setitem(a, b):
    c = a.copy()
    c[1] = b
    c[0, :2] = 0.0
    return c


# gk.nn.functional's compositions (activations, losses, pad): tests/op_table_nn.py
from op_table_nn import RECORDS as _NN_RECORDS  # noqa: E402
OPS += [Op(**r) for r in _NN_RECORDS]
# ---- attention and recurrent layers (issue 13, helper "seq"): NumPy references below
def _np_sdpa(q, k, v, mask=None, scale=None):
    s = q @ np.swapaxes(k, -1, -2) * (1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None:
        s = s + mask
    return _sm(s, -1) @ v


def _np_causal(L, S, dtype=np.float64):
    return np.where(np.arange(L)[:, None] >= np.arange(S)[None, :], 0.0, -np.inf).astype(dtype)


_MASK = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 1]], dtype=bool)


def _sdpa_masked(q, k, v):
    m = gk.tensor(_MASK, device=q.device)
    return gk.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)


_DEAD = _MASK.copy()
_DEAD[1] = False        # row 1 may attend to nothing: torch gives it zero weights


def _sdpa_dead_row(q, k, v):
    m = gk.tensor(_DEAD, device=q.device)
    return gk.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)


def _np_sdpa_dead_row(q, k, v):
    out = _np_sdpa(q, k, v, np.where(_DEAD | ~_DEAD.any(-1, keepdims=True), 0.0, -np.inf))
    out[..., 1, :] = 0.0
    return out


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm(xg, w, h0, c0):
    H = h0.shape[-1]
    h, c, hs = h0, c0, []
    for x in xg:
        a = x + h @ w.T
        i, f, g, o = (_np_sigmoid(a[:, :H]), _np_sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]),
                      _np_sigmoid(a[:, 3 * H:]))
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs), c


def _np_gru(xg, w, b, h0):
    H = h0.shape[-1]
    h, hs = h0, []
    for x in xg:
        gh = h @ w.T + b
        r = _np_sigmoid(x[:, :H] + gh[:, :H])
        z = _np_sigmoid(x[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(x[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs)


def _np_rnn(xg, w, h0, relu=False):
    h, hs = h0, []
    for x in xg:
        a = x + h @ w.T
        h = np.maximum(a, 0) if relu else np.tanh(a)
        hs.append(h)
    return np.stack(hs)


def _seq_all(outs):
    """A recurrent primitive's outputs (hs, h_T[, c_T]), weighted and joined."""
    return gk.cat([o.reshape(-1) * float(i + 1) for i, o in enumerate(outs)])


def _np_seq_all(outs):
    return np.concatenate([o.reshape(-1) * float(i + 1) for i, o in enumerate(outs)])


def _np_lstm_all(xg, w, h0, c0):
    hs, c = _np_lstm(xg, w, h0, c0)
    return _np_seq_all([hs, hs[-1], c])


OPS += [
    Op("sdpa", lambda q, k, v: gk.nn.functional.scaled_dot_product_attention(q, k, v),
       _np_sdpa, [(2, 3, 4), (2, 5, 4), (2, 5, 3)]),
    Op("sdpa_broadcast_scale", lambda q, k, v: gk.nn.functional.scaled_dot_product_attention(
        q, k, v, scale=0.7), lambda q, k, v: _np_sdpa(q, k, v, scale=0.7),
       [(2, 2, 3, 4), (2, 1, 5, 4), (1, 5, 2)]),
    Op("sdpa_causal", lambda q, k, v: gk.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True), lambda q, k, v: _np_sdpa(q, k, v, _np_causal(4, 4)),
       [(2, 4, 3), (2, 4, 3), (2, 4, 2)]),
    Op("sdpa_bool_mask", _sdpa_masked,
       lambda q, k, v: _np_sdpa(q, k, v, np.where(_MASK, 0.0, -np.inf)),
       [(2, 3, 4), (2, 5, 4), (2, 5, 3)]),
    Op("sdpa_gqa", lambda q, k, v: gk.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True, enable_gqa=True),
       lambda q, k, v: _np_sdpa(q, np.repeat(k, 2, -3), np.repeat(v, 2, -3), _np_causal(3, 3)),
       [(2, 4, 3, 2), (2, 2, 3, 2), (2, 2, 3, 3)]),
    Op("sdpa_fully_masked_row", _sdpa_dead_row, _np_sdpa_dead_row,
       [(2, 3, 4), (2, 5, 4), (2, 5, 3)]),
    Op("lstm_seq", lambda *a: _seq_all(gk.nn.rnn_functional.lstm_seq(*a)), _np_lstm_all,
       [(3, 2, 12), (12, 3), (2, 3), (2, 3)]),
    Op("lstm_seq_last_only", lambda *a: gk.nn.rnn_functional.lstm_seq(*a)[1],
       lambda *a: _np_lstm(*a)[0][-1], [(3, 2, 12), (12, 3), (2, 3), (2, 3)]),
    Op("gru_seq", lambda *a: _seq_all(gk.nn.rnn_functional.gru_seq(*a)),
       lambda *a: _np_seq_all([_np_gru(*a), _np_gru(*a)[-1]]),
       [(3, 2, 9), (9, 3), (9,), (2, 3)]),
    Op("rnn_seq_tanh", lambda *a: _seq_all(gk.nn.rnn_functional.rnn_seq(*a)),
       lambda *a: _np_seq_all([_np_rnn(*a), _np_rnn(*a)[-1]]), [(4, 2, 3), (3, 3), (2, 3)]),
    Op("rnn_seq_relu", lambda *a: gk.nn.rnn_functional.rnn_seq(*a, relu=True)[0],
       lambda *a: _np_rnn(*a, relu=True), [(4, 2, 3), (3, 3), (2, 3)],
       ["nonzero", "nonzero", "nonzero"], smooth=False),
]


OPS_BY_NAME = {op.name: op for op in OPS}
