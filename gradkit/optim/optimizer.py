"""``Optimizer``: parameter groups, per-parameter state, state dicts.

Updates run in place on each parameter's device through one backend kernel per
parameter (``B.sgd_update``, ``B.adam_update``: a fused ElementwiseKernel on
CuPy, ufuncs with ``out=`` on NumPy). Step counters are Python ints on the host
and the bias corrections are computed there, so a step never reads a value
back from the device. Each update bumps the parameter's version counter, so a
graph that saved the old value refuses to backward through it.
"""
from ..tensor import Tensor, GradkitError
from ..ops.core import const
from ..nn.module import _zero_grad
from ..autograd import enable_grad
from ..creation import as_tensor


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``; ``params`` is an iterable of
    tensors or of dicts (parameter groups, each with a ``"params"`` entry and
    any hyperparameters that override ``defaults``)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("gradkit.optim: params must be an iterable of Tensors or dicts, "
                            "got a Tensor; pass [t] or model.parameters()")
        groups = list(params)
        if not groups:
            raise ValueError("gradkit.optim: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        if not isinstance(param_group, dict):
            raise TypeError(f"gradkit.optim: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("gradkit.optim: parameters must be given in an ordered "
                            "collection (a list), not a set")
        params = list(params) if params is not None else []
        for i, p in enumerate(params):
            if p.__class__ is not Tensor:
                raise TypeError(f"gradkit.optim: can only optimize Tensors, but parameter {i} "
                                f"of the group is a {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError(f"gradkit.optim: can't optimize a non-leaf Tensor (parameter "
                                 f"{i} of the group was computed by an op); pass leaves")
            if not p._B.is_floating(p.array.dtype):
                raise ValueError(f"gradkit.optim: parameter {i} has dtype {p.dtype_name}; "
                                 "only floating point tensors can be optimized")
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"gradkit.optim: parameter group didn't specify a value of "
                                 f"required optimization parameter {k}")
            group.setdefault(k, v)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params):
            raise ValueError("gradkit.optim: a parameter group holds the same parameter twice")
        if any(id(p) in seen for p in params):
            raise ValueError("gradkit.optim: some parameters appear in more than one "
                             "parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Subclasses validate hyperparameters here."""

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                _zero_grad(p, set_to_none)

    def step(self, closure=None):
        raise NotImplementedError

    def _closure(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------ state dict
    def state_dict(self):
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params":
        [index, ...]}]}`` as torch: parameters are numbered in group order;
        state tensors are the live ones (``gk.save`` copies them)."""
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = len(index)
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                st = self.state.get(p)
                if st is not None:
                    state[index[id(p)]] = dict(st)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict()`` (by an
        optimizer over parameters of the same shapes, in the same order). State
        tensors are copied onto each parameter's device and dtype. Everything
        is checked before anything changes."""
        try:
            saved_groups = state_dict["param_groups"]
            saved_state = state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("gradkit.optim: load_state_dict expects a dict with 'state' and "
                             "'param_groups' (from Optimizer.state_dict())") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {i} has "
                                 f"{len(sg['params'])} parameters in the state dict and "
                                 f"{len(g['params'])} in the optimizer")
        id_map = {}
        for g, sg in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], sg["params"]):
                id_map[k] = p
        new_state = {}
        for k, st in saved_state.items():
            key = k if k in id_map else _int_key(k)
            p = id_map.get(key)
            if p is None:
                continue  # torch ignores state of unknown parameters too
            new_state[p] = {name: self._cast_state(p, name, v) for name, v in st.items()}
        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: (tuple(v) if isinstance(v, list) and k != "params" else v)
                  for k, v in sg.items()}
            ng["params"] = g["params"]
            new_groups.append(ng)
        self.state = new_state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(p, name, v):
        if v.__class__ is not Tensor:
            if hasattr(v, "shape") and hasattr(v, "dtype"):  # a host array from gk.load
                v = as_tensor(v)
            else:
                return v
        if name == "step":
            return int(v.item())  # an explicit load-time read, never in a step
        if tuple(v.array.shape) != tuple(p.array.shape):
            raise ValueError(f"gradkit.optim: state {name!r} has shape {tuple(v.array.shape)}, "
                             f"but its parameter has shape {tuple(p.array.shape)}")
        B = p._B
        arr = v.array if v._B is B else B.to_device(v._B, v.array)
        if arr.dtype != p.array.dtype and B.is_floating(arr.dtype):
            arr = B.astype(arr, p.array.dtype)
        return const(B, B.copy(arr) if arr is v.array else arr)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


def _int_key(k):
    try:
        return int(k)
    except (TypeError, ValueError):
        return k


def _state_like(p):
    """A zero-filled state array on p's device, in p's dtype, as a Tensor."""
    B = p._B
    return const(B, B.zeros(p.array.shape, p.array.dtype))


def _check_grad(p, g):
    if g._B is not p._B or g.array.shape != p.array.shape:
        raise GradkitError(f"gradkit.optim: a parameter of shape {tuple(p.array.shape)} on "
                           f"{p._B.device_str} has a gradient of shape {tuple(g.array.shape)} "
                           f"on {g._B.device_str}")


def _grad_array(p, g):
    """``g``'s array, checked against ``p`` and cast to ``p``'s dtype: the fused
    update kernels take one dtype for the parameter, its gradient and state."""
    _check_grad(p, g)
    a = g.array
    return a if a.dtype == p.array.dtype else p._B.astype(a, p.array.dtype)
