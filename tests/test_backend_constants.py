"""The NumPy backend passes its own constants to ufuncs as cached 0-d arrays of
the operand's dtype (``numpy_backend._scalar``): NumPy converts a Python scalar
operand on every call, a few hundred ns per ufunc on a small array. The cast
is the one NumPy's promotion (NEP 50) makes, so every result must be
bit-identical to the same formula written with Python scalars."""
import numpy as np
import pytest

from gradkit.backends import numpy_backend as nb

B = nb.NumpyBackend()
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-30, 30.0, -30.0, np.inf, -np.inf, np.nan]


def _data(dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([np.array(SPECIAL), rng.standard_normal(20) * 3])
    return x.astype(dtype)


def _reference(name, x, g):
    """The kernels' formulas with Python scalar constants (what they were)."""
    with np.errstate(all="ignore"):
        if name == "tanh_backward":
            return (1 - x * x) * g
        if name == "sigmoid_backward":
            return (1 - x) * x * g
        if name == "relu":
            return np.maximum(x, 0)
        if name == "relu_backward":
            # torch's threshold_backward: +0 where x <= 0 (an inf or NaN g too)
            return np.where(np.less_equal(x, 0), np.zeros((), g.dtype), g)
        if name == "rsqrt":
            return 1 / np.sqrt(x)
        if name == "sqrt_backward":
            return g / (x * 2)
        if name == "sigmoid":
            e = np.exp(-np.abs(x))
            out = np.where(x >= 0, 1.0, e).astype(x.dtype, copy=False)
            return out / (1.0 + e)
    raise AssertionError(name)


@pytest.mark.parametrize("size", [1, None])   # one element: tanh_backward's fresh-buffer path
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", ["tanh_backward", "sigmoid_backward", "relu", "relu_backward",
                                  "rsqrt", "sqrt_backward", "sigmoid"])
def test_cached_constants_are_bit_identical(name, dtype, size):
    x, g = _data(dtype), _data(dtype)[::-1].copy()
    if size == 1:
        x, g = x[4:5].copy(), g[4:5].copy()
    want = _reference(name, x.copy(), g.copy())
    with np.errstate(all="ignore"):
        fn = getattr(B, name)
        got = fn(x.copy(), g.copy()) if name.endswith("backward") else fn(x.copy())
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


def test_tanh_backward_into_y_matches():
    for dtype in ("float32", "float64"):
        y, g = _data(dtype), _data(dtype)[::-1].copy()
        want = B.tanh_backward(y, g)
        with np.errstate(all="ignore"):
            got = B.tanh_backward_into_y(y.copy(), g)
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}"))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "complex64"])
def test_relu_backward_into_g_matches(dtype):
    """The donating form writes into g (its bits times the 0/1 mask) and gives
    relu_backward's bits, for every float size, for complex (np.where), for 0-d."""
    y, g = _data("float64").astype(dtype), _data("float64")[::-1].astype(dtype)
    for yy, gg in ((y, g), (y[3], g[3]), (y[:1], g[:1])):
        yy, gg = np.asarray(yy), np.asarray(gg)
        want = B.relu_backward(yy, gg.copy())
        buf = gg.copy()
        got = B.relu_backward_into_g(yy, buf)
        assert got.dtype == want.dtype and got.shape == want.shape
        if got.ndim:
            assert np.shares_memory(got, buf)
        np.testing.assert_array_equal(got.view(f"u{got.itemsize}") if got.dtype.kind == "f"
                                      else got, want.view(f"u{want.itemsize}")
                                      if want.dtype.kind == "f" else want)


def test_scalar_cache_keeps_signed_zero_and_types():
    a32 = np.ones(3, np.float32)
    z = nb._scalar(0, a32)
    assert z.dtype == np.float32 and z.ndim == 0 and not np.signbit(z) and not z.flags.writeable
    assert nb._scalar(0, np.ones(3)).dtype == np.float64
    # a float zero keeps NumPy's conversion: -0.0 and 0.0 are one dict key
    assert nb._scalar(-0.0, a32) is not z and np.signbit(nb._scalar(-0.0, a32))
    one = nb._scalar(1, a32)
    assert one.dtype == np.float32 and float(one) == 1.0 and not one.flags.writeable
    # other dtypes and overflowing values stay Python numbers
    assert nb._scalar(1, np.ones(3, np.float16)) == 1 and type(nb._scalar(1, np.ones(3, np.float16))) is int
    assert type(nb._scalar(1e300, a32)) is float
    assert type(nb._scalar(0, np.ones(3, np.int64))) is int
