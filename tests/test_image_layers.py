"""Image layers (issue 13) as modules, against torch when it is installed:
outputs, input and parameter gradients, a few SGD steps, running statistics,
train vs eval, state_dict keys and initialization; and their errors."""
import numpy as np
import pytest

import gradkit as gk
import gradkit.nn as nn
import gradkit.nn.functional as F

from helpers import to_np


class Flatten(nn.Module):
    """Stands in for nn.Flatten where this gradkit has none yet."""

    def forward(self, x):
        return x.flatten(1)

    def extra_repr(self):
        return "start_dim=1, end_dim=-1"


def _flatten(m):
    return m.Flatten() if hasattr(m, "Flatten") else Flatten()


def _pairs():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    return torch, [
        ("conv2d", lambda m: m.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 9)),
        ("conv2d_same_groups", lambda m: m.Conv2d(4, 8, (3, 2), padding="same", dilation=2,
                                                  groups=2, bias=False), (2, 4, 7, 9)),
        ("conv1d", lambda m: m.Conv1d(3, 5, 4, stride=2), (2, 3, 12)),
        ("conv2d_reflect_same", lambda m: m.Conv2d(3, 4, (3, 4), padding="same",
                                                   padding_mode="reflect"), (2, 3, 6, 7)),
        ("conv1d_circular", lambda m: m.Conv1d(3, 4, 3, padding=2, padding_mode="circular"),
         (2, 3, 6)),
        ("conv2d_replicate_stride", lambda m: m.Conv2d(3, 4, 3, stride=2, padding=(1, 2),
                                                       padding_mode="replicate"), (2, 3, 7, 6)),
        ("conv_transpose2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                         output_padding=1, groups=2), (2, 4, 5, 5)),
        ("batchnorm2d", lambda m: m.BatchNorm2d(4), (5, 4, 3, 3)),
        ("batchnorm1d_cumulative", lambda m: m.BatchNorm1d(4, momentum=None), (6, 4)),
        ("batchnorm1d_untracked", lambda m: m.BatchNorm1d(4, affine=False,
                                                          track_running_stats=False), (6, 4, 3)),
        ("instancenorm2d_tracked", lambda m: m.InstanceNorm2d(4, affine=True,
                                                              track_running_stats=True),
         (3, 4, 5, 5)),
        ("instancenorm2d_unbatched", lambda m: m.InstanceNorm2d(4), (4, 5, 5)),
        ("groupnorm", lambda m: m.GroupNorm(2, 6), (3, 6, 4, 4)),
        ("maxpool2d", lambda m: m.MaxPool2d(3, 2, 1), (2, 3, 8, 8)),
        ("avgpool2d", lambda m: m.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         (2, 3, 8, 7)),
        ("adaptive_avg", lambda m: m.AdaptiveAvgPool2d((3, None)), (2, 3, 8, 7)),
        ("adaptive_max", lambda m: m.AdaptiveMaxPool2d(3), (2, 3, 8, 7)),
        ("pixel_shuffle", lambda m: m.PixelShuffle(2), (2, 8, 3, 3)),
        ("upsample_bilinear", lambda m: m.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 4)),
        ("upsample_nearest", lambda m: m.Upsample(size=(5, 7)), (2, 3, 4, 4)),
        ("upsample_nearest_exact", lambda m: m.Upsample(scale_factor=(1.5, 0.75),
                                                        mode="nearest-exact"), (2, 3, 4, 8)),
        ("upsample_linear_align", lambda m: m.Upsample(size=9, mode="linear",
                                                       align_corners=True), (2, 3, 5)),
        ("lenet", lambda m: m.Sequential(m.Conv2d(1, 6, 5, padding=2), m.ReLU(), m.MaxPool2d(2),
                                         m.Conv2d(6, 16, 5), m.BatchNorm2d(16), m.ReLU(),
                                         m.AdaptiveAvgPool2d(2), _flatten(m),
                                         m.Linear(64, 10)), (4, 1, 16, 16)),
    ], tnn


CASES = ["conv2d", "conv2d_same_groups", "conv1d", "conv2d_reflect_same", "conv1d_circular",
         "conv2d_replicate_stride", "conv_transpose2d", "batchnorm2d",
         "batchnorm1d_cumulative", "batchnorm1d_untracked", "instancenorm2d_tracked",
         "instancenorm2d_unbatched", "groupnorm", "maxpool2d", "avgpool2d", "adaptive_avg",
         "adaptive_max", "pixel_shuffle", "upsample_bilinear", "upsample_nearest",
         "upsample_nearest_exact", "upsample_linear_align", "lenet"]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES)
def test_module_matches_torch(case, train, device):
    torch, pairs, tnn = _pairs()
    make, shape = {n: (f, s) for n, f, s in pairs}[case]
    torch.manual_seed(0)
    tm = make(tnn).double()
    gm = make(nn).to(device).double()
    tsd = tm.state_dict()
    assert list(gm.state_dict()) == list(tsd)      # same names, same order
    if torch.__version__.split("+")[0] == "2.13.0":   # the reference; 2.11 (the GPU
        assert repr(gm) == repr(tm)                   # machine's) prints norms without bias=
    for k, v in gm.state_dict().items():
        assert tuple(v.shape) == tuple(tsd[k].shape), k
    gm.load_state_dict({k: gk.tensor(v.numpy(), device=device) for k, v in tsd.items()})
    gm.train(train)
    tm.train(train)
    gp, tp = list(gm.parameters()), list(tm.parameters())
    go = gk.optim.SGD(gp, lr=0.1, momentum=0.9) if gp else None
    to = torch.optim.SGD(tp, lr=0.1, momentum=0.9) if tp else None
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal(shape)
        gx = gk.tensor(x, device=device, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        gy, ty = gm(gx), tm(tx)
        w = rng.standard_normal(tuple(ty.shape))
        (gy * gk.tensor(w, device=device)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(to_np(gy), ty.detach().numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(to_np(gx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
        for a, b in zip(gp, tp):
            np.testing.assert_allclose(to_np(a.grad), b.grad.numpy(), rtol=1e-9, atol=1e-10)
        if go:
            go.step(), to.step(), go.zero_grad(), to.zero_grad()
    for k, v in tm.state_dict().items():          # parameters after the steps, running stats
        np.testing.assert_allclose(to_np(gm.state_dict()[k]), v.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=k)


def test_conv_init_like_torch():
    """kaiming_uniform(a=sqrt(5)) weights, bias in +-1/sqrt(fan_in): the bounds
    torch uses (fan_in = in_channels/groups * prod(kernel) for both kinds)."""
    gk.manual_seed(0)
    for m, fan_in in ((nn.Conv2d(6, 32, 3, groups=2), 27), (nn.Conv1d(4, 8, 5), 20),
                      (nn.ConvTranspose2d(6, 4, 3, groups=2), 18)):
        bound = 1 / np.sqrt(fan_in)
        w, b = to_np(m.weight), to_np(m.bias)
        assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.8 * bound
        assert np.abs(b).max() <= bound + 1e-7
    assert nn.ConvTranspose2d(6, 4, 3, groups=2).weight.shape == (6, 2, 3, 3)


def test_batchnorm_buffers_and_modes():
    bn = nn.BatchNorm2d(3)
    assert bn.num_batches_tracked.dtype == gk.int64 and int(bn.num_batches_tracked) == 0
    x = gk.randn(4, 3, 2, 2) * 3.0 + 1.0
    y = bn(x)
    assert int(bn.num_batches_tracked) == 1
    m = to_np(x).mean((0, 2, 3))
    np.testing.assert_allclose(to_np(bn.running_mean), 0.1 * m, rtol=1e-5)
    np.testing.assert_allclose(to_np(y).mean((0, 2, 3)), 0, atol=1e-5)
    bn.eval()
    y2 = bn(x)                                  # running statistics now
    assert int(bn.num_batches_tracked) == 1
    assert not np.allclose(to_np(y2), to_np(y))
    bn.to(gk.float64)
    assert bn.num_batches_tracked.dtype == gk.int64 and bn.running_var.dtype == gk.float64


def test_double_backward_through_cnn():
    """A gradient penalty through conv + pool + batchnorm: second derivatives compose."""
    gk.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
                        nn.Conv2d(3, 2, 2), nn.GroupNorm(1, 2)).double()
    x = gk.randn(2, 2, 6, 6, dtype=gk.float64, requires_grad=True)

    def f(x):
        (g,) = gk.grad(net(x).pow(2).sum(), [x], create_graph=True)
        return (g * g).sum()
    assert gk.autograd.gradcheck(f, (x,))


def test_max_pool_indices_and_no_grad():
    x = gk.tensor(np.arange(32.0).reshape(1, 2, 4, 4))
    with gk.no_grad():
        v, i = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(to_np(i)[0, 0], [[5, 7], [13, 15]])
    assert i.dtype == gk.int64 and not v.requires_grad
    v, i = nn.MaxPool2d(2, return_indices=True)(x[0])       # unbatched
    assert v.shape == (2, 2, 2) and i.shape == (2, 2, 2)


@pytest.mark.parametrize("call,match", [
    (lambda: F.conv2d(gk.randn(1, 3, 5, 5), gk.randn(4, 2, 3, 3)),
     r"conv2d: Given groups=1, weight of size \[4, 2, 3, 3\], expected input\[1, 3, 5, 5\] "
     r"to have 2 channels, but got 3 channels instead"),
    (lambda: F.conv2d(gk.randn(1, 3, 2, 2), gk.randn(4, 3, 3, 3)), "Kernel size can't be greater"),
    (lambda: F.conv2d(gk.randn(3, 5), gk.randn(4, 3, 3, 3)), r"expected a 3D \(unbatched\) or 4D"),
    (lambda: F.conv2d(gk.randn(1, 3, 5, 5), gk.randn(4, 3, 3, 3), stride=2, padding="same"),
     "padding='same' is not supported for strided"),
    (lambda: F.conv2d(gk.randn(1, 3, 5, 5), gk.randn(4, 3, 3, 3, dtype=gk.float64)),
     r"input type \(float32\) and weight type \(float64\) should be the same"),
    (lambda: F.conv2d(gk.randn(1, 3, 5, 5), gk.randn(4, 3, 3, 3), gk.randn(3)),
     r"bias must have shape \(4,\)"),
    (lambda: F.conv_transpose2d(gk.randn(1, 3, 5, 5), gk.randn(3, 2, 3, 3), output_padding=1),
     "output padding must be smaller than either stride or dilation"),
    (lambda: F.max_pool2d(gk.randn(1, 1, 5, 5), 2, padding=2), "pad should be at most half"),
    (lambda: F.group_norm(gk.randn(2, 6, 3), 4), "divisible by num_groups"),
    (lambda: F.batch_norm(gk.randn(1, 3), None, None, training=True),
     "Expected more than 1 value per channel when training"),
    (lambda: nn.BatchNorm2d(3)(gk.randn(2, 3, 4)), r"expected 4D input \(got 3D input\)"),
    (lambda: F.interpolate(gk.randn(1, 1, 3, 3), scale_factor=2, mode="bicubic"),
     "mode 'bicubic' is not supported"),
    (lambda: F.pixel_shuffle(gk.randn(1, 6, 2, 2), 2), "divisible by the square"),
])
def test_errors_name_the_op(call, match):
    with pytest.raises((gk.GradkitError, ValueError, TypeError, NotImplementedError), match=match):
        call()


def test_conv_mixed_devices_error():
    x = gk.randn(1, 2, 4, 4)
    w = gk.randn(3, 2, 3, 3, device="fake") if _has_fake() else None
    if w is None:
        pytest.skip("no fake device")
    with pytest.raises(gk.GradkitError, match="input is on cpu but weight is on fake"):
        F.conv2d(x, w)


def _has_fake():
    try:
        gk.zeros(1, device="fake")
        return True
    except Exception:  # noqa: BLE001
        return False


def test_interpolate_area_like_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    got = F.interpolate(gk.tensor(x), size=(3, 4), mode="area")
    want = torch.nn.functional.interpolate(torch.tensor(x), size=(3, 4), mode="area")
    np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_nan_and_ties_like_torch(device):
    """NaN wins its window (as torch), the first max wins a tie, the gradient goes
    to that one element only."""
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [np.nan, 2.0, 3.0, 1.0],
                    [0.5, 0.5, -1.0, -2.0], [0.5, 0.5, -3.0, -2.0]]]])
    t = gk.tensor(x, device=device, requires_grad=True)
    v, i = F.max_pool2d(t, 2, return_indices=True)
    got = to_np(v)[0, 0]
    assert np.isnan(got[0, 0]) and got[0, 1] == 3.0 and got[1, 0] == 0.5 and got[1, 1] == -1.0
    np.testing.assert_array_equal(to_np(i)[0, 0], [[4, 2], [8, 10]])
    v[:, :, 1:].sum().backward()
    g = to_np(t.grad)[0, 0]
    assert g.sum() == 2.0 and g[2, 0] == 1.0 and g[2, 2] == 1.0
