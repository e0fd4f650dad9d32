"""Bad input gets a clear error naming the op, the shapes, devices or dtypes."""
import numpy as np
import pytest

import gradkit as gk


def test_broadcast_shape_mismatch_names_op_and_shapes(device):
    a = gk.ones(2, 3, device=device)
    b = gk.ones(4, device=device)
    with pytest.raises(RuntimeError) as e:
        a + b
    msg = str(e.value)
    assert "add" in msg and "(2, 3)" in msg and "(4,)" in msg


def test_matmul_shape_mismatch(device):
    with pytest.raises(RuntimeError) as e:
        gk.ones(2, 3, device=device) @ gk.ones(4, 5, device=device)
    msg = str(e.value)
    assert "matmul" in msg and "(2, 3)" in msg and "(4, 5)" in msg


def test_device_mismatch_names_both(device):
    other = "cpu" if device != "cpu" else "fake"
    if other == "fake":
        pytest.importorskip("array_api_strict")
    a = gk.ones(2, device=device)
    b = gk.ones(2, device=other)
    with pytest.raises(RuntimeError) as e:
        a * b
    msg = str(e.value)
    assert device in msg and other in msg


def test_unknown_device_string():
    with pytest.raises(RuntimeError, match="unknown device 'tpu'"):
        gk.zeros(2, device="tpu")
    with pytest.raises(RuntimeError, match="unknown device"):
        gk.device("cuda:x")


def test_cuda_unavailable_says_why():
    if gk.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError) as e:
        gk.zeros(2, device="cuda")
    msg = str(e.value)
    assert "CUDA" in msg
    assert gk.cuda.why_unavailable() in msg
    assert ("pip install" in msg) or ("driver" in msg) or ("GPU" in msg) or ("GRADKIT_DEVICE" in msg)


def test_cuda_detection_never_raises():
    assert gk.cuda.is_available() in (True, False)
    assert isinstance(gk.cuda.device_count(), int)
    gk.cuda.synchronize()  # a no-op without CUDA


def test_numpy_on_cuda_says_cpu(monkeypatch):
    # exercised for real on a GPU; here check the message through the fake's
    # sibling path: a cuda-typed backend refuses .numpy()
    t = gk.ones(2)
    monkeypatch.setattr(type(t._B), "type", "cuda")
    try:
        with pytest.raises(TypeError, match=r"\.cpu\(\)"):
            t.numpy()
    finally:
        monkeypatch.undo()


def test_backward_gradient_wrong_shape(device):
    x = gk.ones(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of "
                                           r"gradkit.Size\(\[2\]\).*gradkit.Size\(\[3\]\)"):
        (x * 2).backward(gk.ones(2, device=device))


def test_out_of_range_index_raises_index_error(device):
    x = gk.ones(3, 2, device=device)
    with pytest.raises(IndexError, match="out of range"):
        x[3]
    with pytest.raises(IndexError):
        x[0, -3]
    with pytest.raises(IndexError):
        x[0, 0, 0]


def test_out_of_range_integer_array_index_cpu():
    x = gk.ones(3)
    with pytest.raises(IndexError) as e:
        x[gk.tensor([0, 5])]
    assert "getitem" in str(e.value)


def test_dim_out_of_range(device):
    x = gk.ones(2, 3, device=device)
    with pytest.raises(IndexError, match="sum.*range"):
        x.sum(2)
    with pytest.raises(IndexError, match="range"):
        x.max(-3)


def test_reshape_invalid(device):
    with pytest.raises(RuntimeError, match=r"reshape.*\[4, 2\].*6"):
        gk.ones(2, 3, device=device).reshape(4, 2)


def test_no_numpy_traceback_as_message(device):
    with pytest.raises(RuntimeError) as e:
        gk.ones(2, 3, device=device) * gk.ones(3, 2, device=device)
    assert str(e.value).startswith("gradkit.mul")


def test_wrong_operand_type():
    with pytest.raises(TypeError, match="mul"):
        gk.ones(2) * "a"
