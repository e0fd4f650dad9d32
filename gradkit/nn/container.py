"""Shape modules and parameter containers: ``Flatten``, ``Unflatten``,
``ParameterList``, ``ParameterDict`` (as torch.nn's)."""
from collections import OrderedDict

from ..ops import functional as _F
from ..tensor import Tensor
from .module import Module, Parameter, is_parameter

__all__ = ["Flatten", "Unflatten", "ParameterList", "ParameterDict"]


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (default: all but the
    batch dim), as torch.nn.Flatten. Differentiable; any device."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return _F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (one entry may be -1), as
    torch.nn.Unflatten. Differentiable; any device."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(dim, str):
            raise TypeError("gradkit.nn.Unflatten: named dimensions are not supported; "
                            "pass dim as an int")
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(s, int) for s in unflattened_size):
            raise TypeError(f"gradkit.nn.Unflatten: unflattened_size must be a tuple of ints, "
                            f"but found {unflattened_size!r}")
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input):
        shape = list(input.shape)
        d = self.dim + len(shape) if self.dim < 0 else self.dim
        if not 0 <= d < len(shape):
            raise IndexError(f"gradkit.nn.Unflatten: dim {self.dim} is out of range for an "
                             f"input of shape {input.shape}")
        sizes = list(self.unflattened_size)
        known = 1
        for s in sizes:
            if s != -1:
                known *= s
        if sizes.count(-1) > 1 or (sizes.count(-1) == 0 and known != shape[d]) or (
                sizes.count(-1) == 1 and (known == 0 or shape[d] % known)):
            raise RuntimeError(f"gradkit.nn.Unflatten: unflattened_size {self.unflattened_size} "
                               f"doesn't multiply up to the size {shape[d]} of dim {self.dim} "
                               f"of the input {input.shape}")
        return _F.reshape(input, tuple(shape[:d] + sizes + shape[d + 1:]))

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def _as_param(value):
    """Tensors that are not parameters become ``Parameter``s, as torch does."""
    if value.__class__ is Tensor and not is_parameter(value):
        return Parameter(value)
    return value


def _param_repr(k, p):
    if p.__class__ is not Tensor:
        return f"({k}): Object of type: {type(p).__name__}"
    size = "x".join(str(s) for s in p.shape)
    dev = "" if p.device.type == "cpu" else f" (GPU {p.device.index or 0})"
    return f"({k}): Parameter containing: [gradkit.{p.dtype_name} of size {size}{dev}]"


class ParameterList(Module):
    """A list of parameters registered as ``"0"``, ``"1"``, ...; plain tensors
    appended become Parameters (torch.nn.ParameterList)."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _key(self, idx):
        if not isinstance(idx, int):
            raise TypeError(f"gradkit.nn.ParameterList: indices must be integers, got "
                            f"{type(idx).__name__}")
        n = self._size
        if not -n <= idx < n:
            raise IndexError(f"gradkit.nn.ParameterList: index {idx} is out of range")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList([self[i] for i in range(self._size)[idx]])
        return getattr(self, self._key(idx))

    def __setitem__(self, idx, param):
        setattr(self, self._key(idx), _as_param(param))

    def __len__(self):
        return self._size

    def __iter__(self):
        return iter(self[i] for i in range(self._size))

    def __iadd__(self, parameters):
        return self.extend(parameters)

    def append(self, value):
        k = self._size
        self._size += 1
        setattr(self, str(k), _as_param(value))
        return self

    def extend(self, values):
        if isinstance(values, Tensor):
            raise TypeError("gradkit.nn.ParameterList.extend should be called with an "
                            "iterable, but got Tensor")
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(_param_repr(i, p) for i, p in enumerate(self))

    def __call__(self, *args, **kwargs):
        raise RuntimeError("gradkit.nn.ParameterList should not be called.")


class ParameterDict(Module):
    """A dict of parameters registered under their (string) keys, in insertion
    order; plain tensors become Parameters (torch.nn.ParameterDict)."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys = OrderedDict()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        if key in self._parameters:
            return self._parameters[key]
        return self.__dict__[key]

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError(f"gradkit.nn.ParameterDict: keys must be strings, got "
                            f"{type(key).__name__}")
        self._keys[key] = None
        setattr(self, key, _as_param(value))

    def __delitem__(self, key):
        del self._keys[key]
        delattr(self, key)

    def __len__(self):
        return len(self._keys)

    def __iter__(self):
        return iter(self._keys)

    def __contains__(self, key):
        return key in self._keys

    def __reversed__(self):
        return reversed(list(self._keys))

    def keys(self):
        return self._keys.keys()

    def values(self):
        return (self[k] for k in self._keys)

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def pop(self, key):
        v = self[key]
        del self[key]
        return v

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self):
        for k in list(self._keys):
            del self[k]

    def copy(self):
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def update(self, parameters):
        if isinstance(parameters, (OrderedDict, ParameterDict)) or isinstance(parameters, dict):
            items = parameters.items()
        else:
            items = parameters
        for j, kv in enumerate(items):
            if isinstance(kv, (tuple, list)) and len(kv) != 2:
                raise ValueError(f"gradkit.nn.ParameterDict.update: element #{j} should be of "
                                 f"length 2, got {len(kv)}")
            k, v = kv
            self[k] = v

    def extra_repr(self):
        return "\n".join(_param_repr(k, p) for k, p in self.items())

    def __call__(self, *args, **kwargs):
        raise RuntimeError("gradkit.nn.ParameterDict should not be called.")
