"""Adam and AdamW (with amsgrad)."""
from .optimizer import Optimizer, _state_like, _grad_array


class Adam(Optimizer):
    """torch.optim.Adam's update, per parameter, at step t (``d`` = gradient,
    negated with ``maximize``)::

        d = d + weight_decay * p                (Adam; AdamW: p = p * (1 - lr * wd))
        m = lerp(m, d, 1 - beta1)
        v = beta2 * v + (1 - beta2) * d * d
        vmax = max(vmax, v); use vmax for v     (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``t`` and the bias corrections live on the host (Python numbers); ``m``,
    ``v`` and ``vmax`` on the parameter's device.
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g):
        if not isinstance(g["lr"], (int, float)) or g["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {g['lr']}")
        if not 0.0 <= g["eps"]:
            raise ValueError(f"Invalid epsilon value: {g['eps']}")
        b = g["betas"]
        if len(b) != 2:
            raise ValueError(f"Invalid betas: {b}; expected two numbers")
        if not 0.0 <= b[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {b[0]}")
        if not 0.0 <= b[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {b[1]}")
        if not 0.0 <= g["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {g['weight_decay']}")

    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        loss = self._closure(closure)
        state = self.state
        decoupled = self._decoupled
        for group in self.param_groups:
            lr = float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            eps = float(group["eps"])
            wd = float(group["weight_decay"])
            amsgrad = bool(group["amsgrad"])
            maximize = bool(group["maximize"])
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                ga = _grad_array(p, g)
                st = state.get(p)
                if st is None:
                    st = state[p] = {"step": 0, "exp_avg": _state_like(p),
                                     "exp_avg_sq": _state_like(p)}
                    if amsgrad:
                        st["max_exp_avg_sq"] = _state_like(p)
                t = st["step"] = st["step"] + 1
                vmax = None
                if amsgrad:
                    vm = st.get("max_exp_avg_sq")
                    if vm is None:  # amsgrad switched on after earlier steps
                        vm = st["max_exp_avg_sq"] = _state_like(p)
                    vmax = vm.array
                step_size = lr / (1 - beta1 ** t)
                bc2_sqrt = (1 - beta2 ** t) ** 0.5  # as torch (pow, not sqrt)
                p._B.adam_update(p.array, ga, st["exp_avg"].array, st["exp_avg_sq"].array,
                                 vmax, lr, beta1, beta2, eps, wd, step_size, bc2_sqrt,
                                 decoupled, maximize)
                p._vc[0] += 1
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (``p = p * (1 - lr * weight_decay)``
    before the Adam step; default weight_decay 1e-2), as torch.optim.AdamW."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
