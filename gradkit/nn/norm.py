"""Normalization modules, as torch.nn: BatchNorm1d, BatchNorm2d, InstanceNorm2d,
GroupNorm. Same arguments, defaults, parameters (weight ones, bias zeros) and
buffers (running_mean zeros, running_var ones, num_batches_tracked an int64
scalar), so state_dict keys match torch's."""
from ..creation import ones, zeros, tensor
from . import functional as F
from . import init
from .module import Module
from .layers import affine_parameters, reset_affine


class _NormBase(Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        affine_parameters(self, (num_features,), affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        reset_affine(self)

    def _check_input_dim(self, input):
        raise NotImplementedError

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average (reads the counter)
                factor = 1.0 / float(self.num_batches_tracked.item())
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_running else None,
                            self.running_var if use_running else None, self.weight, self.bias,
                            bn_training, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) per channel C: batch statistics
    in training (updating running_mean/running_var with ``momentum``; None: a
    cumulative average), running statistics in eval. Mirrors torch.nn.BatchNorm1d."""

    def _check_input_dim(self, input):
        if input.ndim not in (2, 3):
            raise ValueError(f"gradkit.nn.BatchNorm1d: expected 2D or 3D input "
                             f"(got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) per channel C (see BatchNorm1d).
    Mirrors torch.nn.BatchNorm2d."""

    def _check_input_dim(self, input):
        if input.ndim != 4:
            raise ValueError(f"gradkit.nn.BatchNorm2d: expected 4D input (got {input.ndim}D input)")


class InstanceNorm2d(_NormBase):
    """Normalizes each (sample, channel) of (N, C, H, W) or (C, H, W) over H, W.
    Defaults as torch: affine=False, track_running_stats=False. Mirrors
    torch.nn.InstanceNorm2d."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"gradkit.nn.InstanceNorm2d: expected 3D or 4D input "
                             f"(got {input.ndim}D input)")
        unbatched = input.ndim == 3
        x = input.unsqueeze(0) if unbatched else input
        if self.affine and x.shape[1] != self.num_features:
            raise ValueError(f"gradkit.nn.InstanceNorm2d: expected input's size at dim=1 to match "
                             f"num_features ({self.num_features}), but got: {x.shape[1]}.")
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats,
                            self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y


class GroupNorm(Module):
    """Normalizes ``(N, C, *)`` over groups of C / num_groups channels (and all other
    dims), then a per-channel affine (weight ones, bias zeros). Mirrors
    torch.nn.GroupNorm."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("gradkit.nn.GroupNorm: num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        affine_parameters(self, (num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
