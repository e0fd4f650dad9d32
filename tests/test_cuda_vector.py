"""The vector launch path of the CUDA backend (backends/cuda_vector.py) on a
real GPU: for every fused kernel, float16/32/64, sizes around the per-thread
width and misaligned views, the same bits as the ElementwiseKernel it stands in
for, and nothing written outside the output. Skips without a usable GPU (the
host build of the same source runs in tests/test_kernels_host.py)."""
import numpy as np
import pytest

import gradkit as gk

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(
    not gk.cuda.is_available(), reason="CUDA is not usable here")]

SCALAR_KERNELS = ("sgd_update", "sgd_momentum_update", "adam_update", "adam_amsgrad_update")


@pytest.fixture(scope="module")
def table():
    from gradkit.backends import cupy_backend
    gk.backends.get("cuda", 0)
    return cupy_backend._vector_kernels(), cupy_backend.kernel_specs()


def _view(cp, buf, offset, n):
    return buf[offset:offset + n]


def _operands(cp, cv, name, spec, dt, n, offset, rng):
    """(inputs, outputs or [], guarded buffers of the outputs) on the GPU."""
    def arr(dtype, host):
        buf = cp.full(n + offset + 37, 7, dtype=dtype)
        v = _view(cp, buf, offset, n)
        v[...] = cp.asarray(host)
        return v, buf
    ins = []
    for t, pn in cv.params(spec["in_params"]):
        if t == "T":
            ins.append(arr(dt, rng.standard_normal(n).astype(dt))[0])
        elif name not in SCALAR_KERNELS:   # bool m of mask_mul
            ins.append(arr(t, rng.random(n) < 0.5)[0])
        else:
            ins.append(True if t == "bool" else (0.1 if pn == "w1" else 0.375))
    outs, bufs = [], []
    if not all(cv.write_only(spec, o) for _, o in cv.params(spec["out_params"])):
        for _ in cv.params(spec["out_params"]):
            v, buf = arr(dt, np.abs(rng.standard_normal(n)).astype(dt))
            outs.append(v)
            bufs.append(buf)
    return ins, outs, bufs


@pytest.mark.parametrize("dt", ["float16", "float32", "float64"])
def test_vector_path_gives_the_elementwise_kernels_bits(table, dt):
    import cupy as cp
    from gradkit.backends import cuda_vector as cv
    kernels, specs = table
    E = cv.elems(dt)
    rng = np.random.default_rng(3)
    for name, spec in specs.items():
        vk = kernels[name]
        for n in (1, 3, E - 1, E, E + 1, 4 * E - 1, 4 * E + 1, 1000, 4099, (1 << 20) + 3):
            for offset in (0, 1, 3):
                ins, outs, bufs = _operands(cp, cv, name, spec, dt, n, offset, rng)
                ref_bufs = [b.copy() for b in bufs]
                ref_outs = [_view(cp, b, offset, n) for b in ref_bufs]
                before = vk.launches
                got = vk(*ins, *outs)
                ref = vk.fallback(*ins, *ref_outs)
                assert vk.launches == before + 1, f"{name}: not the vector path"
                got = got if isinstance(got, tuple) else (got,)
                ref = ref if isinstance(ref, tuple) else (ref,)
                for g, r in zip(got, ref):
                    assert g.dtype == r.dtype and g.shape == r.shape
                    assert bool(cp.array_equal(g.view(cp.uint8), r.view(cp.uint8))), \
                        f"{name}[{dt}] n={n} offset={offset}"
                for b, rb in zip(bufs, ref_bufs):   # the guards around the outputs
                    assert bool(cp.array_equal(b.view(cp.uint8), rb.view(cp.uint8))), \
                        f"{name}[{dt}] n={n} offset={offset}: wrote outside the output"


def test_backend_takes_the_vector_path_only_for_contiguous_operands(table):
    import cupy as cp
    B = gk.backends.get("cuda", 0)
    y = cp.linspace(-1, 1, 12, dtype=cp.float32).reshape(3, 4)
    g = cp.ones((3, 4), cp.float32)
    k = B.tanh_backward
    before = k.launches
    ref = g * (1 - y * y)
    cp.testing.assert_allclose(k(y, g), ref, rtol=1e-6)
    assert k.launches == before + 1
    cp.testing.assert_allclose(k(y.T, g.T), ref.T, rtol=1e-6)   # strided: ElementwiseKernel
    cp.testing.assert_allclose(k(y, g[:1]), ref, rtol=1e-6)     # broadcast: ElementwiseKernel
    assert k.launches == before + 1
    with pytest.raises(TypeError):
        k(y, g.astype(cp.float64))
