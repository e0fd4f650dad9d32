"""benchmarks/run.py --rounds: a cell's rounds pool their samples."""
import statistics

from benchmarks.run import pool


def _cell(samples, **extra):
    med = statistics.median(samples)
    return {"status": "ok", "samples_s": samples, "median_s": med, "value": med * 1e3,
            "min_s": min(samples), "faults_per_step": 10.0, **extra}


def test_pooled_statistics_are_those_of_all_samples():
    a = _cell([1.0, 2.0, 3.0], peak_mb=5.0, grad_err=1e-6)
    b = _cell([10.0, 11.0, 12.0], grad_err=2e-6)
    b["faults_per_step"] = 40.0
    r = pool(a, b, 1e3)
    allx = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0]
    assert r["samples_s"] == allx and r["rounds"] == 2
    assert r["median_s"] == statistics.median(allx) and r["value"] == statistics.median(allx) * 1e3
    q1, _, q3 = statistics.quantiles(allx, n=4)
    assert (r["min_s"], r["p25_s"], r["p75_s"]) == (1.0, q1, q3)
    assert r["p75_over_p25"] == q3 / q1
    assert r["faults_per_step"] == 25.0 and r["peak_mb"] == 5.0 and r["grad_err"] == 2e-6
    c = pool(r, _cell([4.0]), 1e3)   # a third round: faults averaged over all three
    assert c["rounds"] == 3 and c["faults_per_step"] == 20.0 and len(c["samples_s"]) == 7


def test_a_failed_round_decides():
    bad = {"status": "FAILED", "message": "gradient mismatch"}
    assert pool(_cell([1.0]), bad, 1e3) is bad
    assert pool(bad, _cell([1.0]), 1e3) is bad
    first = _cell([1.0])
    assert pool(None, first, 1e3) is first
