"""The one op table (STYLE.md principle 10). Each record: a gradkit function, a
NumPy reference, how to draw its inputs, and whether it is smooth enough for a
second-derivative check. test_ops.py runs every record on every device."""
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

import gradkit as gk


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
    return x


def _sm(x, d):
    e = np.exp(x - x.max(axis=d, keepdims=True))
    return e / e.sum(axis=d, keepdims=True)


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
]


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


OPS_BY_NAME = {op.name: op for op in OPS}
