"""The implementations a cell can run, behind one small interface (`Bench`).

- numpy:    the workload's hand-written forward+backward on `xp` = numpy (cpu) or
            cupy (cuda);
- gradkit, torch: the workload's `forward(F, ...)` with `F` = `TorchLike`, whose
            methods map straight onto the library's PyTorch-style API;
- autograd: the same `forward` with `F` = `NumpyLike` over `autograd.numpy`.

Elementwise functions of `F` are the libraries' own functions (no wrapper, so W1
measures the library, not us). The layers W2/W4/W5 need (cross_entropy,
layer_norm, gelu, softmax, logsumexp) use the library's own version where it has
one that works (probed forward and backward on a tiny input), else the
composition from basic ops below; each cell notes which it used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

IMPLS = ("numpy", "gradkit", "torch", "autograd")

GELU_C = math.sqrt(2.0 / math.pi)  # GELU, tanh approximation, in every implementation


class Skip(Exception):
    """The implementation cannot run here (not installed, no GPU...)."""


# ---- compositions from basic ops, written once against F ------------------------

def logsumexp(F, x, axis):
    m = F.max(x, axis, keepdims=True)  # stable: subtract the max
    return F.squeeze(m, axis) + F.log(F.sum(F.exp(x - m), axis))


def softmax(F, x, axis):
    e = F.exp(x - F.max(x, axis, keepdims=True))
    return e / F.sum(e, axis, keepdims=True)


def cross_entropy(F, logits, labels):
    """Mean over the batch of logsumexp(logits) - logits[label]."""
    return F.mean(F.logsumexp(logits, 1) - F.pick(logits, labels))


def layer_norm(F, x, gamma, beta, eps=1e-5):
    mu = F.mean(x, -1, keepdims=True)
    xc = x - mu
    var = F.mean(xc * xc, -1, keepdims=True)
    return xc * (var + eps) ** -0.5 * gamma + beta


def gelu(F, x):
    return 0.5 * x * (1.0 + F.tanh(GELU_C * (x + 0.044715 * (x * x * x))))


COMPOSED = {"logsumexp": logsumexp, "softmax": softmax, "cross_entropy": cross_entropy,
            "layer_norm": layer_norm, "gelu": gelu}


# ---- the namespaces F ----------------------------------------------------------

class TorchLike:
    """F for torch and gradkit: both follow PyTorch's API (dim=, keepdim=)."""

    def __init__(self, mod, device, label):
        self.mod, self.device, self.label = mod, device, label
        self.exp, self.log, self.tanh, self.sin = mod.exp, mod.log, mod.tanh, mod.sin
        self.relu = mod.relu
        self.notes = []
        nnf = getattr(getattr(mod, "nn", None), "functional", None)
        natives = {  # name -> (the library's callable or None, how we call it)
            "logsumexp": (getattr(mod, "logsumexp", None), lambda f, x, axis: f(x, dim=axis)),
            "softmax": (getattr(mod, "softmax", None), lambda f, x, axis: f(x, dim=axis)),
            "cross_entropy": (getattr(nnf, "cross_entropy", None), lambda f, z, y: f(z, y)),
            "layer_norm": (getattr(nnf, "layer_norm", None),
                           lambda f, x, g, b, eps=1e-5: f(x, (x.shape[-1],), g, b, eps)),
            "gelu": (getattr(nnf, "gelu", None), lambda f, x: f(x, approximate="tanh")),
        }
        missing = []
        for name, (fn, call) in natives.items():
            if fn is None:
                missing.append(name)
                setattr(self, name, partial(COMPOSED[name], self))
            else:
                setattr(self, name, self._native_or_composed(name, fn, call))
        if missing:
            self.notes.append(f"composed from basic ops (no {label} version): {', '.join(missing)}")
        for name in ("conv2d", "max_pool2d"):  # layers with no composition here (W6)
            if getattr(nnf, name, None) is not None:
                setattr(self, name, getattr(nnf, name))

    def _native_or_composed(self, name, fn, call):
        composed = partial(COMPOSED[name], self)
        native = partial(call, fn)
        try:  # probe forward and backward on a tiny input
            x = self.tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], np.float32), True)
            if name == "cross_entropy":
                out = native(x, self.tensor(np.array([2, 0])))
            elif name == "layer_norm":
                out = native(x, self.tensor(np.ones(3, np.float32)),
                             self.tensor(np.zeros(3, np.float32)))
            elif name in ("logsumexp", "softmax"):
                out = native(x, 1)
            else:
                out = native(x)
            (out * out).sum().backward()
        except Exception as e:  # noqa: BLE001 - any failure means: do not use it
            self.notes.append(f"{name}: composed from basic ops, {self.label}'s own raised "
                              f"{type(e).__name__}: {str(e)[:160]}")
            return composed
        return native

    def tensor(self, a, requires_grad=False):
        """A copy of the NumPy array `a` (its dtype kept) on our device."""
        return self.mod.tensor(a, device=self.device, requires_grad=requires_grad)

    def sum(self, x, axis=None, keepdims=False):
        return x.sum() if axis is None else x.sum(dim=axis, keepdim=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)

    def max(self, x, axis, keepdims=False):
        return x.max(dim=axis, keepdim=keepdims)[0]  # (values, indices)

    def squeeze(self, x, axis):
        return x.squeeze(axis)

    def reshape(self, x, shape):
        return x.reshape(*shape)

    def permute(self, x, axes):
        return x.permute(*axes)

    def swapaxes(self, x, a, b):
        return x.transpose(a, b)

    def pick(self, x, idx):
        """x[i, idx[i]] for every row i (integer-array indexing)."""
        return x[self.mod.arange(x.shape[0], device=self.device), idx]

    def lstm(self, x, w_ih, w_hh, b_ih, b_hh):
        """W7: the library's own one-layer ``nn.LSTM`` over x (T, N, I), run with
        these leaves as its weights -> (out, (h_n, c_n))."""
        m = getattr(self, "_lstm", None)
        if m is None:
            m = self._lstm = self.mod.nn.LSTM(x.shape[-1], w_hh.shape[1]).to(self.device)
        ws = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
        if self.label == "torch":
            return self.mod.func.functional_call(m, ws, (x,))
        for k, v in ws.items():
            setattr(m, k, v)
        return m(x)


class NumpyLike:
    """F for HIPS autograd: autograd.numpy with the same method names."""

    def __init__(self, anp):
        self.anp = anp
        self.exp, self.log, self.tanh, self.sin = anp.exp, anp.log, anp.tanh, anp.sin
        self.notes = [f"composed from basic ops: {', '.join(COMPOSED)}"]
        for name, fn in COMPOSED.items():
            setattr(self, name, partial(fn, self))

    def relu(self, x):
        return self.anp.maximum(x, 0.0)

    def sum(self, x, axis=None, keepdims=False):
        return self.anp.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self.anp.mean(x, axis=axis, keepdims=keepdims)

    def max(self, x, axis, keepdims=False):
        return self.anp.max(x, axis=axis, keepdims=keepdims)

    def squeeze(self, x, axis):
        return self.anp.squeeze(x, axis)

    def reshape(self, x, shape):
        return self.anp.reshape(x, shape)

    def permute(self, x, axes):
        return self.anp.transpose(x, axes)

    def swapaxes(self, x, a, b):
        return self.anp.swapaxes(x, a, b)

    def pick(self, x, idx):
        return x[np.arange(x.shape[0]), idx]

    def lstm(self, x, w_ih, w_hh, b_ih, b_hh):
        """W7 composed step by step (HIPS autograd has no LSTM)."""
        anp = self.anp
        H = w_hh.shape[1]
        xg = x @ w_ih.T + (b_ih + b_hh)
        h = c = anp.zeros((x.shape[1], H), x.dtype)
        hs = []
        for t in range(x.shape[0]):
            z = xg[t] + h @ w_hh.T
            i, f, o = (0.5 * anp.tanh(0.5 * z[:, k * H:(k + 1) * H]) + 0.5 for k in (0, 1, 3))
            c = f * c + i * anp.tanh(z[:, 2 * H:3 * H])
            h = o * anp.tanh(c)
            hs.append(h)
        return anp.stack(hs), (h[None], c[None])


# ---- Bench: one implementation of one workload, ready to run ---------------------

@dataclass
class Bench:
    grads: Callable[[], tuple]       # forward + backward -> (loss, [grad per param])
    host: Callable                   # an impl array -> float64 NumPy array
    params: Callable[[], list]       # current parameters, as impl arrays
    update: Callable | None = None   # SGD update from grads (W2), in place
    clear: Callable[[], None] = lambda: None  # drop .grad (before measuring memory)
    sync: Callable[[], None] = lambda: None
    memory: str = "rss"              # how to measure peak memory: rss | cupy | torch
    notes: list = field(default_factory=list)

    def step(self):
        """One timed step: forward, backward, SGD update if any, device sync."""
        loss, grads = self.grads()
        if self.update is not None:
            self.update(grads)
        self.sync()


def build(impl, workload, device, params, consts) -> Bench:
    """Raise Skip when `impl` cannot run on `device` here."""
    return _build(impl, workload, device, params, consts)


def _needs(F, workload, label):
    missing = [n for n in workload.needs if not hasattr(F, n)]
    if missing:
        raise Skip(f"{label} has no {', '.join(missing)}")
    return F


def _build(impl, workload, device, params, consts) -> Bench:
    cuda = device.startswith("cuda")
    if impl == "numpy":
        return _numpy_bench(workload, device, params, consts, cuda)
    if impl == "autograd":
        if cuda:
            raise Skip("HIPS autograd is NumPy-only (cpu)")
        try:
            import autograd
            import autograd.numpy as anp
        except ImportError as e:
            raise Skip(f"not installed ({e}); pip install autograd") from None
        return _autograd_bench(workload, params, consts,
                               _needs(NumpyLike(anp), workload, "HIPS autograd"), autograd)
    if impl == "torch":
        try:
            import torch
        except ImportError as e:
            raise Skip(f"not installed ({e})") from None
        if cuda and not torch.cuda.is_available():
            raise Skip(f"torch {torch.__version__} sees no CUDA device")
        if cuda:   # full float32 as gradkit and CuPy compute it: cuDNN's TF32 default
            torch.backends.cudnn.allow_tf32 = False   # failed the gradient check on W6/W7
            torch.backends.cuda.matmul.allow_tf32 = False   # (H200 run, 1e-2 relative)
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        return _torch_like_bench(workload, params, consts,
                                 _needs(TorchLike(torch, device, "torch"), workload, "torch"),
                                 sync, "torch" if cuda else "rss")
    if impl == "gradkit":
        try:
            import gradkit as gk
        except Exception as e:  # noqa: BLE001 - a half-written core may raise anything
            raise Skip(f"import error: {type(e).__name__}: {e} (install it: "
                       "pip install -e .)") from None
        if not hasattr(gk, "tensor"):  # e.g. the bare source folder as a namespace package
            raise Skip(f"import error: gradkit from {list(getattr(gk, '__path__', []))} has no "
                       "`tensor`; install it: pip install -e .")
        if cuda and not gk.cuda.is_available():
            raise Skip("gk.cuda.is_available() is False")
        sync = gk.cuda.synchronize if cuda else (lambda: None)
        return _torch_like_bench(workload, params, consts,
                                 _needs(TorchLike(gk, device, "gradkit"), workload, "gradkit"),
                                 sync, "cupy" if cuda else "rss")
    raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")


def _numpy_bench(workload, device, params, consts, cuda):
    if cuda:
        try:
            import cupy as xp
            xp.cuda.Device(int(device.partition(":")[2] or 0)).use()
        except Exception as e:  # noqa: BLE001
            raise Skip(f"cupy unusable: {type(e).__name__}: {e}") from None
        sync, host = (lambda: xp.cuda.Device().synchronize()), (lambda a: xp.asnumpy(a).astype(np.float64))
    else:
        xp, sync, host = np, (lambda: None), (lambda a: np.asarray(a, np.float64))
    p = {k: xp.asarray(v) for k, v in params.items()}
    c = {k: xp.asarray(v) for k, v in consts.items()}

    def grads():
        loss, g = workload.numpy_impl(xp, p, c)
        return loss, [g[k] for k in p]

    def update(gs):
        for a, g in zip(p.values(), gs):
            a -= workload.lr * g

    return Bench(grads, host, lambda: list(p.values()), update if workload.lr else None,
                 sync=sync, memory="cupy" if cuda else "rss")


def _torch_like_bench(workload, params, consts, F, sync, memory):
    leaves = {k: F.tensor(v, requires_grad=True) for k, v in params.items()}
    c = {k: F.tensor(v) for k, v in consts.items()}
    ps = list(leaves.values())

    def clear():
        for t in ps:
            t.grad = None

    def grads():
        clear()
        loss = workload.forward(F, leaves, c)
        loss.backward()
        return loss, [t.grad for t in ps]

    def update(gs):
        with F.mod.no_grad():
            for t, g in zip(ps, gs):
                t.sub_(g * workload.lr)

    def host(t):
        if F.label == "torch":
            return t.detach().cpu().numpy().astype(np.float64)
        a = t.array
        return np.asarray(a.get() if hasattr(a, "get") else a, np.float64)  # cupy -> host

    return Bench(grads, host, lambda: ps, update if workload.lr else None, clear, sync,
                 memory, F.notes)


def _autograd_bench(workload, params, consts, F, autograd):
    names = list(params)
    vals = [params[k].copy() for k in names]
    value_and_grad = autograd.value_and_grad(
        lambda ps: workload.forward(F, dict(zip(names, ps)), consts))

    def update(gs):
        for a, g in zip(vals, gs):
            a -= workload.lr * g

    return Bench(lambda: value_and_grad(vals), lambda a: np.asarray(a, np.float64),
                 lambda: vals, update if workload.lr else None, notes=F.notes)
