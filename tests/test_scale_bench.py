"""benchmarks/scale.py: its implementations compute the same gradient, so that
their per-op costs compare the same work."""
import importlib.util

import numpy as np
import pytest

from benchmarks import scale


@pytest.mark.parametrize("impl", [i for i in scale.IMPLS if i != "gradkit"])
@pytest.mark.parametrize("n", [3, 30])
def test_scale_implementations_agree_with_gradkit(impl, n):
    if impl == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    ref = np.asarray(scale._make("gradkit")(n).numpy(), dtype=np.float64)
    got = scale._make(impl)(n)
    got = np.asarray(got.detach().numpy() if impl == "torch" else got, dtype=np.float64)
    assert got.shape == ref.shape == (scale.N_EL,)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert np.abs(ref).max() > 1e-3   # a real gradient, not zeros


def test_scale_cell_reports_per_op_time_and_peak():
    r = scale.cell("tape", 300, "on", 2)
    assert r["impl"] == "tape" and r["n"] == 300 and len(r["samples"]) == 2
    assert 0 < r["us_per_op_min"] <= r["us_per_op_median"]


def test_scale_rejects_an_unknown_implementation():
    with pytest.raises(SystemExit, match="unknown implementation"):
        scale._make("jax")
