"""The NumPy backend's shortcuts around NumPy's Python wrappers and slow
reductions must give what the functions they replace give: the same values
(bit for bit), dtypes, shapes, views and errors."""
import numpy as np
import pytest

from gradkit.backends import numpy_backend as nb

B = nb.NumpyBackend()
RNG = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(256, 10), (64, 2), (40, 32), (3, 5, 7), (100, 3, 4),
                                   (1000, 1), (2, 2), (33, 33), (7,)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "bool"])
def test_row_extremes_match_numpy(shape, dtype):
    """``_extreme`` (max/min over a short last axis through the transposed
    copy) against np.max/np.min, NaN and -inf included."""
    x = (RNG.standard_normal(shape) * 10).astype(dtype)
    if x.dtype.kind == "f":
        x.flat[::17] = np.nan
        x.flat[::23] = -np.inf
    for axis in (None, -1, x.ndim - 1, 0, (x.ndim - 1,), ()):
        for keep in (False, True):
            for uf, ref in ((np.maximum, np.max), (np.minimum, np.min)):
                got, want = nb._extreme(uf, x, axis, keep), ref(x, axis=axis, keepdims=keep)
                assert isinstance(got, np.ndarray) and got.dtype == x.dtype
                assert got.shape == np.shape(want)
                np.testing.assert_array_equal(got, want)
    assert B.amax(x, -1).shape == x.shape[:-1] and B.amin(x, (x.ndim - 1,), True).ndim == x.ndim


def test_row_extremes_take_the_transposed_path_and_keep_errors():
    x = RNG.standard_normal((256, 10)).astype(np.float32)
    np.testing.assert_array_equal(nb._extreme(np.maximum, x, 1, True), x.max(1, keepdims=True))
    with pytest.raises(ValueError, match="zero-size"):
        nb._extreme(np.maximum, np.zeros((0, 3)), None)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "uint8", "float16", "float32",
                                   "complex64"])
def test_sum_is_np_sum(dtype):
    x = (RNG.standard_normal((4, 5, 6)) * 3).astype(dtype)
    for dim in (None, 0, (0, 2), -1, ()):
        for keep in (False, True):
            got, want = B.sum(x, dim, keep), np.sum(x, axis=dim, keepdims=keep)
            assert isinstance(got, np.ndarray) and got.dtype == np.asarray(want).dtype
            np.testing.assert_array_equal(got, want)


def test_unsqueeze_is_expand_dims():
    x = np.arange(24.0).reshape(2, 3, 4)[:, ::2]   # not contiguous: still a view
    for d in range(-x.ndim - 1, x.ndim + 1):
        got, want = B.unsqueeze(x, d), np.expand_dims(x, d)
        assert got.shape == want.shape and np.shares_memory(got, x), d
        np.testing.assert_array_equal(got, want)
    for d in (x.ndim + 1, -x.ndim - 2):
        with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
            B.unsqueeze(x, d)
    assert B.unsqueeze(np.array(3.0), 0).shape == (1,)


def test_put_along_dim_2d_is_put_along_axis():
    g = RNG.standard_normal((6, 1)).astype(np.float32)
    idx = RNG.integers(0, 5, (6, 1))
    for keep in (True, False):
        want = np.zeros((6, 5), np.float32)
        np.put_along_axis(want, idx, g, axis=1)
        got = B.put_along_dim((6, 5), idx if keep else idx[:, 0], g if keep else g[:, 0], 1, keep)
        np.testing.assert_array_equal(got, want)
