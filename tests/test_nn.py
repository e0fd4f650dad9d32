"""gk.nn: Module mechanics, layers, functional losses and init.

Each layer and loss is checked three ways: against NumPy reference formulas
and float64 finite differences (no torch needed) on every device, and against
torch given the same weights when torch is installed."""
import math

import numpy as np
import pytest

import gradkit as gk
from gradkit import nn
from gradkit.autograd import gradcheck
import gradkit.nn.functional as F

from helpers import to_np, make


def _torch():
    return pytest.importorskip("torch")


def _t(a, requires_grad=False):
    torch = _torch()
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def _close(got, ref, rtol=1e-10, atol=1e-12):
    got = to_np(got) if isinstance(got, gk.Tensor) else np.asarray(got)
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    assert got.shape == ref.shape, f"shape {got.shape} != {ref.shape}"
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


def _lsm(x, d):
    m = x.max(axis=d, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=d, keepdims=True))


# ==================================================================== Module
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4, dtype=gk.float64)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(4, 2, dtype=gk.float64)
        self.scale = nn.Parameter(gk.ones(2, dtype=gk.float64))
        self.register_buffer("count", gk.zeros(1, dtype=gk.float64))
        self.register_buffer("scratch", gk.zeros(2), persistent=False)
        self.note = gk.zeros(3)  # a plain tensor: not registered

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_registration_and_traversal():
    m = MLP()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())
    assert type(m.fc1.weight) is gk.Tensor and m.fc1.weight.is_leaf
    assert not isinstance(m.note, nn.Parameter) and not isinstance(gk.ones(2), nn.Parameter)
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(m.state_dict()) == ["scale", "count", "fc1.weight", "fc1.bias", "fc2.weight",
                                    "fc2.bias"]
    # a leaf that requires grad is a parameter too; None keeps the slot
    m.extra = gk.zeros(2, requires_grad=True)
    assert "extra" in dict(m.named_parameters())
    m.extra = None
    assert "extra" not in dict(m.named_parameters()) and m.extra is None
    with pytest.raises(TypeError, match="parameter 'scale'"):
        m.scale = gk.ones(2)  # a plain tensor can't replace a parameter
    del m.fc2
    assert "fc2.weight" not in dict(m.named_parameters())
    assert "Linear(in_features=3, out_features=4, bias=True)" in repr(m)


def test_shared_parameters_once_and_assign_before_init():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]

    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(gk.ones(2))

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Bad()


def test_train_eval_zero_grad():
    m = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    assert m.training and m[1].training
    m.eval()
    assert not m.training and not m[1].training
    m.train()
    assert m[1].training
    m(gk.randn(4, 3)).sum().backward()
    w = m[0].weight
    g = w.grad
    m.zero_grad(set_to_none=False)
    assert w.grad is g and not to_np(g).any()
    m.zero_grad()
    assert w.grad is None


def test_to_device_and_dtype_keeps_identity(device):
    m = MLP()
    params = list(m.parameters())
    m(gk.randn(2, 3, dtype=gk.float64)).sum().backward()
    ref = {k: to_np(v) for k, v in m.state_dict().items()}
    m.to(device)
    assert all(a is b for a, b in zip(m.parameters(), params))
    for p in m.parameters():
        assert p.device == device and p.grad.device == device and p.requires_grad
    assert m.count.device == device
    m.to(gk.float32)
    assert all(p.dtype == gk.float32 for p in m.parameters())
    m.to("cpu").double()
    for k, v in m.state_dict().items():
        np.testing.assert_allclose(to_np(v), ref[k], rtol=1e-6)


def test_load_state_dict_round_trip_and_strict(device):
    a, b = MLP().to(device), MLP()
    res = b.load_state_dict(a.state_dict())  # across devices
    assert res.missing_keys == [] and res.unexpected_keys == []
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(to_np(x), to_np(y))
    sd = a.state_dict()
    sd.pop("fc1.bias")
    sd["bogus"] = gk.zeros(1)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(sd)
    assert '"fc1.bias"' in str(e.value) and '"bogus"' in str(e.value)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["bogus"]


def test_load_state_dict_shape_mismatch_changes_nothing():
    m = MLP()
    before = {k: to_np(v).copy() for k, v in m.state_dict().items()}
    vers = [p._version for p in m.parameters()]
    sd = {k: gk.randn(*v.shape, dtype=gk.float64) for k, v in m.state_dict().items()}
    sd["fc2.weight"] = gk.randn(4, 2, dtype=gk.float64)  # transposed shape
    sd["scale"] = gk.randn(3, dtype=gk.float64)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert "size mismatch for fc2.weight" in msg and "(4, 2)" in msg and "(2, 4)" in msg
    assert "size mismatch for scale" in msg and "(3,)" in msg and "(2,)" in msg
    assert "nothing was changed" in msg
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(to_np(v), before[k])  # fc1 too (listed earlier)
    assert [p._version for p in m.parameters()] == vers


def test_load_state_dict_accepts_host_arrays_and_casts():
    m = nn.Linear(2, 3)
    sd = {"weight": np.arange(6.0).reshape(3, 2), "bias": np.ones(3)}
    m.load_state_dict(sd)
    assert m.weight.dtype == gk.float32
    np.testing.assert_array_equal(to_np(m.weight), sd["weight"])


# ================================================================== layers
def _linear_np(x, w, b):
    return x @ w.T + b


def test_linear_forward_and_gradcheck(device, rng):
    gk.manual_seed(0)
    lin = nn.Linear(4, 3, dtype=gk.float64).to(device)
    x = make(rng.standard_normal((5, 4)), device, requires_grad=True)
    w, b = to_np(lin.weight), to_np(lin.bias)
    np.testing.assert_allclose(to_np(lin(x)), _linear_np(to_np(x), w, b), rtol=1e-12)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, lin.weight, lin.bias])
    x3 = make(rng.standard_normal((2, 5, 4)), device, requires_grad=True)
    assert lin(x3).shape == (2, 5, 3)
    assert F.linear(x, lin.weight).shape == (5, 3)
    with pytest.raises(RuntimeError, match="has 3 features, but weight"):
        lin(gk.randn(5, 3, dtype=gk.float64, device=device))


@pytest.mark.parametrize("xshape", [(4,), (2, 3, 4)], ids=["1d", "3d"])
def test_linear_primitive_nd_and_double_backward(xshape, device, rng):
    from gradkit.autograd import gradgradcheck
    x = make(rng.standard_normal(xshape), device, requires_grad=True)
    w = make(rng.standard_normal((3, 4)), device, requires_grad=True)
    b = make(rng.standard_normal(3), device, requires_grad=True)
    np.testing.assert_allclose(to_np(F.linear(x, w, b)), to_np(x) @ to_np(w).T + to_np(b),
                               rtol=1e-12)
    assert gradcheck(F.linear, [x, w, b])
    assert gradgradcheck(F.linear, [x, w, b])
    y = F.linear(x, w)
    y.sum().backward()
    assert w.grad.shape == (3, 4)  # in the weight's own layout, no transposed copy
    if device == "cpu":
        assert w.grad.array.flags.c_contiguous


def test_linear_default_init_bounds():
    gk.manual_seed(1)
    lin = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)  # kaiming_uniform(a=sqrt(5)) gives the same bound
    w, b = to_np(lin.weight), to_np(lin.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert lin.weight.grad_fn is None and lin.weight.requires_grad


def test_embedding_forward_grad_padding(device):
    gk.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=1, dtype=gk.float64).to(device)
    w = to_np(emb.weight)
    assert not w[1].any() and w.std() > 0.3
    idx = gk.tensor([[0, 1, 4], [4, 1, 2]], device=device)
    out = emb(idx)
    np.testing.assert_array_equal(to_np(out), w[to_np(idx)])
    (out * gk.arange(3, dtype=gk.float64, device=device)).sum().backward()
    g = to_np(emb.weight.grad)
    np.testing.assert_array_equal(g[1], 0)  # padding row: no gradient
    np.testing.assert_array_equal(g[4], 2 * np.arange(3))  # repeated index accumulates
    np.testing.assert_array_equal(g[3], 0)
    with pytest.raises(RuntimeError, match="integer tensor"):
        emb(gk.tensor([0.0, 1.0], device=device))


def test_embedding_out_of_range():
    emb = nn.Embedding(5, 3)
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        emb(gk.tensor([0, 5]))


def test_layer_norm_matches_numpy_and_gradcheck(device, rng):
    x = make(rng.standard_normal((3, 2, 5)), device, requires_grad=True)
    w = make(rng.standard_normal((2, 5)), device, requires_grad=True)
    b = make(rng.standard_normal((2, 5)), device, requires_grad=True)
    xn = to_np(x)
    mu = xn.mean((-2, -1), keepdims=True)
    var = ((xn - mu) ** 2).mean((-2, -1), keepdims=True)
    ref = (xn - mu) / np.sqrt(var + 1e-5) * to_np(w) + to_np(b)
    np.testing.assert_allclose(to_np(F.layer_norm(x, (2, 5), w, b)), ref, rtol=1e-10)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (2, 5), w, b), [x, w, b])
    ln = nn.LayerNorm(5, dtype=gk.float64).to(device)
    assert to_np(ln.weight).tolist() == [1.0] * 5 and not to_np(ln.bias).any()
    y = to_np(ln(x))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(x, (4,))


def test_dropout(device):
    gk.manual_seed(0)
    x = gk.ones(2000, dtype=gk.float64, device=device, requires_grad=True)
    d = nn.Dropout(0.25)
    y = d(x)
    yn = to_np(y)
    assert set(np.unique(yn)) <= {0.0, 1.0 / 0.75}
    assert abs((yn == 0).mean() - 0.25) < 0.04
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), yn)  # the gradient uses the same mask
    d.eval()
    assert d(x) is x
    assert F.dropout(x, 0.0) is x
    assert not to_np(F.dropout(x, 1.0)).any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_activations_and_sequential(device, rng):
    x = make(rng.standard_normal((4, 3)), device, requires_grad=True)
    xn = to_np(x)
    np.testing.assert_allclose(to_np(nn.ReLU()(x)), np.maximum(xn, 0))
    np.testing.assert_allclose(to_np(nn.Tanh()(x)), np.tanh(xn), rtol=1e-12)
    c = math.sqrt(2 / math.pi)
    tanh_gelu = 0.5 * xn * (1 + np.tanh(c * (xn + 0.044715 * xn ** 3)))
    np.testing.assert_allclose(to_np(nn.GELU("tanh")(x)), tanh_gelu, rtol=1e-10)
    assert gradcheck(lambda x: F.gelu(x, approximate="tanh"), [x])
    seq = nn.Sequential(nn.Linear(3, 5), nn.GELU("tanh"), nn.Linear(5, 2)).double().to(device)
    assert seq(x).shape == (4, 2) and len(seq) == 3 and isinstance(seq[1], nn.GELU)
    assert len(seq[:2]) == 2
    assert gradcheck(lambda x: seq(x), [x])


def test_gelu_exact(device, rng):
    erf = np.vectorize(math.erf)
    x = make(rng.standard_normal((3, 4)), device, requires_grad=True)
    xn = to_np(x)
    np.testing.assert_allclose(to_np(F.gelu(x)), 0.5 * xn * (1 + erf(xn / math.sqrt(2))),
                               rtol=1e-7, atol=1e-9)
    assert gradcheck(F.gelu, [x])


# ================================================================== losses
CE_CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(ignore_index=2),
    dict(weight=True),
    dict(weight=True, ignore_index=0, reduction="mean"),
    dict(label_smoothing=0.2),
    dict(label_smoothing=0.1, weight=True, ignore_index=1),
    dict(label_smoothing=0.3, reduction="none", ignore_index=3),
]


def _ce_np(x, y, cdim, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """NumPy reference of torch's cross_entropy with class indices."""
    C = x.shape[cdim]
    lp = np.moveaxis(_lsm(x, cdim), cdim, -1).reshape(-1, C)
    y = y.reshape(-1)
    w = np.ones(C) if weight is None else weight
    valid = y != ignore_index
    ys = np.where(valid, y, 0)
    wy = w[ys] * valid
    nll = -lp[np.arange(len(y)), ys] * wy
    smooth = -(lp * w).sum(1) * valid
    loss = (1 - label_smoothing) * nll + label_smoothing / C * smooth
    if reduction == "none":
        return loss.reshape(np.delete(np.array(x.shape), cdim)) if x.ndim > 1 else loss[0]
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / wy.sum()


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2), (4,)], ids=["NC", "NCd", "C"])
@pytest.mark.parametrize("kw", CE_CASES, ids=[str(k) for k in CE_CASES])
def test_cross_entropy_numpy_and_gradcheck(shape, kw, device, rng):
    kw = dict(kw)
    cdim = 1 if len(shape) > 1 else 0
    C = shape[cdim]
    x = make(rng.standard_normal(shape), device, requires_grad=True)
    tshape = shape[:cdim] + shape[cdim + 1:]
    y = rng.integers(0, C, size=tshape)
    ign = kw.get("ignore_index", 0)
    y.flat[-1] = (ign + 1) % C  # never all ignored
    if y.size > 1:
        y.flat[0] = ign  # at least one ignored target where relevant
    yt = gk.tensor(y, device=device)
    w = None
    if kw.pop("weight", False):
        w = make(rng.random(C) + 0.5, device, requires_grad=False)
    ref = _ce_np(to_np(x), y, cdim, None if w is None else to_np(w), **kw)
    got = F.cross_entropy(x, yt, weight=w, **kw)
    np.testing.assert_allclose(to_np(got), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x: F.cross_entropy(x, yt, weight=w, **kw), [x])


def test_cross_entropy_probabilities_and_nll(device, rng):
    x = make(rng.standard_normal((5, 3)), device, requires_grad=True)
    p = rng.random((5, 3))
    p /= p.sum(1, keepdims=True)
    pt = make(p, device, requires_grad=True)
    lp = _lsm(to_np(x), 1)
    np.testing.assert_allclose(to_np(F.cross_entropy(x, pt)), -(p * lp).sum(1).mean(),
                               rtol=1e-12)
    ps = p * 0.9 + 0.1 / 3
    np.testing.assert_allclose(to_np(F.cross_entropy(x, pt, label_smoothing=0.1)),
                               -(ps * lp).sum(1).mean(), rtol=1e-12)
    assert gradcheck(lambda x, p: F.cross_entropy(x, p, reduction="sum"), [x, pt])
    y = gk.tensor([0, 2, 1, 1, 0], device=device)
    logp = F.log_softmax(x, 1)
    np.testing.assert_allclose(to_np(F.nll_loss(logp, y)), to_np(F.cross_entropy(x, y)),
                               rtol=1e-12)


def test_cross_entropy_errors():
    x = gk.randn(4, 3)
    with pytest.raises(RuntimeError, match="integer tensor"):
        F.cross_entropy(x, gk.tensor([0.0, 1.0, 2.0, 1.0])[:3])
    with pytest.raises(ValueError, match="expected target of shape"):
        F.cross_entropy(x, gk.tensor([0, 1]))
    with pytest.raises(IndexError, match="outside"):
        F.cross_entropy(x, gk.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, gk.tensor([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, gk.tensor([0, 1, 2, 1]), label_smoothing=1.5)
    # ignore_index outside [0, C) is not an error
    F.cross_entropy(x, gk.tensor([0, -100, 2, 1]))


def test_mse_and_bce_numpy_and_gradcheck(device, rng):
    a = make(rng.standard_normal((4, 3)), device, requires_grad=True)
    b = make(rng.standard_normal((4, 3)), device, requires_grad=True)
    an, bn = to_np(a), to_np(b)
    np.testing.assert_allclose(to_np(F.mse_loss(a, b)), ((an - bn) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(to_np(F.mse_loss(a, b, reduction="none")), (an - bn) ** 2)
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction="sum"), [a, b])
    t = make(rng.random((4, 3)), device, requires_grad=True)
    w = make(rng.random((4, 3)), device)
    pw = make(rng.random(3) + 0.5, device)
    tn, wn, pwn = to_np(t), to_np(w), to_np(pw)
    sig = 1 / (1 + np.exp(-an))
    ref = -(pwn * tn * np.log(sig) + (1 - tn) * np.log(1 - sig)) * wn
    got = F.binary_cross_entropy_with_logits(a, t, weight=w, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(to_np(got), ref, rtol=1e-10)
    assert gradcheck(lambda a, t: F.binary_cross_entropy_with_logits(
        a, t, weight=w, pos_weight=pw), [a, t])


def test_softmax_family(device, rng):
    x = make(rng.standard_normal((3, 4)), device, requires_grad=True)
    xn = to_np(x)
    np.testing.assert_allclose(to_np(F.log_softmax(x, -1)), _lsm(xn, -1), rtol=1e-12)
    np.testing.assert_allclose(to_np(F.softmax(x, 0)), np.exp(_lsm(xn, 0)), rtol=1e-12)
    assert gradcheck(lambda x: F.softmax(x, 1), [x])
    assert gradcheck(lambda x: F.log_softmax(x, 0), [x])


@pytest.mark.parametrize("big", [1e4, -1e4])
def test_losses_stable_for_large_inputs(big, device):
    x = make(np.array([[big, 0.0, -big], [0.0, big, 1.0]]), device, requires_grad=True)
    y = gk.tensor([0, 2], device=device)
    loss = F.cross_entropy(x, y, reduction="none", label_smoothing=0.1)
    lp = _lsm(to_np(x), 1)
    ref = -(0.9 * lp[[0, 1], [0, 2]] + 0.1 / 3 * lp.sum(1))
    np.testing.assert_allclose(to_np(loss), ref, rtol=1e-12)
    loss.sum().backward()
    assert np.isfinite(to_np(x.grad)).all()
    sm = to_np(F.softmax(x, 1))
    assert np.isfinite(sm).all() and np.allclose(sm.sum(1), 1)
    z = make(np.array([big, -big, 0.0]), device, requires_grad=True)
    t = make(np.array([1.0, 1.0, 0.0]), device)
    bce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    zn = to_np(z)
    ref = np.maximum(zn, 0) - zn * to_np(t) + np.log1p(np.exp(-np.abs(zn)))
    np.testing.assert_allclose(to_np(bce), ref, rtol=1e-12, atol=1e-12)
    bce.sum().backward()
    assert np.isfinite(to_np(z.grad)).all()
    big_ln = make(np.array([[big, -big, 3.0]]), device, requires_grad=True)
    out = F.layer_norm(big_ln, (3,))
    out.sum().backward()
    assert np.isfinite(to_np(out)).all() and np.isfinite(to_np(big_ln.grad)).all()


# ================================================================ vs torch
def _copy_to_torch(gk_mod, t_mod):
    torch = _torch()
    with torch.no_grad():
        sd = {k: torch.tensor(to_np(v)) for k, v in gk_mod.state_dict().items()}
        t_mod.load_state_dict(sd)


def _compare_grads(gk_mod, t_mod, rtol=1e-10):
    tparams = dict(t_mod.named_parameters())
    for name, p in gk_mod.named_parameters():
        _close(p.grad, tparams[name].grad, rtol=rtol, atol=1e-12)


def test_layers_match_torch(device, rng):
    torch = _torch()
    tnn = torch.nn
    cases = [
        (nn.Linear(4, 3), tnn.Linear(4, 3), (5, 4)),
        (nn.LayerNorm(4), tnn.LayerNorm(4), (2, 3, 4)),
        (nn.LayerNorm((3, 4), elementwise_affine=False), tnn.LayerNorm((3, 4), elementwise_affine=False), (2, 3, 4)),
        (nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)),
         tnn.Sequential(tnn.Linear(4, 6), tnn.ReLU(), tnn.Linear(6, 5), tnn.Tanh(), tnn.Linear(5, 2)),
         (7, 4)),
        (nn.Sequential(nn.Linear(4, 4), nn.GELU("tanh")), tnn.Sequential(tnn.Linear(4, 4), tnn.GELU("tanh")),
         (3, 4)),
    ]
    for g, t, shape in cases:
        g.double().to(device)
        t.double()
        # perturb LayerNorm's ones/zeros so the affine part is really tested
        with gk.no_grad():
            for p in g.parameters():
                p.copy_(make(rng.standard_normal(p.shape), device))
        _copy_to_torch(g, t)
        xn = rng.standard_normal(shape)
        x = make(xn, device, requires_grad=True)
        tx = _t(xn, requires_grad=True)
        gy, ty = g(x), t(tx)
        _close(gy, ty)
        v = rng.standard_normal(ty.shape)
        (gy * make(v, device)).sum().backward()
        (ty * _t(v)).sum().backward()
        _close(x.grad, tx.grad)
        _compare_grads(g, t)


def test_embedding_matches_torch(device):
    torch = _torch()
    g = nn.Embedding(6, 3, padding_idx=2).double().to(device)
    t = torch.nn.Embedding(6, 3, padding_idx=2).double()
    _copy_to_torch(g, t)
    idx = np.array([[0, 2, 5], [5, 5, 1]])
    gy, ty = g(gk.tensor(idx, device=device)), t(torch.tensor(idx))
    _close(gy, ty)
    v = np.random.default_rng(0).standard_normal(ty.shape)
    (gy * make(v, device)).sum().backward()
    (ty * _t(v)).sum().backward()
    _compare_grads(g, t)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2), (4,)], ids=["NC", "NCd", "C"])
@pytest.mark.parametrize("kw", CE_CASES, ids=[str(k) for k in CE_CASES])
def test_cross_entropy_matches_torch(shape, kw, rng):
    torch = _torch()
    kw = dict(kw)
    cdim = 1 if len(shape) > 1 else 0
    C = shape[cdim]
    xn = rng.standard_normal(shape)
    y = rng.integers(0, C, size=shape[:cdim] + shape[cdim + 1:])
    ign = kw.get("ignore_index", 0)
    y.flat[-1] = (ign + 1) % C
    if y.size > 1:
        y.flat[0] = ign
    w = rng.random(C) + 0.5 if kw.pop("weight", False) else None
    x, tx = make(xn, "cpu", requires_grad=True), _t(xn, requires_grad=True)
    got = F.cross_entropy(x, gk.tensor(y), weight=None if w is None else gk.tensor(w), **kw)
    ref = torch.nn.functional.cross_entropy(tx, torch.tensor(y),
                                            weight=None if w is None else torch.tensor(w), **kw)
    _close(got, ref)
    v = rng.standard_normal(ref.shape)
    (got * gk.tensor(v)).sum().backward()
    (ref * _t(v)).sum().backward()
    _close(x.grad, tx.grad)


def test_losses_match_torch(rng):
    torch = _torch()
    tf = torch.nn.functional
    xn, tn = rng.standard_normal((4, 3)) * 3, rng.random((4, 3))
    wn, pwn = rng.random((4, 3)), rng.random(3) + 0.5
    pn = rng.random((4, 3))
    pn /= pn.sum(1, keepdims=True)
    cases = [
        (lambda F_, x, t, w, pw, p: F_.mse_loss(x, t), None),
        (lambda F_, x, t, w, pw, p: F_.mse_loss(x, t, reduction="sum"), None),
        (lambda F_, x, t, w, pw, p: F_.binary_cross_entropy_with_logits(x, t), None),
        (lambda F_, x, t, w, pw, p: F_.binary_cross_entropy_with_logits(
            x, t, weight=w, pos_weight=pw, reduction="sum"), None),
        (lambda F_, x, t, w, pw, p: F_.cross_entropy(x, p, label_smoothing=0.2), None),
        (lambda F_, x, t, w, pw, p: F_.log_softmax(x, 0), None),
        (lambda F_, x, t, w, pw, p: F_.softmax(x, -1), None),
        (lambda F_, x, t, w, pw, p: F_.layer_norm(x, (3,), w[0], pw), None),
        (lambda F_, x, t, w, pw, p: F_.gelu(x, approximate="tanh"), None),
    ]
    for fn, _ in cases:
        gx, gt = make(xn, "cpu", requires_grad=True), make(tn, "cpu", requires_grad=True)
        tx, tt = _t(xn, requires_grad=True), _t(tn, requires_grad=True)
        got = fn(F, gx, gt, gk.tensor(wn), gk.tensor(pwn), gk.tensor(pn))
        ref = fn(tf, tx, tt, _t(wn), _t(pwn), _t(pn))
        _close(got, ref)
        v = rng.standard_normal(ref.shape)
        (got * gk.tensor(v)).sum().backward()
        (ref * _t(v)).sum().backward()
        _close(gx.grad, tx.grad)
        if tt.grad is not None:
            _close(gt.grad, tt.grad)


def test_gelu_exact_matches_torch(rng):
    torch = _torch()
    xn = rng.standard_normal((3, 4)) * 2
    x, tx = make(xn, "cpu", requires_grad=True), _t(xn, requires_grad=True)
    got, ref = F.gelu(x), torch.nn.functional.gelu(tx)
    _close(got, ref, rtol=1e-7, atol=1e-9)
    got.sum().backward()
    ref.sum().backward()
    _close(x.grad, tx.grad, rtol=1e-7, atol=1e-9)


# ==================================================================== init
def test_init_statistics_and_seeding(device):
    t = gk.empty(300, 200, dtype=gk.float64, device=device)
    v0 = t._version
    nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 200)
    a = to_np(t)
    assert t._version > v0 and t.grad_fn is None
    assert np.abs(a).max() <= bound and abs(a.std() - bound / math.sqrt(3)) < 0.02 * bound
    nn.init.kaiming_normal_(t, mode="fan_out")
    assert abs(to_np(t).std() - math.sqrt(2.0 / (1 + 0.01 ** 2)) / math.sqrt(300)) < 0.002
    nn.init.xavier_uniform_(t, gain=2.0)
    b = 2.0 * math.sqrt(6.0 / 500)
    assert np.abs(to_np(t)).max() <= b and np.abs(to_np(t)).max() > 0.95 * b
    nn.init.xavier_normal_(t)
    assert abs(to_np(t).std() - math.sqrt(2.0 / 500)) < 0.002
    nn.init.normal_(t, 3.0, 0.5)
    assert abs(to_np(t).mean() - 3.0) < 0.01 and abs(to_np(t).std() - 0.5) < 0.01
    nn.init.uniform_(t, -2.0, -1.0)
    assert to_np(t).min() >= -2.0 and to_np(t).max() <= -1.0
    nn.init.zeros_(t)
    assert not to_np(t).any()
    nn.init.ones_(t)
    assert (to_np(t) == 1).all()
    gk.manual_seed(7)
    x1 = to_np(nn.init.normal_(gk.empty(5, device=device))).copy()
    gk.manual_seed(7)
    x2 = to_np(nn.init.normal_(gk.empty(5, device=device)))
    np.testing.assert_array_equal(x1, x2)
    # works on a parameter that requires grad, with no graph recorded
    p = nn.Parameter(gk.zeros(4, 4))
    nn.init.xavier_uniform_(p)
    assert p.is_leaf and p.requires_grad and to_np(p.detach()).any()
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(gk.empty(3))


def test_calculate_gain():
    g = nn.init.calculate_gain
    assert g("linear") == 1 and g("sigmoid") == 1 and g("tanh") == 5.0 / 3
    assert g("relu") == math.sqrt(2.0) and g("selu") == 0.75
    assert g("leaky_relu") == math.sqrt(2.0 / (1 + 0.01 ** 2))
    assert g("leaky_relu", math.sqrt(5)) == math.sqrt(2.0 / 6)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        g("swish")
    torch = pytest.importorskip("torch")
    for name, param in [("tanh", None), ("relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert g(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
