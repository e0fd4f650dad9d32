"""Issue 12's optimizers (RMSprop, Adagrad, Adadelta, LBFGS) and learning-rate
schedulers, each matched against torch over several steps when torch is
installed; the rest runs everywhere."""
import math
import warnings

import numpy as np
import pytest

import gradkit as gk
from helpers import to_np, make


def _torch():
    return pytest.importorskip("torch")


RNG = np.random.default_rng(0)
W0, X, Y = RNG.standard_normal((5, 3)), RNG.standard_normal((8, 5)), RNG.standard_normal((8, 3))


def _train(lib, cls, kw, steps, device=None, closure_style=False):
    mk = (lambda a, **k: make(a, device, **k)) if lib is gk else \
        (lambda a, **k: lib.tensor(a, **k))
    w = mk(W0.copy(), requires_grad=True)
    b = mk(np.zeros(3), requires_grad=True)
    opt = getattr(lib.optim, cls)([w, b], **kw)
    x, y = mk(X), mk(Y)

    def closure():
        opt.zero_grad()
        loss = (((x @ w + b) - y) ** 2).mean() + (w ** 4).sum() * 0.01
        loss.backward()
        return loss
    losses = []
    for _ in range(steps):
        if closure_style:
            losses.append(opt.step(closure).item())
        else:
            losses.append(closure().item())
            opt.step()
    if lib is gk:
        return to_np(w), to_np(b), losses, opt
    return w.detach().numpy(), b.detach().numpy(), losses, opt


CASES = [("RMSprop", {}), ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True,
                                           weight_decay=0.1)),
         ("RMSprop", dict(maximize=True, alpha=0.9)),
         ("Adagrad", {}), ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1,
                                           initial_accumulator_value=0.2)),
         ("Adadelta", {}), ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.05, maximize=True))]


@pytest.mark.parametrize("cls,kw", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_optimizer_matches_torch(cls, kw, device):
    torch = _torch()
    g = _train(gk, cls, kw, 8, device)
    t = _train(torch, cls, kw, 8)
    np.testing.assert_allclose(g[0], t[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g[1], t[1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g[2], t[2], rtol=1e-12)


LBFGS_CASES = [{}, dict(line_search_fn="strong_wolfe", history_size=3), dict(lr=0.5, max_iter=5),
               dict(line_search_fn="strong_wolfe", max_iter=40, tolerance_grad=1e-12)]


@pytest.mark.parametrize("kw", LBFGS_CASES, ids=[str(i) for i in range(len(LBFGS_CASES))])
def test_lbfgs_matches_torch(kw, device):
    torch = _torch()
    g = _train(gk, "LBFGS", kw, 4, device, closure_style=True)
    t = _train(torch, "LBFGS", kw, 4, closure_style=True)
    np.testing.assert_allclose(g[0], t[0], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(g[2], t[2], rtol=1e-9)
    assert g[3].state[g[3]._params[0]]["func_evals"] == t[3].state[t[3]._params[0]]["func_evals"]


def test_lbfgs_minimizes_rosenbrock_without_torch():
    xy = gk.tensor([-1.5, 2.0], dtype=gk.float64, requires_grad=True)
    opt = gk.optim.LBFGS([xy], lr=1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        x, y = xy[0], xy[1]
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        loss.backward()
        return loss
    opt.step(closure)
    np.testing.assert_allclose(to_np(xy), [1.0, 1.0], atol=1e-4)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step(None)


def test_optimizer_state_dict_roundtrip():
    w, b, _, opt = _train(gk, "RMSprop", dict(momentum=0.5, centered=True), 3)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    p = gk.zeros(5, 3, dtype=gk.float64, requires_grad=True)
    q = gk.zeros(3, dtype=gk.float64, requires_grad=True)
    opt2 = gk.optim.RMSprop([p, q])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["momentum"] == 0.5 and opt2.state[p]["step"] == 3
    np.testing.assert_array_equal(to_np(opt2.state[p]["square_avg"]),
                                  to_np(opt.state[opt.param_groups[0]["params"][0]]["square_avg"]))


def test_invalid_hyperparameters():
    p = [gk.zeros(2, requires_grad=True)]
    for cls, kw in [("RMSprop", dict(lr=-1)), ("Adagrad", dict(eps=-1)),
                    ("Adadelta", dict(rho=2.0)), ("LBFGS", dict(line_search_fn="armijo"))]:
        with pytest.raises((ValueError, RuntimeError)):
            getattr(gk.optim, cls)(p, **kw)


# ============================================================ lr schedulers
def _sched_cases():
    return [
        ("StepLR", dict(step_size=3, gamma=0.5), "SGD", {}),
        ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), "SGD", {}),
        ("ExponentialLR", dict(gamma=0.9), "SGD", {}),
        ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "SGD", {}),
        ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e + e % 3), "SGD", {}),
        ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.9), "SGD", {}),
        ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=6), "SGD", {}),
        ("ConstantLR", dict(factor=0.5, total_iters=4), "SGD", {}),
        ("PolynomialLR", dict(total_iters=8, power=2.0), "SGD", {}),
        ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.01), "SGD", {}),
        ("OneCycleLR", dict(max_lr=0.5, total_steps=20), "SGD", dict(momentum=0.9)),
        ("OneCycleLR", dict(max_lr=[0.5], epochs=4, steps_per_epoch=5, anneal_strategy="linear",
                            three_phase=True), "Adam", {}),
        ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5),
         "SGD", dict(momentum=0.9)),
        ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2"),
         "Adam", {}),
        ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range",
                          gamma=0.9, cycle_momentum=False), "SGD", {}),
    ]


def _lr_seq(lib, name, kw, opt_name, opt_kw, steps=19):
    p = lib.zeros(2, requires_grad=True)
    opt = getattr(lib.optim, opt_name)([p], lr=0.1, **opt_kw)
    s = getattr(lib.optim.lr_scheduler, name)(opt, **kw)
    seq = [s.get_last_lr()[0]]
    moms = []
    for _ in range(steps):
        opt.step()
        s.step()
        seq.append(s.get_last_lr()[0])
        g = opt.param_groups[0]
        moms.append(g["betas"][0] if "betas" in g else g.get("momentum"))
    return seq, moms, s, opt


@pytest.mark.parametrize("case", _sched_cases(), ids=lambda c: c[0])
def test_scheduler_matches_torch(case):
    torch = _torch()
    name, kw, opt_name, opt_kw = case
    g_seq, g_mom, gs, gopt = _lr_seq(gk, name, kw, opt_name, opt_kw)
    t_seq, t_mom, ts, _ = _lr_seq(torch, name, kw, opt_name, opt_kw)
    assert g_seq == t_seq          # bit for bit: the same recurrences
    assert g_mom == t_mom
    assert gs.last_epoch == ts.last_epoch
    # state_dict round trip: a fresh scheduler continues the same sequence
    sd = gs.state_dict()
    assert "optimizer" not in sd
    g2 = _lr_seq(gk, name, kw, opt_name, opt_kw, steps=0)
    g2[2].load_state_dict(sd)
    for grp, src in zip(g2[3].param_groups, gopt.param_groups):
        grp["lr"] = src["lr"]
    if name not in ("OneCycleLR", "CyclicLR"):
        g2[2].step()
        gs.step()
        assert g2[2].get_last_lr() == gs.get_last_lr()


def test_sequential_and_chained_match_torch():
    torch = _torch()

    def seq(lib, kind):
        p = lib.zeros(2, requires_grad=True)
        opt = lib.optim.SGD([p], lr=1.0)
        L = lib.optim.lr_scheduler
        a = L.LinearLR(opt, start_factor=0.1, total_iters=3)
        b = L.ExponentialLR(opt, gamma=0.8)
        s = L.SequentialLR(opt, [a, b], milestones=[3]) if kind == "seq" else \
            L.ChainedScheduler([a, b])
        out = []
        for _ in range(8):
            opt.step()
            s.step()
            out.append(s.get_last_lr()[0])
        return out
    for kind in ("seq", "chain"):
        assert seq(gk, kind) == seq(torch, kind)


def test_reduce_lr_on_plateau_matches_torch():
    torch = _torch()
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7]

    def run(lib, **kw):
        p = lib.zeros(1, requires_grad=True)
        opt = lib.optim.SGD([p], lr=1.0)
        s = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        out = []
        for m in metrics:
            s.step(m)
            out.append(s.get_last_lr()[0])
        return out, s
    for kw in (dict(patience=1), dict(mode="max", factor=0.5, patience=0, cooldown=2),
               dict(threshold_mode="abs", threshold=0.05, patience=1, min_lr=0.05)):
        g, gs = run(gk, **kw)
        t, _ = run(torch, **kw)
        assert g == t, kw
    sd = gs.state_dict()
    _, s2 = run(gk, **kw)
    s2.load_state_dict(sd)
    assert s2.best == gs.best and s2.num_bad_epochs == gs.num_bad_epochs


def test_scheduler_epoch_argument_warns_and_uses_closed_form():
    p = gk.zeros(1, requires_grad=True)
    opt = gk.optim.SGD([p], lr=1.0)
    s = gk.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter"):
        s.step(5)
    assert s.get_last_lr() == [0.25]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()
    assert not math.isnan(s.get_last_lr()[0])
    with pytest.raises(TypeError, match="not an Optimizer"):
        gk.optim.lr_scheduler.StepLR(object(), 2)
