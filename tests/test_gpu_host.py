"""benchmarks/gpu_host.py (run on GPU visits) works end to end on the CPU backend."""
from benchmarks import gpu_host


def test_runs_on_cpu_and_reports_host_wall_and_profile(capsys):
    assert gpu_host.main(["--device", "cpu", "--workload", "W2", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "W2 gradkit on cpu: host" in out and "host/wall" in out
    assert "hidden syncs in a step" not in out   # the sync check is CUDA only
    assert "calls and own microseconds per step" in out
    assert "matmul" in out                   # the profile names the backend's kernels


def test_a_missing_device_is_a_clean_skip(capsys):
    import gradkit as gk
    if gk.cuda.is_available():
        return
    assert gpu_host.main(["--device", "cuda", "--steps", "1"]) == 0
    assert "skipped" in capsys.readouterr().out
