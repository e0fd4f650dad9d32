"""Records for the op table (tests/op_table.py appends them): the functions of
``gk.nn.functional`` that are compositions of ops (activations, losses, pad,
similarity). Each: name, gradkit function, NumPy reference, input shapes, input
domains, and whether it is smooth enough for a second-derivative check."""
import numpy as np

import gradkit as gk
import gradkit.nn.functional as F


def _sp(a):
    return np.log1p(np.exp(-np.abs(a))) + np.maximum(a, 0)


def _sig(a):
    return 1 / (1 + np.exp(-a))


def _red(x, reduction):
    return {"mean": np.mean, "sum": np.sum}.get(reduction, lambda v: v)(x)


def _t(a, values):
    return gk.tensor(values, dtype=a.dtype, device=a.device)


def _np_pad(a, pad, mode):
    width = [(0, 0)] * a.ndim
    for j in range(len(pad) // 2):
        width[a.ndim - 1 - j] = (pad[2 * j], pad[2 * j + 1])
    return np.pad(a, width, mode={"replicate": "edge", "circular": "wrap"}.get(mode, mode))


_SELU_A, _SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_T = np.array([[0.2, 0.0, 1.0, 0.7, 0.5], [1.0, 0.3, 0.0, 0.9, 0.1], [0.4, 0.6, 0.8, 0.0, 1.0]])
_Q = np.array([[0.2, 0.0, 0.3, 0.4, 0.1], [0.5, 0.1, 0.0, 0.3, 0.1], [0.1, 0.2, 0.3, 0.0, 0.4]])

_Y = np.array([1, 4, 0])
_Y_IGN = np.array([2, 1, 3])   # with ignore_index=1: the middle row is ignored


def _ce(a, y, reduction, ignore_index=-100):
    """torch's cross_entropy with class indices, in NumPy."""
    m = a.max(1, keepdims=True)
    lp = a - m - np.log(np.exp(a - m).sum(1, keepdims=True))
    keep = y != ignore_index
    loss = -lp[np.arange(len(y)), np.where(keep, y, 0)] * keep
    return {"none": loss, "sum": loss.sum()}.get(reduction, loss.sum() / keep.sum())


RECORDS = [
    # activations ("nonzero"/"distinct" keep inputs off the kinks)
    dict(name="nn_leaky_relu", fn=lambda a: F.leaky_relu(a, 0.1),
         ref=lambda a: np.where(a > 0, a, 0.1 * a), shapes=[(3, 4)], domain=["nonzero"]),
    dict(name="nn_elu", fn=lambda a: F.elu(a * 3, alpha=0.8),
         ref=lambda a: np.where(a > 0, 3 * a, 0.8 * np.expm1(3 * a)), shapes=[(3, 4)],
         domain=["nonzero"], smooth=True),
    dict(name="nn_celu", fn=lambda a: F.celu(a, alpha=1.5),
         ref=lambda a: np.where(a > 0, a, 1.5 * np.expm1(a / 1.5)), shapes=[(3, 4)],
         domain=["nonzero"], smooth=True),
    dict(name="nn_selu", fn=F.selu,
         ref=lambda a: _SELU_S * np.where(a > 0, a, _SELU_A * np.expm1(a)), shapes=[(3, 4)],
         domain=["nonzero"], smooth=True),
    dict(name="nn_hardtanh", fn=lambda a: F.hardtanh(a * 2, -1.0, 1.5),
         ref=lambda a: np.clip(a * 2, -1.0, 1.5), shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_relu6", fn=lambda a: F.relu6(a * 2), ref=lambda a: np.clip(a * 2, 0, 6),
         shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_logsigmoid", fn=lambda a: F.logsigmoid(a * 4),
         ref=lambda a: -_sp(-4 * a), shapes=[(3, 4)], domain=["nonzero"]),
    dict(name="nn_mish", fn=F.mish, ref=lambda a: a * np.tanh(_sp(a)), shapes=[(3, 4)]),
    dict(name="nn_softsign", fn=F.softsign, ref=lambda a: a / (1 + np.abs(a)), shapes=[(3, 4)],
         domain=["nonzero"]),
    dict(name="nn_tanhshrink", fn=F.tanhshrink, ref=lambda a: a - np.tanh(a), shapes=[(3, 4)]),
    dict(name="nn_hardsigmoid", fn=lambda a: F.hardsigmoid(a * 2),
         ref=lambda a: np.clip(2 * a + 3, 0, 6) / 6, shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_hardswish", fn=lambda a: F.hardswish(a * 2),
         ref=lambda a: 2 * a * np.clip(2 * a + 3, 0, 6) / 6, shapes=[(4, 4)],
         domain=["distinct"], smooth=True),
    dict(name="nn_silu", fn=F.silu, ref=lambda a: a * _sig(a), shapes=[(3, 4)]),
    dict(name="nn_softplus", fn=lambda a: F.softplus(a, beta=2.0),
         ref=lambda a: _sp(2 * a) / 2, shapes=[(3, 4)]),
    dict(name="nn_softshrink", fn=F.softshrink,
         ref=lambda a: np.where(a > 0.5, a - 0.5, np.where(a < -0.5, a + 0.5, 0.0)),
         shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_hardshrink", fn=lambda a: F.hardshrink(a, 1.0),
         ref=lambda a: np.where(np.abs(a) > 1.0, a, 0.0), shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_threshold", fn=lambda a: F.threshold(a, 0.3, -2.0),
         ref=lambda a: np.where(a > 0.3, a, -2.0), shapes=[(4, 4)], domain=["distinct"]),
    dict(name="nn_glu", fn=lambda a: F.glu(a, 1),
         ref=lambda a: a[:, :2] * _sig(a[:, 2:]), shapes=[(3, 4)]),
    dict(name="nn_softmin", fn=lambda a: F.softmin(a, 1),
         ref=lambda a: np.exp(-a) / np.exp(-a).sum(1, keepdims=True), shapes=[(3, 4)]),
    # losses
    # cross_entropy with class indices: one fused primitive (cross_entropy_index)
    dict(name="nn_cross_entropy", fn=lambda a: F.cross_entropy(a, _t(a, _Y).long()),
         ref=lambda a: _ce(a, _Y, "mean"), shapes=[(3, 5)]),
    dict(name="nn_cross_entropy_sum", fn=lambda a: F.cross_entropy(a, _t(a, _Y).long(),
                                                                  reduction="sum"),
         ref=lambda a: _ce(a, _Y, "sum"), shapes=[(3, 5)]),
    dict(name="nn_cross_entropy_none_ignore",
         fn=lambda a: F.cross_entropy(a, _t(a, _Y_IGN).long(), ignore_index=1, reduction="none"),
         ref=lambda a: _ce(a, _Y_IGN, "none", 1), shapes=[(3, 5)]),
    dict(name="nn_binary_cross_entropy",
         fn=lambda a: F.binary_cross_entropy(gk.sigmoid(a), _t(a, _T)),
         ref=lambda a: np.mean(-(_T * np.log(_sig(a)) + (1 - _T) * np.log(1 - _sig(a)))),
         shapes=[(3, 5)]),
    dict(name="nn_binary_cross_entropy_weight_sum",
         fn=lambda a, w: F.binary_cross_entropy(gk.sigmoid(a), _t(a, _T), w, reduction="sum"),
         ref=lambda a, w: np.sum(-w * (_T * np.log(_sig(a)) + (1 - _T) * np.log(1 - _sig(a)))),
         shapes=[(3, 5), (5,)]),
    dict(name="nn_l1_loss", fn=F.l1_loss, ref=lambda a, b: np.mean(np.abs(a - b)),
         shapes=[(3, 4), (3, 4)], domain=["distinct", "any"], smooth=False),
    dict(name="nn_l1_loss_none", fn=lambda a, b: F.l1_loss(a, b, reduction="none"),
         ref=lambda a, b: np.abs(a - b), shapes=[(3, 4), (3, 4)], domain=["distinct", "any"],
         smooth=False),
    dict(name="nn_smooth_l1_loss", fn=lambda a, b: F.smooth_l1_loss(a, b, beta=0.7),
         ref=lambda a, b: np.mean(np.where(np.abs(a - b) < 0.7, 0.5 * (a - b) ** 2 / 0.7,
                                           np.abs(a - b) - 0.35)),
         shapes=[(3, 4), (3, 4)], domain=["distinct", "any"], smooth=False),
    dict(name="nn_huber_loss_sum", fn=lambda a, b: F.huber_loss(a, b, "sum", delta=0.6),
         ref=lambda a, b: np.sum(np.where(np.abs(a - b) < 0.6, 0.5 * (a - b) ** 2,
                                          0.6 * (np.abs(a - b) - 0.3))),
         shapes=[(3, 4), (3, 4)], domain=["distinct", "any"], smooth=False),
    dict(name="nn_kl_div_batchmean",
         fn=lambda a: F.kl_div(gk.log_softmax(a, 1), _t(a, _Q), reduction="batchmean"),
         ref=lambda a: np.sum(np.where(_Q > 0, _Q * np.log(np.where(_Q > 0, _Q, 1.0)), 0.0)
                              - _Q * (a - np.log(np.exp(a).sum(1, keepdims=True)))) / 3,
         shapes=[(3, 5)]),
    dict(name="nn_kl_div_log_target",
         fn=lambda a, b: F.kl_div(a, b, reduction="sum", log_target=True),
         ref=lambda a, b: np.sum(np.exp(b) * (b - a)), shapes=[(3, 5), (3, 5)]),
    # similarity and normalization
    dict(name="nn_cosine_similarity", fn=lambda a, b: F.cosine_similarity(a, b, dim=1),
         ref=lambda a, b: (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)),
         shapes=[(3, 4, 2), (1, 4, 2)]),
    dict(name="nn_pairwise_distance", fn=F.pairwise_distance,
         ref=lambda a, b: np.linalg.norm(a - b + 1e-6, axis=-1), shapes=[(3, 4), (3, 4)]),
    dict(name="nn_normalize", fn=lambda a: F.normalize(a, dim=-1),
         ref=lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True), shapes=[(3, 4)]),
    dict(name="nn_normalize_p1", fn=lambda a: F.normalize(a, p=1.0, dim=0),
         ref=lambda a: a / np.abs(a).sum(0, keepdims=True), shapes=[(3, 4)],
         domain=["nonzero"], smooth=False),
    # pad
    dict(name="nn_pad_constant", fn=lambda a: F.pad(a, (1, 2, 0, 1), value=0.5),
         ref=lambda a: np.pad(a, [(0, 0), (0, 1), (1, 2)], constant_values=0.5),
         shapes=[(2, 3, 4)]),
    dict(name="nn_pad_constant_crop", fn=lambda a: F.pad(a, (-1, 2, 1, -1)),
         ref=lambda a: np.pad(a, [(1, 0), (0, 2)])[:-1, 1:], shapes=[(3, 4)]),
    dict(name="nn_pad_reflect", fn=lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
         ref=lambda a: _np_pad(a, (2, 1, 1, 2), "reflect"), shapes=[(2, 3, 4)]),
    dict(name="nn_pad_replicate", fn=lambda a: F.pad(a, (2, 1), mode="replicate"),
         ref=lambda a: _np_pad(a, (2, 1), "replicate"), shapes=[(2, 3, 4)]),
    dict(name="nn_pad_circular", fn=lambda a: F.pad(a, (1, 3, 2, 0, 1, 1), mode="circular"),
         ref=lambda a: _np_pad(a, (1, 3, 2, 0, 1, 1), "circular"), shapes=[(1, 2, 3, 4)]),
]
