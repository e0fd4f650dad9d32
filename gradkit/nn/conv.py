"""Convolution and pooling modules, as torch.nn: Conv1d, Conv2d, ConvTranspose2d,
MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, PixelShuffle,
PixelUnshuffle, Upsample. Same constructor arguments, defaults, parameter shapes,
initialization and state_dict keys as torch, so a torch checkpoint's arrays load
by name."""
import math

from ..creation import empty, tensor
from ..ops import functional as _F
from . import functional as F
from . import init
from .module import Module, Parameter


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None, dtype=None,
                 output_padding=0):
        super().__init__()
        name = f"gradkit.nn.{type(self).__name__}"
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate' or 'circular', but got padding_mode={padding_mode!r}")
        n = self._nd
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, n)):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.transposed = self._transposed
        self.output_padding = _ntuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(*shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # torch: kaiming_uniform_(a=sqrt(5)), bias uniform in +-1/sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _conv_input(self, input):
        """(input, padding for the convolution): a non-'zeros' padding_mode pads here
        (torch pads with F.pad, then convolves without padding)."""
        if self.padding_mode == "zeros":
            return input, self.padding
        n = self._nd
        if self.padding == "valid":
            return input, 0
        if self.padding == "same":
            pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                    for k, d in zip(self.kernel_size, self.dilation)]
        else:
            pads = [(p, p) for p in self.padding]
        x = input
        for i, (lo, hi) in enumerate(pads):
            if lo or hi:
                x = _mode_pad(x, x.ndim - n + i, lo, hi, self.padding_mode,
                              type(self).__name__)
        return x, 0

    def extra_repr(self):
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        if self.bias is None:
            s += ", bias=False"
        return s.format(**{k: getattr(self, k) for k in (
            "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
            "output_padding", "groups", "padding_mode")})


def _mode_pad(x, dim, lo, hi, mode, who):
    """``x`` padded along ``dim`` by ``lo``/``hi`` elements taken from itself
    ('reflect': mirrored without the edge, 'replicate': the edge repeated,
    'circular': wrapped): one gather with a constant index, so the gradient is a
    scatter-add, on any device."""
    n = x.shape[dim]
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"gradkit.nn.{who}: padding ({lo}, {hi}) should be smaller than the "
                         f"input size {n} along dim {dim} for padding_mode='reflect'")
    if mode == "circular" and (lo > n or hi > n):
        raise ValueError(f"gradkit.nn.{who}: padding ({lo}, {hi}) can be at most the input "
                         f"size {n} along dim {dim} for padding_mode='circular'")
    idx = []
    for i in range(-lo, n + hi):
        if mode == "replicate":
            j = min(max(i, 0), n - 1)
        elif mode == "circular":
            j = i % n
        else:
            j = -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
        idx.append(j)
    return _F.getitem(x, (slice(None),) * dim + (tensor(idx, device=x.device),))


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L): weight (C_out, C_in/groups, k), bias (C_out,).
    Mirrors torch.nn.Conv1d."""
    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._conv_input(input)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W): weight (C_out, C_in/groups, kH, kW),
    bias (C_out,), initialized as torch; ``padding_mode`` 'zeros', 'reflect',
    'replicate' or 'circular'. Mirrors torch.nn.Conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        x, padding = self._conv_input(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution: weight (C_in, C_out/groups, kH, kW), bias (C_out,).
    ``forward(input, output_size=None)``: an ``output_size`` picks the output_padding.
    Mirrors torch.nn.ConvTranspose2d (padding_mode 'zeros' only)."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError("gradkit.nn.ConvTranspose2d: padding must be an int or a pair")
        if padding_mode != "zeros":
            raise ValueError('gradkit.nn.ConvTranspose2d: Only "zeros" padding mode is supported '
                             "for ConvTranspose2d")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        out = []
        for d in range(2):
            n = input.shape[input.ndim - 2 + d]
            least = ((n - 1) * self.stride[d] - 2 * self.padding[d]
                     + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            extra = size[d] - least
            if not 0 <= extra < self.stride[d]:
                raise ValueError(f"gradkit.nn.ConvTranspose2d: requested an output size of "
                                 f"{size}, but valid sizes range from {least} to "
                                 f"{least + self.stride[d] - 1} (for an input of "
                                 f"{tuple(input.shape[-2:])})")
            out.append(extra)
        return tuple(out)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)


class MaxPool2d(Module):
    """Max over windows; ``return_indices`` also returns torch's flat indices.
    Mirrors torch.nn.MaxPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Mean over windows. Mirrors torch.nn.AvgPool2d."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size. Mirrors torch.nn.AdaptiveAvgPool2d."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size. Mirrors torch.nn.AdaptiveMaxPool2d."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r). Mirrors torch.nn.PixelShuffle."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W). Mirrors torch.nn.PixelUnshuffle."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Upsample(Module):
    """``F.interpolate`` as a module ('nearest', 'linear', 'bilinear'). Mirrors
    torch.nn.Upsample."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            else (tuple(float(s) for s in scale_factor) if scale_factor else None)
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        info = f"size={self.size}" if self.scale_factor is None else \
            f"scale_factor={self.scale_factor}"
        return info + f", mode={self.mode!r}"
