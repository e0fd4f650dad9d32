"""Devices, creation, dtypes and conversions."""
import numpy as np
import pytest

import gradkit as gk

from helpers import to_np


def test_device_objects():
    d = gk.device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and str(d) == "cuda:1"
    assert gk.device("cpu") == "cpu" and str(gk.device("cpu")) == "cpu"
    assert gk.device("cuda") == gk.device("cuda:0")
    assert gk.zeros(2).device == "cpu"


def test_creation_and_default_dtype(device):
    assert gk.tensor([1.0, 2.0], device=device).dtype == gk.float32
    assert gk.tensor([1, 2], device=device).dtype == gk.int64
    assert gk.tensor([True], device=device).dtype == gk.bool
    assert gk.tensor(np.zeros(2, np.float64), device=device).dtype == gk.float64
    assert gk.zeros(2, 3, device=device).shape == (2, 3)
    assert gk.ones((2, 3), device=device, dtype=gk.float64).dtype == gk.float64
    assert gk.full((2,), 7.0, device=device).tolist() == [7.0, 7.0]
    assert gk.arange(4, device=device).tolist() == [0, 1, 2, 3]
    assert gk.arange(0.0, 1.0, 0.5, device=device).dtype == gk.float32
    np.testing.assert_allclose(to_np(gk.linspace(0, 1, 3, device=device)), [0, 0.5, 1])
    np.testing.assert_array_equal(to_np(gk.eye(2, device=device)), np.eye(2))
    x = gk.randn(3, 2, device=device)
    assert gk.zeros_like(x).shape == (3, 2) and gk.ones_like(x).device == device
    assert gk.full_like(x, 2.0).tolist() == [[2.0, 2.0]] * 3
    assert gk.rand_like(x).shape == x.shape and gk.randn_like(x).dtype == x.dtype
    r = gk.randint(0, 5, (100,), device=device)
    assert r.dtype == gk.int64 and 0 <= to_np(r).min() and to_np(r).max() < 5
    prev = gk.get_default_dtype()
    try:
        gk.set_default_dtype(gk.float64)
        assert gk.tensor([1.0], device=device).dtype == gk.float64
    finally:
        gk.set_default_dtype(prev)


def test_manual_seed_reproducible(device):
    gk.manual_seed(7)
    a = to_np(gk.randn(4, device=device))
    gk.manual_seed(7)
    b = to_np(gk.randn(4, device=device))
    np.testing.assert_array_equal(a, b)


def test_conversions(device):
    x = gk.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert x[0, 1].item() == 2.0
    assert float(x[1, 1]) == 4.0
    assert len(x) == 2 and x.ndim == 2 and x.numel() == 4 and x.size(1) == 2
    c = x.cpu()
    assert c.device == "cpu"
    np.testing.assert_array_equal(c.numpy(), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.asarray(c), [[1, 2], [3, 4]])
    assert x.double().dtype == gk.float64 and x.to(gk.float64).dtype == gk.float64
    assert x.to("cpu").device == "cpu"
    assert "tensor(" in repr(x)


def test_to_device_is_differentiable(device):
    x = gk.tensor([1.0, 2.0], requires_grad=True)  # cpu
    y = x.to(device) * 3
    y.sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [3.0, 3.0]


def test_data_is_backend_array_zero_copy():
    a = np.arange(3.0)
    t = gk.from_numpy(a)
    assert t.array is a or np.shares_memory(t.array, a)
    assert isinstance(gk.zeros(2).array, np.ndarray)


def test_dlpack_roundtrip_numpy():
    a = np.arange(4.0)
    t = gk.from_dlpack(a)
    assert np.shares_memory(t.array, a)
    # export (NumPy 1.x imports DLPack read-only and can't re-export those, so
    # export a tensor made from the array directly)
    b = np.from_dlpack(gk.from_numpy(a))
    assert np.shares_memory(b, a)


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    tt = torch.arange(4.0)
    g = gk.from_dlpack(tt)
    assert g.tolist() == [0.0, 1.0, 2.0, 3.0]
    g.array[0] = 9.0  # zero copy: torch sees it
    assert tt[0].item() == 9.0
    back = torch.from_dlpack(gk.tensor([1.0, 2.0]))
    assert back.tolist() == [1.0, 2.0]


def test_fake_accelerator_traps_host_conversions():
    pytest.importorskip("array_api_strict")
    from gradkit.backends.strict_backend import HostSyncError
    x = gk.ones(3, device="fake")
    raw = x.array
    with pytest.raises(HostSyncError):
        float(raw[0])
    with pytest.raises(HostSyncError):
        bool(raw[0])
    with pytest.raises(RuntimeError):
        np.asarray(raw)
    # the sanctioned way off the device still works
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_gradients_accumulate_on_the_fake_device():
    x = gk.ones(3, device="fake", requires_grad=True)
    for _ in range(2):
        ((x * x).tanh() * 2).sum().backward()
    assert x.grad.device == "fake"
    assert "device1" in str(x.grad.array.device)
