"""The fused normalization primitive (gradkit/ops/norm.py) on every device:
against torch (float32 and float16: outputs, input/weight/bias gradients,
running statistics), numerically safe statistics, and the kernel count of
one forward + backward (the reason it is a primitive)."""
import numpy as np
import pytest

import gradkit as gk
import gradkit.nn.functional as F
from gradkit.nn import normalization as _nn_norm
from gradkit.ops import norm as _norm
from helpers import to_np

CASES = {
    "layer_norm": ((6, 5, 8), lambda m, x, w, b, **k: m.layer_norm(x, (8,), w, b), 8),
    "layer_norm_2d": ((3, 4, 6), lambda m, x, w, b, **k: m.layer_norm(x, (4, 6), w, b), (4, 6)),
    "batch_norm": ((8, 3, 5, 4), lambda m, x, w, b, rm=None, rv=None: m.batch_norm(
        x, rm, rv, w, b, training=True, momentum=0.2), 3),
    "batch_norm_1d": ((16, 5), lambda m, x, w, b, rm=None, rv=None: m.batch_norm(
        x, rm, rv, w, b, training=True, momentum=0.2), 5),
    "instance_norm": ((3, 4, 5, 6), lambda m, x, w, b, rm=None, rv=None: m.instance_norm(
        x, rm, rv, w, b, use_input_stats=True, momentum=0.2), 4),
    "group_norm": ((3, 6, 4, 5), lambda m, x, w, b, **k: m.group_norm(x, 3, w, b), 6),
}
def _need_dtype(device, dtype):
    if dtype == "float16" and gk.device(device).type == "fake":
        pytest.skip("the fake accelerator (array_api_strict) has no float16")


TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float16": dict(rtol=2e-2, atol=2e-2)}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_norm_matches_torch(device, case, dtype):
    torch = pytest.importorskip("torch")
    _need_dtype(device, dtype)
    tF = torch.nn.functional
    shape, fn, P = CASES[case]
    P = (P,) if isinstance(P, int) else P
    r = np.random.default_rng(0)
    x = (r.standard_normal(shape) * 2 + 3).astype(dtype)
    w, b = (r.standard_normal(P) + 1).astype(dtype), r.standard_normal(P).astype(dtype)
    g = r.standard_normal(shape).astype(dtype)
    stats = case.startswith(("batch", "instance"))
    C = P[0]
    gt = [gk.tensor(a, device=device, requires_grad=True) for a in (x, w, b)]
    tt = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    kw, tkw = {}, {}
    if stats:
        rm0, rv0 = r.standard_normal(C).astype(dtype), (r.random(C) + 0.5).astype(dtype)
        kw = dict(rm=gk.tensor(rm0, device=device), rv=gk.tensor(rv0, device=device))
        tkw = dict(rm=torch.tensor(rm0), rv=torch.tensor(rv0))
    y = fn(F, *gt, **kw)
    ty = fn(tF, *tt, **tkw)
    assert y.dtype == getattr(gk, dtype) and y.device == gk.device(device)
    np.testing.assert_allclose(to_np(y).astype(np.float64), ty.detach().numpy(), **TOL[dtype])
    (y * gk.tensor(g, device=device)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    for a, ta, what in zip(gt, tt, "xwb"):
        scale = max(1.0, float(np.abs(ta.grad.numpy().astype(np.float64)).max()))
        np.testing.assert_allclose(to_np(a.grad).astype(np.float64) / scale,
                                   ta.grad.numpy().astype(np.float64) / scale,
                                   err_msg=f"grad {what}", **TOL[dtype])
    if stats:
        for k in ("rm", "rv"):
            np.testing.assert_allclose(to_np(kw[k]).astype(np.float64), tkw[k].numpy(),
                                       err_msg=k, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_statistics_are_numerically_safe(device, dtype):
    """A large offset (mean 1e4 in float32, 300 in float16, spread 1 or 0.5):
    the one-pass E[x^2] - E[x]^2 would lose every digit of the variance; the
    two-pass statistics (float32 for float16) keep it."""
    _need_dtype(device, dtype)
    off, sd = (1e4, 1.0) if dtype == "float32" else (300.0, 0.5)
    r = np.random.default_rng(1)
    x = (off + sd * r.standard_normal((4, 64))).astype(dtype)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    y = F.layer_norm(gk.tensor(x, device=device), (64,))
    np.testing.assert_allclose(to_np(y).astype(np.float64), ref,
                               **{"float32": dict(rtol=5e-3, atol=5e-3),
                                  "float16": dict(rtol=1e-2, atol=1e-2)}[dtype])
    xb = np.ascontiguousarray(x.T.reshape(64, 4, 1))
    yb = F.batch_norm(gk.tensor(xb, device=device), None, None, training=True)
    np.testing.assert_allclose(to_np(yb).reshape(64, 4).T.astype(np.float64), ref,
                               **{"float32": dict(rtol=5e-3, atol=5e-3),
                                  "float16": dict(rtol=1e-2, atol=1e-2)}[dtype])


def _count_kernels(B, fn):
    """How many backend kernels ``fn`` calls (each one launch or more on CUDA)."""
    calls = []
    names = [n for n in type(B).kernel_names() if not n.startswith("_") and n not in (
        "to_host", "from_host", "item", "dtype_name", "is_floating", "is_integral",
        "kernel_names", "check_host_sync", "asarray")]
    saved = {}
    for n in names:
        f = getattr(B, n, None)
        if not callable(f):
            continue
        saved[n] = B.__dict__.get(n, _MISSING)

        def spy(*a, _f=f, _n=n, **k):
            calls.append(_n)
            return _f(*a, **k)
        setattr(B, n, spy)
    try:
        fn()
    finally:
        for n, v in saved.items():
            if v is _MISSING:
                delattr(B, n)
            else:
                setattr(B, n, v)
    return calls


_MISSING = object()


@pytest.mark.parametrize("case", ["layer_norm", "batch_norm", "group_norm"])
def test_one_forward_and_one_backward_kernel(case, monkeypatch):
    """Forward + backward of the fused path: one forward kernel, one backward
    kernel (the composition it replaced called ~10 forward and ~20 backward)."""
    shape, fn, P = CASES[case]
    P = (P,) if isinstance(P, int) else P
    x = gk.randn(*shape, requires_grad=True)
    w, b = gk.ones(*P, requires_grad=True), gk.zeros(*P, requires_grad=True)

    def step():
        fn(F, x, w, b).sum().backward()
    fused = _count_kernels(x._B, step)
    assert fused.count("fused_norm") == 1 and fused.count("fused_norm_backward") == 1, fused
    monkeypatch.setattr(_nn_norm, "_fusable", lambda *a: False)   # the composition
    composed = _count_kernels(x._B, step)
    print(f"{case}: fused {len(fused)} kernels {fused}; composed {len(composed)}")
    assert len(composed) >= len(fused) + 10, (len(composed), composed)


def test_fused_norm_second_order_composes(device):
    """create_graph: the VJP is rebuilt from gradkit ops, so a gradient of a
    gradient sees the statistics' dependence on x (gradgradcheck in the op
    table checks the values; this checks the graph exists)."""
    x = gk.randn(3, 5, dtype=gk.float64, device=device, requires_grad=True)
    w = gk.randn(5, dtype=gk.float64, device=device, requires_grad=True)
    y = F.layer_norm(x, (5,), w)
    (gx,) = gk.autograd.grad((y * y * y).sum(), [x], create_graph=True)
    assert gx.requires_grad
    (ggx,) = gk.autograd.grad(gx.sum(), [x])
    assert ggx.shape == x.shape and np.isfinite(to_np(ggx)).all()
    assert _norm.fused_norm  # the primitive the layer ran
