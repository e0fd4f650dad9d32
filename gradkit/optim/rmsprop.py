"""RMSprop, Adagrad and Adadelta (as torch.optim's single-tensor updates)."""
from ..autograd import no_grad
from ..ops import functional as _F
from .optimizer import Optimizer
from ._elementwise import grad_of, value, bump, zeros_like, check_number


class RMSprop(Optimizer):
    """torch.optim.RMSprop, per parameter (``g`` the gradient)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - m * m) (centered; m = lerp(m, g, 1 - alpha)) or sqrt(v), + eps
        buf = momentum * buf + g / avg; p -= lr * buf   (momentum > 0)
        p -= lr * g / avg                               (otherwise)

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer``
    (momentum > 0), ``grad_avg`` (centered). Runs on the parameters' device."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g):
        check_number("learning rate", g["lr"])
        check_number("epsilon", g["eps"])
        check_number("momentum", g["momentum"])
        check_number("weight_decay", g["weight_decay"])
        check_number("alpha", g["alpha"])

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
            wd, mom = float(group["weight_decay"]), float(group["momentum"])
            centered, maximize = bool(group["centered"]), bool(group["maximize"])
            for p in group["params"]:
                g = grad_of(p, maximize)
                if g is None:
                    continue
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = {"step": 0, "square_avg": zeros_like(p)}
                    if mom > 0:
                        st["momentum_buffer"] = zeros_like(p)
                    if centered:
                        st["grad_avg"] = zeros_like(p)
                st["step"] += 1
                x = value(p)
                if wd != 0:
                    g = _F.add(g, _F.mul(x, wd))
                sq = st["square_avg"]
                _F.add_(_F.mul_(sq, alpha), _F.mul(_F.mul(g, 1 - alpha), g))
                if centered:
                    m = st["grad_avg"]
                    _F.add_(m, _F.mul(_F.sub(g, m), 1 - alpha))
                    avg = _F.sqrt(_F.sub(sq, _F.mul(m, m)))
                else:
                    avg = _F.sqrt(sq)
                _F.add_(avg, eps)
                if mom > 0:
                    buf = st["momentum_buffer"]
                    _F.add_(_F.mul_(buf, mom), _F.div(g, avg))
                    _F.sub_(x, _F.mul(buf, lr))
                else:
                    _F.add_(x, _F.div(_F.mul(g, -lr), avg))
                bump(p)
        return loss


class Adagrad(Optimizer):
    """torch.optim.Adagrad, per parameter::

        g = g + weight_decay * p
        clr = lr / (1 + (step - 1) * lr_decay)
        sum = sum + g * g
        p -= clr * g / (sqrt(sum) + eps)

    State per parameter: ``step``, ``sum`` (starts at ``initial_accumulator_value``)."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_number("initial_accumulator_value", initial_accumulator_value)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:  # torch makes the state at construction
            for p in group["params"]:
                self.state[p] = {"step": 0, "sum": zeros_like(
                    p, float(group["initial_accumulator_value"]))}

    def _check_group(self, g):
        check_number("learning rate", g["lr"])
        check_number("lr_decay", g["lr_decay"])
        check_number("weight_decay", g["weight_decay"])
        check_number("epsilon", g["eps"])

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
            wd, maximize = float(group["weight_decay"]), bool(group["maximize"])
            for p in group["params"]:
                g = grad_of(p, maximize)
                if g is None:
                    continue
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = {"step": 0, "sum": zeros_like(
                        p, float(group["initial_accumulator_value"]))}
                st["step"] += 1
                x = value(p)
                if wd != 0:
                    g = _F.add(g, _F.mul(x, wd))
                clr = lr / (1 + (st["step"] - 1) * decay)
                s = _F.add_(st["sum"], _F.mul(g, g))
                std = _F.add_(_F.sqrt(s), eps)
                _F.add_(x, _F.div(_F.mul(g, -clr), std))
                bump(p)
        return loss


class Adadelta(Optimizer):
    """torch.optim.Adadelta, per parameter::

        g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p -= lr * delta

    State per parameter: ``step``, ``square_avg`` (v), ``acc_delta`` (u)."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g):
        check_number("learning rate", g["lr"])
        if not 0.0 <= g["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {g['rho']}")
        check_number("epsilon", g["eps"])
        check_number("weight_decay", g["weight_decay"])

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = self._closure(closure)
        for group in self.param_groups:
            lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
            wd, maximize = float(group["weight_decay"]), bool(group["maximize"])
            for p in group["params"]:
                g = grad_of(p, maximize)
                if g is None:
                    continue
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = {"step": 0, "square_avg": zeros_like(p),
                                          "acc_delta": zeros_like(p)}
                st["step"] += 1
                x = value(p)
                if wd != 0:
                    g = _F.add(g, _F.mul(x, wd))
                v = _F.add_(_F.mul_(st["square_avg"], rho), _F.mul(_F.mul(g, 1 - rho), g))
                std = _F.sqrt(_F.add(v, eps))
                u = st["acc_delta"]
                delta = _F.mul_(_F.div_(_F.sqrt(_F.add(u, eps)), std), g)
                _F.add_(_F.mul_(u, rho), _F.mul(_F.mul(delta, 1 - rho), delta))
                _F.add_(x, _F.mul(delta, -lr))
                bump(p)
        return loss
