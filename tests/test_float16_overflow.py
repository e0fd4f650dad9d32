"""float16 composites must not overflow where the float64 result is finite
(issue 11, items 1-3): forward and gradient of each op on float16 inputs
spanning the whole float16 range, against the same op in float64."""
import math

import numpy as np
import pytest

import gradkit as gk
import gradkit.nn.functional as F

# |x| up to 6e4 (float16's max is 65504), dense around softplus's threshold (20)
# and the float16 exp overflow (11.09)
GRID = np.concatenate([np.linspace(-60000, 60000, 41), np.linspace(-30, 30, 121),
                       [11.1, 11.2, 15.0, 19.9, 20.0, 20.1, 300.0, -300.0, 1e4, -1e4]])

OPS = {
    "softplus": lambda x: gk.softplus(x),
    "softplus_beta": lambda x: gk.softplus(x, beta=2.0, threshold=10.0),
    "gelu": lambda x: gk.gelu(x),
    "gelu_tanh": lambda x: gk.gelu(x, approximate="tanh"),
    "silu": lambda x: gk.silu(x),
    "sigmoid": lambda x: gk.sigmoid(x),
    "tanh": lambda x: gk.tanh(x),
    "logsumexp": lambda x: gk.logsumexp(x.reshape(-1, 1) + gk.zeros(1, 3, dtype=x.dtype,
                                                                     device=x.device), 1),
    "log_softmax": lambda x: gk.log_softmax(gk.stack([x, x * 0.5]), 0)[0],
    "softmax": lambda x: gk.softmax(gk.stack([x, x * 0.5]), 0)[0],
}


def _run(fn, dtype, device):
    x = gk.tensor(GRID, dtype=dtype, device=device, requires_grad=True)
    y = fn(x)
    y.backward(gk.ones_like(y))  # a float16 sum of the outputs would overflow
    return y.detach().cpu().numpy().astype(np.float64), x.grad.cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("name", sorted(OPS))
def test_float16_finite_where_float64_is(name, device):
    if device == "fake":
        pytest.skip("array_api_strict has no float16")
    fn = OPS[name]
    y16, g16 = _run(fn, gk.float16, device)
    y64, g64 = _run(fn, gk.float64, device)
    for what, a, ref in (("forward", y16, y64), ("gradient", g16, g64)):
        fin = np.abs(ref) < 6e4   # representable in float16
        bad = fin & ~np.isfinite(a)
        assert not bad.any(), f"{name} {what}: non-finite at x={GRID[bad][:5]} (float64: {ref[bad][:5]})"
        np.testing.assert_allclose(a[fin], ref[fin], rtol=2e-2, atol=2e-2,
                                   err_msg=f"{name} {what}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_nan_gradient_goes_to_the_nan_only(dtype, device):
    # torch: x.max() of [nan, 1, 2] is nan and its gradient is [1, 0, 0]
    x = gk.tensor([math.nan, 1.0, 2.0], dtype=dtype, device=device, requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0]
    x = gk.tensor([[1.0, math.nan], [math.nan, 3.0]], dtype=dtype, device=device,
                  requires_grad=True)
    gk.amin(x).backward()   # two NaNs split the gradient, as tied maxima do
    assert x.grad.tolist() == [[0.0, 0.5], [0.5, 0.0]]
    x = gk.tensor([3.0, 1.0, 3.0], dtype=dtype, device=device, requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.5, 0.0, 0.5]
