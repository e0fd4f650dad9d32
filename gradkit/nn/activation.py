"""Activation modules (as torch.nn's): each calls its ``gk.nn.functional``
function with the arguments it was built with; ``extra_repr`` prints them as
torch does. Differentiable; any device."""
from . import functional as F
from .module import Module

__all__ = ["LeakyReLU", "ELU", "CELU", "SELU", "ReLU6", "Hardtanh", "LogSigmoid", "SiLU", "Mish",
           "Softplus", "Softsign", "Tanhshrink", "Hardsigmoid", "Hardswish", "Softshrink",
           "Hardshrink", "Threshold", "GLU", "Softmin"]


def _inplace_str(inplace):
    return ", inplace=True" if inplace else ""


class LeakyReLU(Module):
    """``x`` if x > 0 else ``negative_slope * x`` (torch.nn.LeakyReLU)."""

    def __init__(self, negative_slope=1e-2, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}{_inplace_str(self.inplace)}"


class ELU(Module):
    """``x`` if x > 0 else ``alpha * (exp(x) - 1)`` (torch.nn.ELU)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_str(self.inplace)}"


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (torch.nn.CELU)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_str(self.inplace)}"


class SELU(Module):
    """Scaled ELU with torch's fixed constants (torch.nn.SELU)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.selu(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardtanh(Module):
    """``clamp(x, min_val, max_val)`` (torch.nn.Hardtanh)."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError("gradkit.nn.Hardtanh: max_val must be greater than min_val")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_str(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(0, x), 6)`` (torch.nn.ReLU6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class _Plain(Module):
    """An activation without arguments: calls ``F.<_fn>``."""

    _fn = None

    def forward(self, input):
        return getattr(F, self._fn)(input)


class LogSigmoid(_Plain):
    """``log(sigmoid(x))``, stable for every x (torch.nn.LogSigmoid)."""
    _fn = "logsigmoid"


class Softsign(_Plain):
    """``x / (1 + |x|)`` (torch.nn.Softsign)."""
    _fn = "softsign"


class Tanhshrink(_Plain):
    """``x - tanh(x)`` (torch.nn.Tanhshrink)."""
    _fn = "tanhshrink"


class _PlainInplace(Module):
    _fn = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return getattr(F, self._fn)(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class SiLU(_PlainInplace):
    """``x * sigmoid(x)`` (torch.nn.SiLU)."""
    _fn = "silu"


class Mish(_PlainInplace):
    """``x * tanh(softplus(x))`` (torch.nn.Mish)."""
    _fn = "mish"


class Hardsigmoid(_PlainInplace):
    """``relu6(x + 3) / 6`` (torch.nn.Hardsigmoid)."""
    _fn = "hardsigmoid"


class Hardswish(_PlainInplace):
    """``x * relu6(x + 3) / 6`` (torch.nn.Hardswish)."""
    _fn = "hardswish"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear above ``threshold`` (torch.nn.Softplus)."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softshrink(Module):
    """Shrinks toward 0 by ``lambd`` (torch.nn.Softshrink)."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.softshrink(input, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Module):
    """Zeroes values with ``|x| <= lambd`` (torch.nn.Hardshrink)."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Threshold(Module):
    """``x`` if x > threshold else ``value`` (torch.nn.Threshold)."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}{_inplace_str(self.inplace)}"


class GLU(Module):
    """Gated linear unit over ``dim`` (torch.nn.GLU)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x, dim)`` (torch.nn.Softmin)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmin(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
