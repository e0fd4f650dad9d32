"""Finite-difference checks of gradients (float64), first and second order.

The default is a fast check along random directions: for random ``u`` (one per
input) and ``v`` (one per output) it compares ``v^T J u`` from backward with the
central difference ``(v^T f(x + eps u) - v^T f(x - eps u)) / 2 eps``. On a
failure (or with ``fast_mode=False``) it builds the full Jacobians and names the
input and the worst element.
"""
import warnings

from .grad_mode import no_grad
from .engine import grad as _grad
from ..tensor import Tensor
from ..backends import host_xp as _host_xp
from ..creation import const_from_host


class GradcheckError(RuntimeError):
    """Analytic and numeric gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    out = _as_tuple(fn(*inputs))
    return [o for o in out if isinstance(o, Tensor) and o._B.is_floating(o.array.dtype)]


def _host(t):
    return t._B.to_host(t.array)


def _dot(a, b):
    """<a, b> as a Python float (host)."""
    return float((_host(a).astype("float64") * _host(b).astype("float64")).sum())


def _randn_like(t, gen):
    return const_from_host(t, gen.standard_normal(t.shape))


def _perturbed(inputs, i, delta):
    with no_grad():
        return [x if j != i else (x.detach() + delta).requires_grad_(x.requires_grad)
                for j, x in enumerate(inputs)]


def _check_dtypes(inputs):
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype_name != "float64":
            warnings.warn(f"gradcheck: input {i} is {x.dtype_name}, not float64; finite "
                          "differences in low precision are unreliable", UserWarning, stacklevel=3)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              fast_mode=True, seed=0, nondet_tol=0.0):
    """True if the analytic gradients of ``fn`` at ``inputs`` match float64 finite
    differences; otherwise raise ``GradcheckError`` (or return False)."""
    np = _host_xp()  # host-side checking tool, never inside the tape

    inputs = list(_as_tuple(inputs))
    _check_dtypes(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    gen = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no floating point tensor")
    try:
        if fast_mode:
            vs = [_randn_like(o, gen) for o in outs]
            us = {i: _randn_like(inputs[i], gen) for i in wrt}
            ro = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
            grads = _grad([o for o, _ in ro], [inputs[i] for i in wrt],
                          grad_outputs=[v for _, v in ro], allow_unused=True) if ro else [None] * len(wrt)
            analytic = 0.0
            for i, g in zip(wrt, grads):
                if g is not None:
                    analytic += _dot(g, us[i])
            numeric = 0.0
            for i in wrt:
                fp = _outputs(fn, _perturbed(inputs, i, us[i] * eps))
                fm = _outputs(fn, _perturbed(inputs, i, us[i] * -eps))
                numeric += sum(_dot(a, v) - _dot(b, v) for a, b, v in zip(fp, fm, vs)) / (2 * eps)
            if abs(analytic - numeric) <= atol + rtol * abs(numeric):
                return True
        # full Jacobians: find and name the worst element
        return _full_check(fn, inputs, wrt, outs, eps, atol, rtol, raise_exception, np)
    except GradcheckError:
        if raise_exception:
            raise
        return False


def _full_check(fn, inputs, wrt, outs, eps, atol, rtol, raise_exception, np):
    """Full Jacobians, column by column (numeric: one pair of forwards per input
    element) and row by row (analytic: one backward per output element, through
    one retained graph). Names the input, the worst element and both values;
    a NaN or inf on either side counts as a mismatch."""
    outs = _outputs(fn, inputs)   # a fresh graph: the fast check's was freed
    sizes = [int(np.prod(o.shape)) for o in outs]
    starts = np.cumsum([0] + sizes)
    for i in wrt:
        x = inputs[i]
        n = int(np.prod(x.shape))
        num = np.zeros((sum(sizes), n))
        for j in range(n):
            e = np.zeros(n)
            e[j] = eps
            d = const_from_host(x, e.reshape(x.shape))
            fp = _outputs(fn, _perturbed(inputs, i, d))
            fm = _outputs(fn, _perturbed(inputs, i, -d))
            num[:, j] = np.concatenate([(_host(a).astype("float64") - _host(b).astype("float64")).ravel()
                                        for a, b in zip(fp, fm)]) / (2 * eps)
        ana = np.zeros_like(num)
        row = 0
        for k, o in enumerate(outs):
            for r in range(sizes[k]):
                vs = []
                for kk, oo in enumerate(outs):
                    v = np.zeros(sizes[kk])
                    if kk == k:
                        v[r] = 1.0
                    vs.append(const_from_host(oo, v.reshape(oo.shape)))
                ro = [(oo, v) for oo, v in zip(outs, vs) if oo.requires_grad]
                (g,) = _grad([a for a, _ in ro], [x], grad_outputs=[v for _, v in ro],
                             retain_graph=True, allow_unused=True) if ro else (None,)
                if g is not None:
                    ana[row] = _host(g).astype("float64").ravel()
                row += 1
        with np.errstate(invalid="ignore"):
            ok = np.abs(ana - num) <= atol + rtol * np.abs(num)
            err = np.where(ok, 0.0, np.abs(ana - num) - (atol + rtol * np.abs(num)))
        if not ok.all():
            err = np.where(np.isnan(err), np.inf, err)
            r, c = np.unravel_index(np.argmax(err), err.shape)
            k = int(np.searchsorted(starts, r, side="right") - 1)
            oel = np.unravel_index(r - starts[k], outs[k].shape) if outs[k].shape else ()
            iel = np.unravel_index(c, x.shape) if x.shape else ()
            msg = (f"gradcheck: Jacobian mismatch for input {i} (shape {tuple(x.shape)}): "
                   f"{int((~ok).sum())} of {ok.size} elements differ; worst element: output "
                   f"{k} element {tuple(int(v) for v in oel)}, input {i} element "
                   f"{tuple(int(v) for v in iel)}: analytic {ana[r, c]:.6g}, numeric "
                   f"{num[r, c]:.6g} (atol={atol}, rtol={rtol})")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, fast_mode=True, seed=0):
    """gradcheck of the VJP ``(inputs, v) -> v^T J`` built with create_graph: the
    second derivatives of ``fn``."""
    np = _host_xp()

    inputs = list(_as_tuple(inputs))
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    gen = np.random.default_rng(seed + 1)
    outs = _outputs(fn, inputs)
    if grad_outputs is None:
        vs = [_randn_like(o, gen).requires_grad_(True) for o in outs]
    else:
        vs = [v for v in _as_tuple(grad_outputs)]
    nin = len(inputs)

    def vjp_fn(*args):
        xs, v = list(args[:nin]), list(args[nin:])
        o = _outputs(fn, xs)
        gs = _grad(o, [xs[i] for i in wrt], grad_outputs=v, create_graph=True,
                   allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(vjp_fn, inputs + vs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode, seed=seed + 2)
