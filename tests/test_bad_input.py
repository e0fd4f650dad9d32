"""Invalid state and bad input found by probing the released package (issue 11):
each is refused with a clear error naming the op, as torch refuses it."""
import numpy as np
import pytest

import gradkit as gk


# ---------------------------------------------------------------- item 4: t.grad = ...
def test_grad_assignment_is_validated(device):
    w = gk.zeros(3, device=device, requires_grad=True)
    with pytest.raises(TypeError, match="Tensor or None.*ndarray"):
        w.grad = np.zeros(3)
    with pytest.raises(RuntimeError, match=r"different size.*\(4,\).*\(3,\)"):
        w.grad = gk.zeros(4, device=device)
    with pytest.raises(RuntimeError, match="different type.*float64.*float32"):
        w.grad = gk.zeros(3, dtype=gk.float64, device=device)
    with pytest.raises(RuntimeError, match="its own grad"):
        w.grad = w
    if device != "cpu":
        with pytest.raises(RuntimeError, match="different device"):
            w.grad = gk.zeros(3)
    assert w.grad is None            # nothing was assigned by the refused calls
    w.grad = gk.ones(3, device=device)
    (w * 2).sum().backward()         # a valid assignment accumulates as before
    assert w.grad.tolist() == [3.0, 3.0, 3.0]
    w.grad = None
    assert w.grad is None
    w.grad = gk.ones(3, device=device)
    del w.grad
    assert w.grad is None


# ------------------------------------------------------------ item 5: gk.from_numpy
@pytest.mark.parametrize("arr", [np.zeros(3, np.complex64), np.zeros(2, np.longdouble),
                                 np.array([None, 1]), np.zeros(2, "<U2")],
                         ids=["complex64", "longdouble", "object", "str"])
def test_from_numpy_refuses_unsupported_dtypes(arr):
    with pytest.raises(TypeError, match=r"gradkit.from_numpy: can't make a tensor.*dtype"):
        gk.from_numpy(arr)


def test_from_numpy_refuses_non_arrays_and_foreign_byte_order():
    with pytest.raises(TypeError, match="expected a numpy.ndarray, got list"):
        gk.from_numpy([1.0, 2.0])
    big = np.arange(3, dtype=">f4")
    with pytest.raises(TypeError, match="byte order"):
        gk.from_numpy(big)
    # the copying constructor converts instead (and the values are right)
    t = gk.tensor(big)
    assert t.dtype == gk.float32 and t.tolist() == [0.0, 1.0, 2.0]
    a = np.arange(3, dtype=np.float32)
    t = gk.from_numpy(a)
    a[0] = 5                              # shares memory, as before
    assert t.tolist() == [5.0, 1.0, 2.0]
