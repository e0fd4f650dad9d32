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
