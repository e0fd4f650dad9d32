"""Issue 12's nn modules: activations, losses, Flatten/Unflatten, parameter
containers, hooks, traversal, nn.utils. Each compared with torch (the
reference) when it is installed, on every device; the checks that need no
torch run everywhere."""
import numpy as np
import pytest

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F

from helpers import to_np, make


def _torch():
    return pytest.importorskip("torch")


def _pair(arr, device, requires_grad=True):
    torch = _torch()
    return (make(arr, device, requires_grad=requires_grad),
            torch.tensor(np.asarray(arr), requires_grad=requires_grad))


ACTIVATIONS = [("LeakyReLU", (0.2,)), ("ELU", (0.7,)), ("CELU", (1.3,)), ("SELU", ()),
               ("ReLU6", ()), ("Hardtanh", (-0.5, 2.0)), ("LogSigmoid", ()), ("SiLU", ()),
               ("Mish", ()), ("Softplus", (2.0, 5.0)), ("Softsign", ()), ("Tanhshrink", ()),
               ("Hardsigmoid", ()), ("Hardswish", ()), ("Softshrink", (0.3,)),
               ("Hardshrink", (0.3,)), ("Threshold", (0.1, -1.0)), ("GLU", (1,)),
               ("Softmin", (1,)), ("Sigmoid", ()), ("Tanh", ()), ("ReLU", ()), ("GELU", ()),
               ("Softmax", (1,)), ("LogSoftmax", (1,)), ("Identity", ())]


@pytest.mark.parametrize("name,args", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_modules_match_torch(name, args, device, rng):
    torch = _torch()
    x = rng.standard_normal((3, 4, 2)) * 3
    g, t = _pair(x, device)
    gm, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(gm) == repr(tm)
    yg, yt = gm(g), tm(t)
    np.testing.assert_allclose(to_np(yg), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(tuple(yt.shape))
    (yg * make(w, device)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    # torch's CELU and Hardsigmoid backward round a constant (1/alpha, 1/6) to
    # float32 even in float64 (its CELU gradient at x=-0.5, alpha=1.3 is
    # 0.68071241, exp(-0.5/1.3) = 0.68071240): gradkit keeps float64 there
    rtol = 1e-6 if name in ("CELU", "Hardsigmoid") else 1e-10
    np.testing.assert_allclose(to_np(g.grad), t.grad.numpy(), rtol=rtol, atol=1e-12)


def test_inplace_activation_writes_input(device):
    x = make(np.array([-2.0, 0.5, 3.0]), device)
    y = nn.LeakyReLU(0.5, inplace=True)(x)
    assert y is x
    np.testing.assert_allclose(to_np(x), [-1.0, 0.5, 3.0])


def _loss_cases(rng):
    x = rng.standard_normal((4, 3))
    p = 1 / (1 + np.exp(-x))
    y = rng.standard_normal((4, 3))
    b = (rng.random((4, 3)) > 0.5) * 1.0
    c = np.array([0, 2, 1, 2])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    q = np.exp(rng.standard_normal((4, 3)))
    q /= q.sum(1, keepdims=True)
    w = np.array([0.2, 1.0, 3.0])
    return [("MSELoss", {}, x, y), ("L1Loss", {"reduction": "sum"}, x, y),
            ("SmoothL1Loss", {"beta": 0.5}, x, y), ("HuberLoss", {"delta": 0.7}, x, y),
            ("BCELoss", {}, p, b), ("BCELoss", {"weight": w, "reduction": "none"}, p, b),
            ("BCEWithLogitsLoss", {"pos_weight": w}, x, b),
            ("CrossEntropyLoss", {}, x, c),
            ("CrossEntropyLoss", {"weight": w, "label_smoothing": 0.1}, x, c),
            ("CrossEntropyLoss", {"ignore_index": 2, "reduction": "sum"}, x, c),
            ("CrossEntropyLoss", {}, x, q),
            ("NLLLoss", {"weight": w}, logp, c), ("KLDivLoss", {"reduction": "batchmean"},
                                                  logp, q),
            ("KLDivLoss", {"reduction": "sum", "log_target": True}, logp, np.log(q))]


def test_loss_modules_match_torch(device, rng):
    torch = _torch()
    for name, kw, x, y in _loss_cases(rng):
        gkw = {k: (make(v, device) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        g, t = _pair(x, device)
        gy, ty = make(y, device), torch.tensor(y)
        lg, lt = getattr(nn, name)(**gkw)(g, gy), getattr(torch.nn, name)(**tkw)(t, ty)
        np.testing.assert_allclose(to_np(lg), lt.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name} {kw}")
        lg.sum().backward()
        lt.sum().backward()
        np.testing.assert_allclose(to_np(g.grad), t.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name} {kw} gradient")


def test_loss_module_weights_are_buffers_and_legacy_reduction():
    m = nn.CrossEntropyLoss(weight=gk.ones(3))
    assert [k for k, _ in m.named_buffers()] == ["weight"]
    assert list(m.state_dict()) == ["weight"]
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError, match="batchmean"):
        F.l1_loss(gk.ones(2), gk.ones(2), reduction="batchmean")


def test_bce_checks_range_and_shape():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(gk.tensor([0.5, 1.5]), gk.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(gk.tensor([0.5, 0.5]), gk.tensor([[0.0, 1.0]]))


def test_flatten_unflatten(device, rng):
    torch = _torch()
    x = rng.standard_normal((2, 3, 4, 5))
    g, t = _pair(x, device)
    for gm, tm in [(nn.Flatten(), torch.nn.Flatten()), (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
                   (nn.Unflatten(2, (2, 2)), torch.nn.Unflatten(2, (2, 2))),
                   (nn.Unflatten(-1, (-1, 5, 1)), torch.nn.Unflatten(-1, (-1, 5, 1)))]:
        assert repr(gm) == repr(tm)
        np.testing.assert_array_equal(to_np(gm(g)), tm(t).detach().numpy())
    with pytest.raises(RuntimeError, match="unflattened_size"):
        nn.Unflatten(1, (2, 2))(g)


def test_parameter_list_and_dict():
    pl = nn.ParameterList([gk.randn(2, 3), nn.Parameter(gk.zeros(4))])
    pl.append(gk.ones(1))
    assert len(pl) == 3 and [n for n, _ in pl.named_parameters()] == ["0", "1", "2"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in pl)
    assert pl[-1].shape == (1,)
    pd = nn.ParameterDict({"a": gk.randn(2)})
    pd["b"] = gk.zeros(3)
    pd.update([("c", gk.ones(1))])
    assert list(pd.keys()) == ["a", "b", "c"] and "b" in pd
    assert [n for n, _ in pd.named_parameters()] == ["a", "b", "c"]
    assert pd.pop("b").shape == (3,) and list(pd) == ["a", "c"]

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.ps = nn.ParameterList([gk.randn(2)])
            self.pd = nn.ParameterDict({"w": gk.randn(3)})
    assert list(M().state_dict()) == ["ps.0", "pd.w"]
    with pytest.raises(RuntimeError, match="should not be called"):
        pl(1)


def test_module_list_and_sequential_editing():
    ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    ml.insert(1, nn.Sigmoid())
    ml[0] = nn.GELU()
    del ml[2]
    assert [type(m).__name__ for m in ml] == ["GELU", "Sigmoid"]
    assert [k for k, _ in ml.named_children()] == ["0", "1"]
    assert type(ml.pop(0)).__name__ == "GELU" and len(ml) == 1
    s = nn.Sequential(nn.ReLU(), nn.Tanh())
    s.insert(0, nn.Identity()).extend([nn.Sigmoid()])
    del s[1]
    assert [type(m).__name__ for m in s] == ["Identity", "Tanh", "Sigmoid"]
    assert list(s._modules) == ["0", "1", "2"]


def _net(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.ReLU())
            self.heads = lib.nn.ModuleDict({"a": lib.nn.Linear(3, 2)})
            self.register_buffer("steps", lib.zeros(1))
            self.register_buffer("cache", lib.zeros(2), persistent=False)

        def forward(self, x):
            return self.heads["a"](self.body(x))
    return Net()


def test_traversal_names_match_torch():
    torch = _torch()
    g, t = _net(gk), _net(torch)
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in g.named_children()] == [n for n, _ in t.named_children()]
    assert [type(m).__name__ for m in g.modules()] == [type(m).__name__ for m in t.modules()]
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_buffers()] == [n for n, _ in t.named_buffers()]
    seen = []
    g.apply(lambda m: seen.append(type(m).__name__))
    tseen = []
    t.apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen


def _record_hooks(lib, m, log):
    def pre(mod, args):
        log.append(("pre", tuple(args[0].shape)))
        return (args[0] * 2,)

    def fwd(mod, args, out):
        log.append(("fwd", tuple(out.shape)))
        return out + 1

    def bwd(mod, gin, gout):
        log.append(("bwd", [None if g is None else g.detach().cpu().numpy() for g in gin],
                    [g.detach().cpu().numpy() for g in gout]))
        return (gin[0] * 3,)
    return [m.register_forward_pre_hook(pre), m.register_forward_hook(fwd),
            m.register_full_backward_hook(bwd)]


def test_hooks_match_torch(device, rng):
    torch = _torch()
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    x = rng.standard_normal((4, 3))
    logs, grads = [], []
    for lib, dev in ((gk, device), (torch, "cpu")):
        lin = lib.nn.Linear(3, 2).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        lin.to(dev)
        xi = lib.tensor(x, requires_grad=True, device=dev) if lib is gk else \
            torch.tensor(x, requires_grad=True)
        log = []
        handles = _record_hooks(lib, lin, log)
        y = lin(xi)
        (y * y).sum().backward()
        logs.append(log)
        grads.append(xi.grad.cpu().numpy() if lib is torch else to_np(xi.grad))
        for h in handles:
            h.remove()
        y2 = lin(xi)          # hooks removed: plain call
        assert len(log) == 3 and y2.shape == (4, 2)
    (g_log, t_log) = logs
    assert [e[0] for e in g_log] == [e[0] for e in t_log] == ["pre", "fwd", "bwd"]
    for ge, te in zip(g_log[2][1:], t_log[2][1:]):
        for a, b_ in zip(ge, te):
            np.testing.assert_allclose(a, b_, rtol=1e-10)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)


def test_hook_order_prepend_kwargs_and_no_grad_inputs():
    m = nn.Identity()
    order = []
    m.register_forward_hook(lambda *a: order.append("b"))
    m.register_forward_hook(lambda *a: order.append("a"), prepend=True)
    m.register_forward_pre_hook(lambda mod, args, kw: (args, {**kw}), with_kwargs=True)
    m(gk.ones(1))
    assert order == ["a", "b"]
    seen = []
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, go[0].shape)))
    lin(gk.ones(3, 2)).sum().backward()   # the input needs no grad: grad_input is (None,)
    assert seen == [((None,), (3, 2))]


def test_clip_grad_norm_and_value_match_torch(device, rng):
    torch = _torch()
    shapes = [(3, 4), (5,), (2, 2)]
    grads = [rng.standard_normal(s) * 3 for s in shapes]
    for norm_type in (2.0, 1.0, float("inf"), 3.0):
        gp = [make(np.zeros(s), device, requires_grad=True) for s in shapes]
        tp = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
        for p, q, g in zip(gp, tp, grads):
            p.grad = make(g.copy(), device)
            q.grad = torch.tensor(g.copy())
        tg = nn.utils.clip_grad_norm_(gp, 2.5, norm_type)
        tt = torch.nn.utils.clip_grad_norm_(tp, 2.5, norm_type)
        np.testing.assert_allclose(to_np(tg), tt.numpy(), rtol=1e-12)
        for p, q in zip(gp, tp):
            np.testing.assert_allclose(to_np(p.grad), q.grad.numpy(), rtol=1e-12)
    gp = [make(np.zeros(s), device, requires_grad=True) for s in shapes]
    for p, g in zip(gp, grads):
        p.grad = make(g.copy(), device)
    nn.utils.clip_grad_value_(gp, 0.5)
    for p, g in zip(gp, grads):
        np.testing.assert_allclose(to_np(p.grad), np.clip(g, -0.5, 0.5))


def test_clip_grad_nonfinite_and_empty():
    p = gk.zeros(2, requires_grad=True)
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0
    p.grad = gk.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_parameters_vector_roundtrip(device):
    m = nn.Linear(3, 2).double().to(device)
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (8,)
    np.testing.assert_array_equal(to_np(v[:6]), to_np(m.weight).reshape(-1))
    nn.utils.vector_to_parameters(v * 2, m.parameters())
    np.testing.assert_array_equal(to_np(m.bias), to_np(v[6:]) * 2)
    with pytest.raises(ValueError, match="8 values"):
        nn.utils.vector_to_parameters(v[:5], m.parameters())


def test_embedding_max_norm_matches_torch(device, rng):
    torch = _torch()
    w = rng.standard_normal((6, 4)) * 2
    idx = np.array([[0, 2], [2, 5]])
    g = nn.Embedding(6, 4, max_norm=1.5, _weight=make(w.copy(), device))
    t = torch.nn.Embedding(6, 4, max_norm=1.5, _weight=torch.tensor(w.copy()))
    assert repr(g) == repr(t)
    yg, yt = g(make(idx, device)), t(torch.tensor(idx))
    np.testing.assert_allclose(to_np(yg), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_np(g.weight), t.weight.detach().numpy(), rtol=1e-12)
    yg.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(to_np(g.weight.grad), t.weight.grad.numpy())


# ================================================================ nn.init
def test_init_orthogonal(device):
    for shape in [(4, 4), (3, 5), (6, 2), (4, 2, 3)]:
        w = make(np.zeros(shape), device)
        nn.init.orthogonal_(w, gain=2.0)
        m = to_np(w).reshape(shape[0], -1)
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-10)
    with pytest.raises(ValueError, match="2 or more"):
        nn.init.orthogonal_(make(np.zeros(3), device))


def test_init_eye_dirac_match_torch(device):
    torch = _torch()
    for shape, groups in [((4, 2, 3), 1), ((4, 4, 3, 3), 2), ((2, 3, 3, 1, 3), 1)]:
        w = make(np.full(shape, 5.0), device)
        t = torch.full(shape, 5.0, dtype=torch.float64)
        nn.init.dirac_(w, groups)
        torch.nn.init.dirac_(t, groups)
        np.testing.assert_array_equal(to_np(w), t.numpy())
    w = make(np.zeros((3, 5)), device)
    nn.init.eye_(w)
    np.testing.assert_array_equal(to_np(w), torch.nn.init.eye_(torch.zeros(3, 5)).numpy())


def test_init_trunc_normal_and_sparse(device):
    gk.manual_seed(0)
    w = make(np.zeros((200, 50)), device)
    nn.init.trunc_normal_(w, mean=0.5, std=1.0, a=-0.5, b=1.0)
    v = to_np(w)
    assert v.min() >= -0.5 and v.max() <= 1.0 and v.std() > 0.2
    s = make(np.zeros((10, 7)), device)
    nn.init.sparse_(s, 0.3, std=0.1)
    assert ((to_np(s) == 0).sum(0) >= 3).all() and (to_np(s) != 0).sum() > 0


def test_full_backward_pre_hook_matches_torch(rng):
    torch = _torch()
    x = rng.standard_normal((3, 2))
    grads, seen = [], []
    for lib in (gk, torch):
        lin = lib.nn.Linear(2, 2).double()
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(np.array([[1.0, 2.0], [3.0, -1.0]])))
            lin.bias.copy_(lib.tensor(np.array([0.5, -0.25])))
        xi = lib.tensor(x, requires_grad=True)
        log = []

        def pre(mod, gout, log=log):
            log.append(gout[0].detach().cpu().numpy() if lib is torch else to_np(gout[0]))
            return (gout[0] * 10,)
        lin.register_full_backward_pre_hook(pre)
        (lin(xi) ** 2).sum().backward()
        grads.append(xi.grad.numpy() if lib is torch else to_np(xi.grad))
        seen.append(log)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    np.testing.assert_allclose(seen[0][0], seen[1][0], rtol=1e-12)
