"""Attention and recurrent layers (issue 13): modules on every device against
the cpu result, dropout and error behaviour; and, when torch is installed,
every module against torch (outputs, input and parameter gradients, a few
optimizer steps, train vs eval, loading a torch state_dict by name). The
functional primitives (sdpa, lstm_seq, gru_seq, rnn_seq) are in the op table."""
import numpy as np
import pytest

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F
from gradkit.autograd import gradcheck

from helpers import to_np
from gradkit.errors import GradkitError


def _grads(model):
    return {n: to_np(p.grad) for n, p in model.named_parameters() if p.grad is not None}


def _copy_to(model, device):
    return {k: gk.tensor(to_np(v), device=device) for k, v in model.state_dict().items()}


# (factory, input shapes, how to reduce the output to a loss)
def _lstm():
    return nn.LSTM(5, 4, num_layers=2, bidirectional=True, batch_first=True)


MODULES = {
    "lstm": (_lstm, [(3, 6, 5)], lambda o: o[0].sum() + 2 * o[1][0].sum() + 3 * o[1][1].sum()),
    "gru": (lambda: nn.GRU(5, 4, num_layers=2, bidirectional=True), [(6, 3, 5)],
            lambda o: o[0].sum() + 2 * o[1].sum()),
    "rnn_relu": (lambda: nn.RNN(5, 4, nonlinearity="relu", bias=False), [(6, 3, 5)],
                 lambda o: o[0].sum() + o[1].sum()),
    "lstm_cell": (lambda: nn.LSTMCell(5, 4), [(3, 5)], lambda o: o[0].sum() + 2 * o[1].sum()),
    "gru_cell": (lambda: nn.GRUCell(5, 4), [(3, 5)], lambda o: o.sum()),
    "rnn_cell": (lambda: nn.RNNCell(5, 4), [(3, 5)], lambda o: o.sum()),
    "mha": (lambda: nn.MultiheadAttention(8, 2), [(4, 3, 8), (5, 3, 8), (5, 3, 8)],
            lambda o: o[0].sum() + (o[1] ** 2).sum()),
    "encoder_layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [(5, 3, 8)],
                      lambda o: (o ** 2).sum()),
    "decoder_layer": (lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=True,
                                                         activation="gelu"),
                      [(4, 3, 8), (5, 3, 8)], lambda o: (o ** 2).sum()),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_module_on_device_matches_cpu(name, device, rng):
    make, shapes, loss = MODULES[name]
    gk.manual_seed(0)
    ref = make().double()
    xs = [rng.standard_normal(s) for s in shapes]
    outs = []
    for dev in ("cpu", device):
        m = make().double().to(dev)
        m.load_state_dict(_copy_to(ref, dev))
        ins = [gk.tensor(x, device=dev, requires_grad=True) for x in xs]
        out = m(*ins)
        loss(out).backward()
        first = out[0] if isinstance(out, tuple) else out
        assert first.device == device if dev == device else True
        outs.append((to_np(first), [to_np(t.grad) for t in ins], _grads(m)))
    (o1, gi1, gp1), (o2, gi2, gp2) = outs
    np.testing.assert_allclose(o2, o1, rtol=1e-10, atol=1e-12)
    for a, b in zip(gi2, gi1):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert gp1.keys() == gp2.keys() and gp1
    for k in gp1:
        np.testing.assert_allclose(gp2[k], gp1[k], rtol=1e-10, atol=1e-12)


def test_sdpa_dropout_is_one_function_under_a_seed(rng):
    q, k, v = (gk.tensor(rng.standard_normal(s), requires_grad=True)
               for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3)])

    def f(q, k, v):
        gk.manual_seed(3)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)

    assert gradcheck(f, [q, k, v])
    a, b = f(q, k, v), F.scaled_dot_product_attention(q, k, v)
    assert not np.allclose(to_np(a), to_np(b))
    zero = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert np.all(to_np(zero) == 0.0)


def test_sdpa_float_mask_and_causal_agree(rng):
    q, k, v = (gk.tensor(rng.standard_normal(s)) for s in [(2, 4, 3), (2, 4, 3), (2, 4, 2)])
    m = nn.Transformer.generate_square_subsequent_mask(4, dtype=gk.float64)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    b = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12)
    assert np.isneginf(to_np(m)[0, 1]) and to_np(m)[1, 0] == 0.0


def test_dropout_only_in_training():
    gk.manual_seed(0)
    m = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = gk.randn(5, 3, 8)
    m.eval()
    e1, e2 = m(x), m(x)
    np.testing.assert_array_equal(to_np(e1), to_np(e2))
    m.train()
    assert not np.allclose(to_np(m(x)), to_np(e1))
    lstm = nn.LSTM(4, 3, num_layers=2, dropout=0.5)
    y = gk.randn(6, 2, 4)
    lstm.eval()
    np.testing.assert_array_equal(to_np(lstm(y)[0]), to_np(lstm(y)[0]))
    lstm.train()
    assert not np.allclose(to_np(lstm(y)[0]), to_np(lstm.eval()(y)[0]))


def test_encoder_stack_clones_are_independent():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    a, b = enc.layers[0], enc.layers[1]
    np.testing.assert_array_equal(to_np(a.linear1.weight), to_np(b.linear1.weight))
    assert a.linear1.weight.array is not b.linear1.weight.array
    enc(gk.randn(5, 3, 8)).sum().backward()
    assert a.linear1.weight.grad is not None and b.linear1.weight.grad is not None


def test_lstm_double_backward_through_module(rng):
    m = nn.LSTM(3, 2).double()
    x = gk.tensor(rng.standard_normal((4, 2, 3)), requires_grad=True)
    (g,) = gk.grad(m(x)[0].sum(), [x], create_graph=True)
    (gg,) = gk.grad((g ** 2).sum(), [x])
    # against finite differences of the first derivative
    eps = 1e-6
    xa = to_np(x)
    d = rng.standard_normal(xa.shape)

    def first(v):
        t = gk.tensor(v, requires_grad=True)
        (gt,) = gk.grad(m(t)[0].sum(), [t])
        return (to_np(gt) ** 2).sum()

    fd = (first(xa + eps * d) - first(xa - eps * d)) / (2 * eps)
    np.testing.assert_allclose((to_np(gg) * d).sum(), fd, rtol=1e-5)


@pytest.mark.parametrize("call,match", [
    (lambda: nn.LSTM(5, 4)(gk.randn(3, 2, 6)), r"gradkit\.nn\.LSTM: input\.size\(-1\) must be"),
    (lambda: nn.GRU(5, 4)(gk.randn(3, 2, 5), gk.randn(2, 2, 4)), r"gradkit\.nn\.GRU: Expected "
     r"hidden size \(1, 2, 4\)"),
    (lambda: nn.MultiheadAttention(8, 3), "divisible by num_heads"),
    (lambda: F.scaled_dot_product_attention(gk.randn(2, 3, 4), gk.randn(2, 5, 3),
                                            gk.randn(2, 5, 3)), r"scaled_dot_product_attention: "
     r"query's last dim \(4\) must equal key's \(3\)"),
    (lambda: F.scaled_dot_product_attention(gk.randn(3, 4), gk.randn(5, 4), gk.randn(5, 2),
                                            attn_mask=gk.ones(3, 5), is_causal=True),
     "either attn_mask or is_causal"),
    (lambda: nn.LSTM(5, 4, proj_size=4), "proj_size has to be smaller than hidden_size"),
    (lambda: nn.RNNBase("GRU", 5, 4, proj_size=2), "only supported for LSTM"),
    (lambda: nn.LSTM(5, 4, proj_size=-1), "positive integer or zero"),
    (lambda: nn.LSTM(5, 4, proj_size=2)(gk.randn(3, 2, 5), (gk.zeros(1, 2, 4), gk.zeros(1, 2, 4))),
     r"Expected hidden size \(1, 2, 2\)"),
])
def test_errors_name_the_layer(call, match):
    with pytest.raises((gk.GradkitError, ValueError, TypeError), match=match):
        call()


# ====================================================================== torch
TORCH_CASES = {
    "lstm": ("LSTM", (5, 4), dict(num_layers=2, bidirectional=True, batch_first=True,
                                  dropout=0.3), [(3, 6, 5)]),
    "lstm_h0": ("LSTM", (5, 4), {}, [(6, 3, 5)]),
    "lstm_proj": ("LSTM", (5, 4), dict(num_layers=2, bidirectional=True, proj_size=3,
                                       batch_first=True), [(3, 6, 5)]),
    "lstm_proj_h0": ("LSTM", (5, 4), dict(proj_size=2), [(6, 3, 5)]),
    "gru": ("GRU", (5, 4), dict(num_layers=2, bidirectional=True, dropout=0.3), [(6, 3, 5)]),
    "rnn": ("RNN", (5, 4), dict(nonlinearity="relu", num_layers=2), [(6, 3, 5)]),
    "rnn_unbatched": ("RNN", (5, 4), {}, [(6, 5)]),
    "lstm_cell": ("LSTMCell", (5, 4), {}, [(3, 5)]),
    "gru_cell": ("GRUCell", (5, 4), {}, [(3, 5)]),
    "rnn_cell": ("RNNCell", (5, 4), dict(nonlinearity="relu"), [(3, 5)]),
    "mha": ("MultiheadAttention", (8, 2), dict(dropout=0.3), [(4, 3, 8), (5, 3, 8), (5, 3, 8)]),
    "mha_kv": ("MultiheadAttention", (8, 2), dict(kdim=6, vdim=7, batch_first=True,
                                                  add_bias_kv=True), [(3, 4, 8), (3, 5, 6),
                                                                      (3, 5, 7)]),
    "encoder_layer": ("TransformerEncoderLayer", (8, 2), dict(dim_feedforward=16, dropout=0.3),
                      [(5, 3, 8)]),
    "decoder_layer": ("TransformerDecoderLayer", (8, 2), dict(dim_feedforward=16, dropout=0.3,
                                                              norm_first=True, activation="gelu",
                                                              batch_first=True),
                      [(3, 4, 8), (3, 5, 8)]),
    "transformer": ("Transformer", (), dict(d_model=8, nhead=2, num_encoder_layers=2,
                                            num_decoder_layers=1, dim_feedforward=16,
                                            dropout=0.3), [(5, 3, 8), (4, 3, 8)]),
}


def _to_list(o):
    if isinstance(o, (tuple, list)):
        return [y for x in o for y in _to_list(x)]
    return [] if o is None else [o]


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_module_matches_torch(case):
    torch = pytest.importorskip("torch")
    cls, args, kw, shapes = TORCH_CASES[case]
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(*args, **kw).double()
    g = getattr(nn, cls)(*args, **kw).double()
    assert repr(g) == repr(t)
    names = [n for n, _ in t.named_parameters()]
    assert [n for n, _ in g.named_parameters()] == names
    for (n, tp), (_, gp) in zip(t.named_parameters(), g.named_parameters()):
        assert tuple(gp.shape) == tuple(tp.shape), n
    g.load_state_dict({k: gk.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    t.eval()   # dropout off: train-mode randomness differs between libraries
    g.eval()
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(s) for s in shapes]
    extra = {}
    if case in ("lstm_h0", "lstm_proj_h0"):
        h0 = rng.standard_normal((1, 3, kw.get("proj_size") or 4))
        c0 = rng.standard_normal((1, 3, 4))
        extra = {"t": ((torch.tensor(h0), torch.tensor(c0)),), "g": ((gk.tensor(h0),
                                                                      gk.tensor(c0)),)}
    if case == "transformer":
        extra = {"t": (), "g": ()}
        tm = {"tgt_mask": t.generate_square_subsequent_mask(4, dtype=torch.float64)}
        gm = {"tgt_mask": g.generate_square_subsequent_mask(4, dtype=gk.float64)}
    else:
        tm = gm = {}
    # SGD: Adam's g / sqrt(v) would blow float noise in exactly-zero gradients (the
    # key projection's bias) up to visible steps
    topt = torch.optim.SGD(t.parameters(), lr=0.01, momentum=0.9)
    gopt = gk.optim.SGD(g.parameters(), lr=0.01, momentum=0.9)
    for step in range(3):
        tin = [torch.tensor(x, requires_grad=True) for x in xs]
        gin = [gk.tensor(x, requires_grad=True) for x in xs]
        to = _to_list(t(*tin, *extra.get("t", ()), **tm))
        go = _to_list(g(*gin, *extra.get("g", ()), **gm))
        assert len(to) == len(go)
        for a, b in zip(go, to):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9,
                                       atol=1e-10)
        tl = sum((o * (i + 1)).sum() + (o ** 2).sum() for i, o in enumerate(to))
        gl = sum([(o * float(i + 1)).sum() + (o ** 2).sum() for i, o in enumerate(go)],
                 gk.tensor(0.0, dtype=gk.float64))
        topt.zero_grad()
        gopt.zero_grad()
        tl.backward()
        gl.backward()
        for a, b in zip(gin, tin):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=1e-10)
        tp = dict(t.named_parameters())
        for n, p in g.named_parameters():
            ref = tp[n].grad.numpy()   # exactly-zero gradients carry rounding noise of the rest
            np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-8,
                                       atol=1e-12 * max(1.0, np.abs(ref).max()),
                                       err_msg=f"{case} step {step}: {n}")
        topt.step()
        gopt.step()
    tp = dict(t.named_parameters())
    for n, p in g.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), tp[n].detach().numpy(), rtol=1e-7,
                                   atol=1e-9)
    if kw.get("dropout"):
        # train mode: dropout on, so two calls differ, and the eval output is recovered after
        g.train()
        gin = [gk.tensor(x) for x in xs]
        a, b = _to_list(g(*gin, **gm))[0], _to_list(g(*gin, **gm))[0]
        assert not np.allclose(to_np(a), to_np(b))
        g.eval()
        t.eval()
        np.testing.assert_allclose(to_np(_to_list(g(*gin, **gm))[0]),
                                   _to_list(t(*[torch.tensor(x) for x in xs], **tm))[0]
                                   .detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cls,args", [("LSTM", (5, 7)), ("GRU", (5, 7)), ("RNN", (5, 7)),
                                      ("MultiheadAttention", (12, 3)),
                                      ("TransformerEncoderLayer", (12, 3))])
def test_init_distribution_like_torch(cls, args):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(*args)
    g = getattr(nn, cls)(*args)
    tp = dict(t.named_parameters())
    for n, p in g.named_parameters():
        a, b = p.detach().numpy(), tp[n].detach().numpy()
        assert a.dtype == np.float32 and a.shape == b.shape
        if cls in ("LSTM", "GRU", "RNN"):                # every parameter U(+-1/sqrt(H))
            assert np.abs(a).max() <= 1 / np.sqrt(args[1]) + 1e-7, n
        if np.all(b == b.flat[0]):                       # constants: zeros/ones
            np.testing.assert_array_equal(a, b)
        elif b.size >= 100:                              # same uniform bound, filled
            bound = np.abs(b).max()
            assert 0.9 * bound <= np.abs(a).max() <= 1.05 * bound, n


def test_mixed_dtypes_are_refused():
    m = nn.LSTM(3, 2)                       # float32 weights
    with pytest.raises(gk.GradkitError, match="must have one dtype"):
        m(gk.randn(4, 1, 3, dtype=gk.float64))


def test_encoder_clones_keep_the_layers_dtype(device):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).double().to(device)
    enc = nn.TransformerEncoder(layer, 2)
    for p in enc.parameters():
        assert p.dtype == gk.float64 and p.device == device
    x = gk.randn(5, 3, 8, dtype=gk.float64, device=device)
    assert enc(x).dtype == gk.float64


def test_activation_callable_equals_name():
    gk.manual_seed(0)
    a = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu")
    b = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=F.gelu)
    b.load_state_dict(a.state_dict())
    x = gk.randn(4, 2, 8)
    np.testing.assert_array_equal(to_np(a(x)), to_np(b(x)))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


def test_fully_masked_rows_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal(s) for s in [(1, 2, 3), (1, 4, 3), (1, 4, 2)])
    m = np.ones((2, 4), bool)
    m[0] = False
    tq = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    gq = [gk.tensor(a, requires_grad=True) for a in (q, k, v)]
    to = torch.nn.functional.scaled_dot_product_attention(*tq, attn_mask=torch.tensor(m))
    go = F.scaled_dot_product_attention(*gq, attn_mask=gk.tensor(m))
    np.testing.assert_allclose(to_np(go), to.detach().numpy(), rtol=1e-12, atol=1e-15)
    to.sum().backward()
    go.sum().backward()
    for a, b in zip(gq, tq):
        np.testing.assert_allclose(to_np(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_sdpa_enable_gqa_matches_torch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 6, 4, 3)), rng.standard_normal((2, 3, 5, 3)), \
        rng.standard_normal((2, 3, 5, 2))
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    gs = [gk.tensor(a, device=device, requires_grad=True) for a in (q, k, v)]
    to = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=True, enable_gqa=True)
    go = F.scaled_dot_product_attention(*gs, is_causal=True, enable_gqa=True)
    w = rng.standard_normal(tuple(to.shape))
    to.backward(torch.tensor(w))
    go.backward(gk.tensor(w, device=device))
    np.testing.assert_allclose(to_np(go.detach()), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    for t, g in zip(ts, gs):
        np.testing.assert_allclose(to_np(g.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(GradkitError, match="dividing query's 6"):
        F.scaled_dot_product_attention(gs[0], gs[1][:, :2].repeat(1, 2, 1, 1), gs[2],
                                       enable_gqa=True)
