"""`python -m gradkit` (info, demo, graph, warmup) and the kernel warm-up logic."""
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gradkit import cli
from gradkit.backends import cuda_tools

REPO = Path(__file__).resolve().parents[1]


def run(*args, cwd, env=None, timeout=120):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    r = subprocess.run([sys.executable, "-m", "gradkit", *args], cwd=cwd, env=e,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def test_info(tmp_path):
    rc, out = run("info", cwd=tmp_path)
    assert rc == 0, out
    for word in ("gradkit", "python", "numpy", "cupy", "CUDA runtime", "CUDA driver",
                 "CUDA usable", "graphviz dot"):
        assert word in out
    import gradkit as gk
    if not gk.cuda.is_available():
        assert "CUDA usable" in out and "no: " in out
        assert gk.cuda.why_unavailable().split(" (")[0] in out


def test_info_says_why_cuda_is_off():
    # GRADKIT_DEVICE=cpu is one reason; run in a fresh process so the cached status is fresh
    rc, out = run("info", cwd=REPO, env={"GRADKIT_DEVICE": "cpu"})
    assert rc == 0 and "GRADKIT_DEVICE=cpu forces the CPU" in out


def test_help_and_version(capsys):
    assert cli.main([]) == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert "gradkit 0." in capsys.readouterr().out


def test_graph_svg_or_dot(tmp_path):
    rc, out = run("graph", "--out", "founding.svg", cwd=tmp_path)
    assert rc == 0, out
    if shutil.which("dot"):
        assert (tmp_path / "founding.svg").read_text().lstrip().startswith("<?xml")
        assert "wrote founding.svg" in out
    else:
        assert (tmp_path / "founding.dot").exists()
        assert "apt-get install graphviz" in out


def test_graph_without_dot_writes_dot_text(tmp_path):
    # a PATH holding only Python's folder: no `dot`
    rc, out = run("graph", cwd=tmp_path, env={"PATH": str(Path(sys.executable).parent)})
    assert rc == 0, out
    text = (tmp_path / "graph.dot").read_text()
    assert text.startswith("digraph") and 'label="x1"' in text and 'label="y"' in text
    assert not (tmp_path / "graph.svg").exists()
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz",
                 "dot -Tsvg graph.dot -o graph.svg"):
        assert hint in out


def test_warmup_without_cuda_exits_0(tmp_path):
    rc, out = run("warmup", cwd=tmp_path, env={"GRADKIT_DEVICE": "cpu"})
    assert rc == 0, out
    assert "CUDA is not usable" in out and "GRADKIT_DEVICE=cpu" in out


def test_demo_quick(tmp_path):
    rc, out = run("demo", "--steps", "30", "--device", "cpu", cwd=tmp_path)
    assert rc == 0, out
    assert "loss" in out and "test accuracy" in out and "device: cpu" in out
    acc = float(out.split("test accuracy: ")[1].split("%")[0])
    assert 0 <= acc <= 100


def test_demo_steps_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("GRADKIT_DEMO_STEPS", "5")
    assert cli.main(["demo", "--device", "cpu"]) == 0
    assert "for 5 steps on cpu" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("gradkit") is None, reason="console script not installed")
def test_console_script():
    r = subprocess.run(["gradkit", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "gradkit" in r.stdout


# ----------------------------------------------- warm-up logic, with a fake CuPy
class _Param:
    def __init__(self, name, dtype=None):
        self.name, self.dtype = name, dtype


class _Kernel:
    """Stands in for cupy.ElementwiseKernel: records the dtypes it was called with."""

    def __init__(self, ins, outs, need_out=False, fail=None):
        self.in_params = tuple(_Param(*p) for p in ins)
        self.out_params = tuple(_Param(*p) for p in outs)
        self.need_out, self.fail, self.calls = need_out, fail, []

    def __call__(self, *args):
        if self.fail:
            raise RuntimeError(self.fail)
        if self.need_out and len(args) == len(self.in_params):
            raise TypeError("Cannot determine the output type")
        self.calls.append(tuple(str(a.dtype) for a in args))
        return args[0]


class _Device:
    def __init__(self, i):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def synchronize(self):
        pass


def _fake_cupy():
    cp = types.SimpleNamespace(dtype=np.dtype, ones=np.ones, full=np.full)
    cp.cuda = types.SimpleNamespace(Device=_Device)
    return cp


def test_warmup_kernels_calls_each_kernel_per_dtype():
    ks = {"tanh_backward": _Kernel([("y",), ("g",)], [("gx",)]),
          "mask_mul": _Kernel([("g",), ("m", np.dtype(bool))], [("gx",)]),
          "cast": _Kernel([("x",)], [("y",)], need_out=True),
          "broken": _Kernel([("x",)], [("y",)], fail="nvrtc: error")}
    log = []
    failures = cuda_tools.warmup_kernels(("float32", "float64"), cp=_fake_cupy(), kernels=ks,
                                         log=log.append)
    assert ks["tanh_backward"].calls == [("float32", "float32"), ("float64", "float64")]
    assert ks["mask_mul"].calls == [("float32", "bool"), ("float64", "bool")]
    assert ks["cast"].calls == [("float32", "float32"), ("float64", "float64")]
    assert [(n, d) for n, d, _ in failures] == [("broken", "float32"), ("broken", "float64")]
    assert any("FAILED" in line and "nvrtc" in line for line in log)


def test_describe_never_raises_without_cupy():
    info = cuda_tools.describe()
    assert set(info) >= {"cupy", "runtime", "driver", "devices", "cache_dir"}


def test_warmup_kernels_uses_the_backend_table_warmup_for_known_kernels():
    ks = {"adam_update": _Kernel([("g",), ("lr", np.dtype("float64"))], [("p",)],
                                 fail="must not be called with guessed arguments"),
          "extra": _Kernel([("x",)], [("y",)])}
    seen = []

    def table_warmup(dtypes, device):
        seen.append((dtypes, device))
        if dtypes == ("float64",):
            raise RuntimeError("nvrtc: boom")

    log = []
    failures = cuda_tools.warmup_kernels(("float32", "float64"), cp=_fake_cupy(), kernels=ks,
                                         known=("adam_update",), table_warmup=table_warmup,
                                         log=log.append)
    assert seen == [(("float32",), 0), (("float64",), 0)]
    assert ks["adam_update"].calls == []
    assert ks["extra"].calls == [("float32",), ("float64",)]
    assert failures == [("built-in kernels", "float64", "RuntimeError: nvrtc: boom")]


def test_kernel_table_and_names_agree():
    """Every kernel of the CuPy table is in KERNEL_NAMES, so `warmup` calls it
    the way gradkit does (needs no cupy: kernel_specs() is plain data)."""
    from gradkit.backends import cupy_backend
    table, names = set(cupy_backend.kernel_specs()), set(cupy_backend.KERNEL_NAMES)
    assert table == names, f"in kernel_specs() but not KERNEL_NAMES: {table - names}; " \
                           f"in KERNEL_NAMES but not kernel_specs(): {names - table}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_warm_workload_runs_on_any_device(device, dtype):
    """The model pass of `warmup` (run on cuda there) works on every device."""
    import gradkit as gk
    before = gk.get_default_dtype()
    cli._warm_workload(device, getattr(gk, dtype))
    assert gk.get_default_dtype() == before


def test_demo_on_missing_cuda_is_a_clear_error(monkeypatch, capsys):
    import gradkit as gk
    if gk.cuda.is_available():
        pytest.skip("CUDA is usable here")
    assert cli.main(["demo", "--device", "cuda", "--steps", "1"]) == 2
    assert "CUDA is not usable" in capsys.readouterr().err


def test_warmup_compiles_the_norm_raw_kernels(monkeypatch):
    # `gradkit warmup` compiles layer/group/instance norm's RawKernels (forward and
    # backward, each dtype) into CuPy's cache, like the elementwise table
    from gradkit.backends import norm_cupy
    compiled = []

    class RawKernel:
        def __init__(self, source, name):
            self.name = name
            assert "typedef" in source and name in source

        def compile(self):
            compiled.append(self.name)

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(RawKernel=RawKernel))
    norm_cupy._raw.cache_clear()
    try:
        norm_cupy.warm_raw_kernels(("float16", "float32"))
    finally:
        norm_cupy._raw.cache_clear()
    assert compiled == ["gk_norm_fwd_float16", "gk_norm_bwd_float16", "gk_norm_fwd_float32",
                        "gk_norm_bwd_float32"]
