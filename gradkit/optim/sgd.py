"""SGD with momentum, dampening, Nesterov momentum and weight decay."""
from .optimizer import Optimizer, _state_like, _grad_array


class SGD(Optimizer):
    """torch.optim.SGD's update, per parameter (``d`` = gradient, negated with
    ``maximize``)::

        d = d + weight_decay * p
        buf = d (first step) or momentum * buf + (1 - dampening) * d
        d = d + momentum * buf (nesterov) or buf
        p = p - lr * d
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, g):
        if not isinstance(g["lr"], (int, float)) or g["lr"] < 0.0:
            raise ValueError(f"Invalid learning rate: {g['lr']}")
        if g["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {g['momentum']}")
        if g["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {g['weight_decay']}")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        loss = self._closure(closure)
        state = self.state
        for group in self.param_groups:
            lr = float(group["lr"])
            wd = float(group["weight_decay"])
            mom = float(group["momentum"])
            damp = float(group["dampening"])
            nesterov = bool(group["nesterov"])
            maximize = bool(group["maximize"])
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                ga = _grad_array(p, g)
                st = state.get(p)
                if st is None:
                    st = state[p] = {"momentum_buffer": None}
                buf = st["momentum_buffer"]
                first = False
                if mom != 0 and buf is None:
                    buf = st["momentum_buffer"] = _state_like(p)
                    first = True
                p._B.sgd_update(p.array, ga, None if buf is None else buf.array, lr, wd,
                                mom, damp, nesterov, maximize, first)
                p._vc[0] += 1
        return loss
