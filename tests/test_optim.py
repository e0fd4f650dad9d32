"""gk.optim: SGD, Adam, AdamW against torch (five steps from the same weights,
float64, to 1e-6 and in fact to rounding) and against NumPy reference formulas
written out here (no torch needed), on every device."""
import numpy as np
import pytest

import gradkit as gk
from gradkit import nn, optim

from helpers import to_np, make

SHAPES = [(3, 4), (4,), ()]
STEPS = 5

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.8, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05, maximize=True),
    dict(lr=0.1, momentum=0.5, dampening=0.5, weight_decay=0.01),
]
ADAM_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, amsgrad=True),
    dict(lr=0.1, weight_decay=0.05, amsgrad=True, maximize=True),
    dict(lr=0.01, betas=(0.3, 0.9)),  # 1 - beta1 >= 0.5: torch's other lerp formula
]
CASES = ([("SGD", c) for c in SGD_CASES] + [("Adam", c) for c in ADAM_CASES]
         + [("AdamW", c) for c in ADAM_CASES])
IDS = [f"{n}-{c}" for n, c in CASES]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return w0, grads


def _run_gk(name, kw, device, w0, grads, dtype=np.float64):
    ps = [make(w.astype(dtype), device, requires_grad=True) for w in w0]
    opt = getattr(optim, name)(ps, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = make(g.astype(dtype), device)
        opt.step()
    return ps, opt


# -------------------------------------------------------- NumPy references
def _sgd_ref(w0, grads, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
             maximize=False):
    ps = [w.copy() for w in w0]
    bufs = [None] * len(ps)
    for gs in grads:
        for i, g in enumerate(gs):
            d = -g if maximize else g
            d = d + weight_decay * ps[i]
            if momentum:
                bufs[i] = d.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * d
                d = d + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * d
    return ps


def _adam_ref(w0, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
              maximize=False, decoupled=False):
    b1, b2 = betas
    ps = [w.copy() for w in w0]
    m = [np.zeros_like(w) for w in w0]
    v = [np.zeros_like(w) for w in w0]
    vmax = [np.zeros_like(w) for w in w0]
    for t, gs in enumerate(grads, 1):
        for i, g in enumerate(gs):
            d = -g if maximize else g
            if decoupled:
                ps[i] = ps[i] * (1 - lr * weight_decay)
            else:
                d = d + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d * d
            vv = v[i]
            if amsgrad:
                vmax[i] = np.maximum(vmax[i], v[i])
                vv = vmax[i]
            mhat = m[i] / (1 - b1 ** t)
            ps[i] = ps[i] - lr * mhat / (np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps)
    return ps


def _ref(name, kw, w0, grads):
    if name == "SGD":
        return _sgd_ref(w0, grads, **kw)
    if name == "AdamW":
        kw = {"weight_decay": 1e-2, **kw}  # AdamW's default
    return _adam_ref(w0, grads, decoupled=(name == "AdamW"), **kw)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_numpy_reference(name, kw, device):
    w0, grads = _data()
    ps, _ = _run_gk(name, kw, device, w0, grads)
    for p, r in zip(ps, _ref(name, kw, w0, grads)):
        assert p.device == device
        np.testing.assert_allclose(to_np(p.detach()), r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_torch(name, kw, device):
    torch = pytest.importorskip("torch")
    w0, grads = _data(1)
    ps, _ = _run_gk(name, kw, device, w0, grads)
    tps = [torch.tensor(w, requires_grad=True) for w in w0]
    topt = getattr(torch.optim, name)(tps, **kw)
    for gs in grads:
        for p, g in zip(tps, gs):
            p.grad = torch.tensor(g)
        topt.step()
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(to_np(p.detach()), tp.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,kw", [CASES[5], CASES[11], CASES[-2]], ids=[IDS[5], IDS[11], IDS[-2]])
def test_float32_in_place(name, kw, device):
    w0, grads = _data(2)
    ps, opt = _run_gk(name, kw, device, w0, grads, dtype=np.float32)
    for p, r in zip(ps, _ref(name, kw, w0, grads)):
        assert p.dtype == gk.float32
        np.testing.assert_allclose(to_np(p.detach()), r, rtol=1e-4, atol=1e-5)
    for st in opt.state.values():
        for k, v in st.items():
            if isinstance(v, gk.Tensor):
                assert v.dtype == gk.float32 and v.device == device


def test_model_training_matches_torch():
    """End to end: a small MLP, cross-entropy, param groups, five steps each."""
    torch = pytest.importorskip("torch")
    gk.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in g.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    for gk_cls, t_cls, kw in [(optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                              (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
                              (optim.AdamW, torch.optim.AdamW, dict(lr=0.01))]:
        go = gk_cls([{"params": g[0].parameters()}, {"params": g[2].parameters(), "lr": 0.03}], **kw)
        to = t_cls([{"params": t[0].parameters()}, {"params": t[2].parameters(), "lr": 0.03}], **kw)
        for _ in range(STEPS):
            go.zero_grad()
            nn.functional.cross_entropy(g(gk.tensor(x)), gk.tensor(y)).backward()
            go.step()
            to.zero_grad()
            torch.nn.functional.cross_entropy(t(torch.tensor(x)), torch.tensor(y)).backward()
            to.step()
        for (k, a), b in zip(g.state_dict().items(), t.state_dict().values()):
            np.testing.assert_allclose(to_np(a), b.numpy(), rtol=0, atol=1e-10, err_msg=k)


def test_param_groups():
    w0, grads = _data()
    ps = [make(w, "cpu", requires_grad=True) for w in w0]
    opt = optim.SGD([{"params": ps[:2], "lr": 0.5, "momentum": 0.9}, {"params": [ps[2]]}],
                    lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["momentum"] == 0
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = make(g, "cpu")
        opt.step()
    r0 = _sgd_ref(w0[:2], [g[:2] for g in grads], lr=0.5, momentum=0.9)
    r1 = _sgd_ref(w0[2:], [g[2:] for g in grads], lr=0.1)
    for p, r in zip(ps, r0 + r1):
        np.testing.assert_allclose(to_np(p.detach()), r, rtol=1e-12)
    extra = gk.zeros(2, dtype=gk.float64, requires_grad=True)
    opt.add_param_group({"params": extra, "lr": 1.0})
    assert opt.param_groups[2]["params"][0] is extra
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [ps[0]]})


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("Adam", dict(lr=0.1, amsgrad=True)),
                                     ("AdamW", dict(lr=0.1))])
def test_state_dict_round_trip(name, kw, device, tmp_path):
    """3 steps, save (through gk.save), restore into a fresh optimizer over
    copies of the parameters, 2 more steps on both: identical."""
    w0, grads = _data(3)
    ps = [make(w, device, requires_grad=True) for w in w0]
    opt = getattr(optim, name)(ps, **kw)

    def steps(params, o, gs_list):
        for gs in gs_list:
            for p, g in zip(params, gs):
                p.grad = make(g, device)
            o.step()

    steps(ps, opt, grads[:3])
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    gk.save({"optim": sd, "params": [p.detach() for p in ps]}, tmp_path / "opt.npz")
    ck = gk.load(tmp_path / "opt.npz")
    ps2 = [gk.tensor(p, requires_grad=True) for p in ck["params"]]
    opt2 = getattr(optim, name)(ps2, lr=123.0)
    opt2.load_state_dict(ck["optim"])
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    if name != "SGD":
        assert opt2.param_groups[0]["betas"] == (0.9, 0.999)
        assert opt2.state[ps2[0]]["step"] == 3
    steps(ps, opt, grads[3:])
    steps(ps2, opt2, grads[3:])
    for a, b in zip(ps, ps2):
        assert b.device == device
        np.testing.assert_array_equal(to_np(a.detach()), to_np(b.detach()))


def test_load_state_dict_checks():
    ps = [gk.zeros(2, requires_grad=True), gk.zeros(3, requires_grad=True)]
    opt = optim.Adam(ps)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    sd = optim.Adam(ps[:1]).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(sd)


def test_in_place_version_and_identity():
    p = gk.tensor([1.0, 2.0], requires_grad=True)
    arr = p.array
    y = p * p  # saves p
    opt = optim.SGD([p], lr=0.1)
    p.grad = gk.tensor([1.0, 1.0])
    v = p._version
    opt.step()
    assert p.array is arr and p._version == v + 1
    np.testing.assert_allclose(to_np(p.detach()), [0.9, 1.9], rtol=1e-6)
    with pytest.raises(RuntimeError):
        y.sum().backward()  # p changed in place after the graph saved it


def test_zero_grad_and_skip_params_without_grad():
    a = gk.tensor([1.0], requires_grad=True)
    b = gk.tensor([1.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert to_np(b.detach())[0] == 1.0 and b not in opt.state  # no grad: untouched
    assert to_np(a.detach())[0] != 1.0
    g = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is g and to_np(g)[0] == 0
    opt.zero_grad()
    assert a.grad is None


def test_closure():
    p = gk.tensor([3.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with gk.no_grad():  # the closure runs with grad enabled anyway
        loss = opt.step(closure)
    assert float(loss) == 9.0 and to_np(p.detach())[0] == 1.5


def test_bad_arguments():
    p = gk.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid epsilon"):
        optim.AdamW([p], eps=-1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="same parameter twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)


# ------------------------------------------------ the CUDA kernels' source
def _emulate_elementwise(k, T):
    """C++ for one CuPy ElementwiseKernel, generated the way CuPy does it (a
    typedef for T, references to the array elements, scalars by value), as a
    host loop: no GPU needed to compile and run the kernel's body."""
    def params(s):
        return [tuple(p.split()) for p in s.split(",")]
    ctype = {"float64": "double", "bool": "bool"}
    args, refs = [], []
    for t, n in params(k.ins):
        if t == "T":
            args.append(f"const T* _raw_{n}")
            refs.append(f"const T &{n} = _raw_{n}[i];")
        else:
            args.append(f"{ctype[t]} {n}")
    for t, n in params(k.outs):
        args.append(f"T* _raw_{n}")
        refs.append(f"T &{n} = _raw_{n}[i];")
    return (f"#include <cmath>\nusing std::sqrt;\ntypedef {T} T;\n{k.preamble}\n"
            f'extern "C" void run(long _n, {", ".join(args)}) {{\n'
            f"  for (long i = 0; i < _n; i++) {{ {' '.join(refs)}\n{k.op};\n}}\n}}\n"), params


def test_cuda_optimizer_kernels_compile_and_match_numpy(tmp_path, monkeypatch):
    """Without a GPU: the fused CuPy kernels' C++ compiles with g++ (-Wall
    -Werror) and gives the NumPy backend's results, float32 and float64."""
    import ctypes
    import shutil
    import subprocess
    import sys
    import types
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")

    class EK:  # records what the kernel table passes to cupy.ElementwiseKernel
        def __init__(self, in_params, out_params, operation, name, preamble="", options=()):
            self.ins, self.outs, self.op, self.name, self.preamble = (
                in_params, out_params, operation, name, preamble)

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(
        ElementwiseKernel=EK, ReductionKernel=lambda **kw: None))
    from gradkit.backends import cupy_backend
    kernels = cupy_backend._kernels.__wrapped__()  # bypass the cache: stub kernels
    from gradkit.backends import get
    NB = get("cpu")
    rng = np.random.default_rng(0)
    for T, dt, tol in (("float", np.float32, 1e-6), ("double", np.float64, 1e-15)):
        libs = {}
        for name in ("sgd_update", "sgd_momentum_update", "adam_update", "adam_amsgrad_update"):
            src, params = _emulate_elementwise(kernels[name], T)
            (tmp_path / f"{name}_{T}.cpp").write_text(src)
            so = tmp_path / f"{name}_{T}.so"
            r = subprocess.run(["g++", "-O0", "-Wall", "-Werror", "-shared", "-fPIC", "-o",
                                str(so), str(tmp_path / f"{name}_{T}.cpp")],
                               capture_output=True, text=True)
            assert r.returncode == 0, f"{name} ({T}) does not compile:\n{r.stderr}\n{src}"
            libs[name] = (ctypes.CDLL(str(so)).run, params(kernels[name].ins))

        def call(name, n, ins, outs):
            fn, pin = libs[name]
            args = [ctypes.c_long(n)]
            for (t, _), v in zip(pin, ins):
                args.append(v.ctypes.data_as(ctypes.c_void_p) if t == "T" else
                            ctypes.c_double(v) if t == "float64" else ctypes.c_bool(v))
            fn(*args, *[o.ctypes.data_as(ctypes.c_void_p) for o in outs])

        n = 13
        for trial in range(12):
            p0 = rng.standard_normal(n).astype(dt)
            wd = [0.0, 0.05][trial % 2]
            mom = [0.0, 0.9][(trial // 2) % 2]
            damp = 0.2 if trial % 3 == 0 and mom else 0.0
            nest = bool(mom and not damp and trial % 5 < 2)
            maxi = trial % 4 == 3
            pa, pb, ba, bb = p0.copy(), p0.copy(), np.zeros(n, dt), np.zeros(n, dt)
            for s in range(3):
                g = rng.standard_normal(n).astype(dt)
                NB.sgd_update(pa, g, ba if mom else None, 0.1, wd, mom, damp, nest, maxi, s == 0)
                if mom:
                    call("sgd_momentum_update", n, [g, 0.1, wd, mom, 1.0 - damp, nest, maxi,
                                                    s == 0], [pb, bb])
                else:
                    call("sgd_update", n, [g, 0.1, wd, maxi], [pb])
            np.testing.assert_allclose(pb, pa, rtol=tol, atol=tol)
            for decoupled in (False, True):
                for ams in (False, True):
                    b1, b2, eps, lr = [0.9, 0.3][trial % 2], 0.999, 1e-8, 0.1
                    sa = [np.zeros(n, dt) for _ in range(3)]
                    sb = [np.zeros(n, dt) for _ in range(3)]
                    pa, pb = p0.copy(), p0.copy()
                    for t in range(1, 4):
                        g = rng.standard_normal(n).astype(dt)
                        ss, bc = lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5
                        NB.adam_update(pa, g, sa[0], sa[1], sa[2] if ams else None, lr, b1, b2,
                                       eps, wd, ss, bc, decoupled, maxi)
                        decay, w = (1.0 - lr * wd, 0.0) if decoupled else (1.0, wd)
                        ins = [g, decay, w, 1.0 - b1, b2, eps, ss, bc, maxi]
                        call("adam_amsgrad_update" if ams else "adam_update", n, ins,
                             [pb] + sb[:3 if ams else 2])
                    np.testing.assert_allclose(pb, pa, rtol=tol, atol=tol)
