"""Devices: ``"cpu"`` (NumPy), ``"cuda"``/``"cuda:N"`` (CuPy), and the test-only
``"fake"`` accelerator. The device belongs to the data: each Tensor holds its
backend, and ``Device`` is the user-facing name for it."""
from . import backends as _B
from .errors import GradkitError


class Device:
    __slots__ = ("type", "index", "_str")

    def __init__(self, type, index=None):
        self.type = type
        self.index = index
        self._str = type if index is None else f"{type}:{index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __str__(self):
        return self._str

    def __eq__(self, other):
        if isinstance(other, Device):
            return self._str == other._str
        if isinstance(other, str):
            try:
                return self._str == device(other)._str
            except RuntimeError:
                return False
        return NotImplemented

    def __hash__(self):
        return hash(self._str)


DEVICE_TYPES = ("cpu", "cuda", "fake")
_devices = {}


def is_device_spec(a):
    """A Device, or a string naming one ('cpu', 'cuda:1' ...): how ``.to()``
    tells a device argument from a dtype."""
    return isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0] in DEVICE_TYPES)


def device(spec):
    """``gk.device("cuda:0")`` -> Device. Accepts a Device, a string or None (cpu)."""
    if isinstance(spec, Device):
        return spec
    if spec is None:
        spec = "cpu"
    d = _devices.get(spec) if spec.__hash__ is not None else None
    if d is not None:
        return d
    if not isinstance(spec, str):
        if hasattr(spec, "type") and hasattr(spec, "index"):  # a torch.device
            spec = str(spec)
        else:
            raise TypeError(f"gradkit: a device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
    type_, _, idx = spec.partition(":")
    if type_ not in DEVICE_TYPES or (idx and not idx.isdigit()) or (type_ == "cpu" and idx not in ("", "0")):
        raise GradkitError(f"gradkit: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")
    if type_ == "cuda":
        d = Device("cuda", int(idx) if idx else 0)
    elif type_ == "fake" and idx and idx != "0":
        d = Device("fake", int(idx))   # the fake accelerator's second device
    else:
        d = Device(type_)
    _devices[spec] = d
    return d


def backend_of(dev):
    """The Backend for a device spec (created lazily, cached)."""
    d = device(dev)
    return _B.get(d.type, d.index or 0)


def device_of(B):
    if B.type == "cuda" or (B.type == "fake" and B.index):
        return device(f"{B.type}:{B.index}")
    return device(B.type)
