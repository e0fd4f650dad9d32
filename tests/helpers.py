import numpy as np

import gradkit as gk


def to_np(t):
    return t._B.to_host(t.array)


def make(arr, device, requires_grad=False, dtype=None):
    arr = np.asarray(arr)
    return gk.tensor(arr, device=device, requires_grad=requires_grad,
                     dtype=dtype if dtype is not None else arr.dtype)


def assert_close(t, ref, rtol=1e-6, atol=1e-8):
    got = to_np(t) if isinstance(t, gk.Tensor) else np.asarray(t)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"shape {got.shape} != {ref.shape}"
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
