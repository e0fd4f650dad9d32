"""The convolution/pooling kernels of every backend class agree (backends/conv*.py).

No GPU here, so the CuPy kernels' logic (strided views, the one scatter-add of
col2im, grouped GEMMs) runs with NumPy standing in for CuPy: the same calls
exist in both namespaces (``lib.stride_tricks.as_strided``, ``matmul``,
``take_along_axis``; ``cupyx.scatter_add`` is ``np.add.at``). What only a GPU
can show (kernel launches, devices) is left to scripts/gpu_check.sh."""
import contextlib
import itertools

import numpy as np
import pytest

from gradkit.backends import get
from gradkit.backends.conv import ConvKernels
from gradkit.backends.conv_cupy import CupyConvKernels
from gradkit.backends.numpy_backend import NumpyBackend


class CupyLogicOnNumpy(CupyConvKernels, NumpyBackend):
    def __init__(self):
        super().__init__()
        self.cp = np
        self.cuda_device = contextlib.nullcontext()
        self._scatter_add = np.add.at


class ReferenceOnNumpy(NumpyBackend):
    """The namespace-only reference kernels of ConvKernels, run on NumPy."""
    pass


for _name in ("_padded", "im2col", "col2im", "conv", "conv_fwd", "conv_weight_grad",
              "conv_input_grad",
              "max_pool", "pool_scatter", "pool_gather"):
    setattr(ReferenceOnNumpy, _name, getattr(ConvKernels, _name))

BACKENDS = {"numpy": get("cpu"), "cupy_logic": CupyLogicOnNumpy(), "reference": ReferenceOnNumpy()}

# (N, C, spatial, O, kernel, stride, padding pairs, dilation, groups)
GEOMETRIES = [
    (2, 4, (7, 6), 6, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    (2, 4, (9, 8), 6, (3, 2), (2, 3), ((1, 2), (0, 1)), (2, 1), 2),
    (1, 3, (5, 5), 3, (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 3),
    (3, 2, (11,), 4, (4,), (2,), ((2, 1),), (1,), 1),
]


@pytest.mark.parametrize("geom", GEOMETRIES, ids=[str(i) for i in range(len(GEOMETRIES))])
@pytest.mark.parametrize("name", ["cupy_logic", "reference"])
def test_conv_kernels_agree(name, geom):
    N, C, S, O, K, st, pad, dil, G = geom
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C) + S)
    w = rng.standard_normal((O, C // G) + K)
    ref, be = BACKENDS["numpy"], BACKENDS[name]
    y = ref.conv(x, w, st, pad, dil, G)
    np.testing.assert_allclose(be.conv(x, w, st, pad, dil, G), y, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(be.conv_input_grad(g, w, st, pad, dil, G, x.shape),
                               ref.conv_input_grad(g, w, st, pad, dil, G, x.shape),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(be.conv_weight_grad(x, g, st, pad, dil, G, w.shape),
                               ref.conv_weight_grad(x, g, st, pad, dil, G, w.shape),
                               rtol=1e-12, atol=1e-12)
    y2, cols = be.conv_fwd(x, w, st, pad, dil, G, keep=True)   # the kept im2col serves dw
    np.testing.assert_array_equal(y2, be.conv(x, w, st, pad, dil, G))
    np.testing.assert_allclose(be.conv_weight_grad(None, g, st, pad, dil, G, w.shape, cols),
                               ref.conv_weight_grad(x, g, st, pad, dil, G, w.shape),
                               rtol=1e-12, atol=1e-12)
    assert be.conv_fwd(x, w, st, pad, dil, G)[1] is None
    # the adjoint identities the primitives' VJPs rest on
    assert np.isclose((y * g).sum(), (x * ref.conv_input_grad(g, w, st, pad, dil, G, x.shape)).sum())
    assert np.isclose((y * g).sum(), (w * ref.conv_weight_grad(x, g, st, pad, dil, G, w.shape)).sum())


@pytest.mark.parametrize("geom", list(itertools.product([(2, 2), (3, 3)], [(1, 1), (2, 2)],
                                                        [((0, 0), (0, 0)), ((1, 1), (0, 1))])))
@pytest.mark.parametrize("name", ["cupy_logic", "reference"])
def test_pool_kernels_agree(name, geom):
    K, st, pad = geom
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) * 0.5
    ref, be = BACKENDS["numpy"], BACKENDS[name]
    v, i = ref.max_pool(x, K, st, pad, (1, 1))
    bv, bi = be.max_pool(x, K, st, pad, (1, 1))
    np.testing.assert_array_equal(bv, v)
    np.testing.assert_array_equal(bi, i)
    g = rng.standard_normal(v.shape)
    np.testing.assert_allclose(be.pool_scatter(g, i, x.shape, True),
                               ref.pool_scatter(g, i, x.shape, True), rtol=1e-12)
    np.testing.assert_array_equal(be.pool_gather(x, i), v)
