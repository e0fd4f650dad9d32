"""One cell (workload x implementation), run in a process of its own by run.py:

    python benchmarks/cell.py W2 torch --device cpu [--repeat N] [--quick]
    python benchmarks/cell.py W3 torch --memory       # peak memory only
    python benchmarks/cell.py --info --device cpu     # versions, CPU, BLAS threads

A time cell builds the inputs and the implementation, checks the loss, the
gradients (and, for W2, the SGD update) against the hand-written NumPy version run
in float64 on the same inputs and, only if that passes, times it. A memory cell
(W3) measures the peak memory of one forward + backward. Either prints one line
`@@CELL <json>` on stdout.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
import traceback

from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    # run.py runs this file as a script, with the repo root LAST on sys.path: an
    # installed gradkit then wins over the source folder, which imports only when
    # installed (pyproject maps backends/ to gradkit.backends).
    _here, _root = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1]
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != _here] + [str(_root)]

from benchmarks.frameworks import Skip, build  # noqa: E402
from benchmarks.workloads import all_workloads  # noqa: E402

MARK = "@@CELL "
# float32 against a float64 reference, through 300-op chains and 1024-long dot
# products: |got - ref| <= RTOL * |ref| + ATOL * max|ref|, element by element
RTOL, ATOL = 2e-3, 1e-4


# ---- the float64 reference and the check ---------------------------------------

def reference(workload, params, consts):
    def f64(a):
        return a.astype(np.float64) if a.dtype.kind == "f" else a

    loss, g = workload.numpy_impl(np, {k: f64(v) for k, v in params.items()},
                                  {k: f64(v) for k, v in consts.items()})
    return float(loss), [g[k] for k in params]


def _compare(name, got, ref, problems, errs):
    if got.shape != ref.shape:
        problems.append(f"{name}: shape {got.shape}, expected {ref.shape}")
        return
    scale = float(np.abs(ref).max()) or 1e-30
    diff = np.abs(got - ref)
    errs[name] = float(diff.max()) / scale
    bad = ~(diff <= RTOL * np.abs(ref) + ATOL * scale)  # NaN counts as bad
    if bad.any():
        problems.append(f"{name}: {int(bad.sum())}/{bad.size} elements off, max |err| "
                        f"{errs[name]:.2e} x max|ref|")


def check(bench, workload, names, ref_loss, ref_grads):
    """-> (list of problems, {name: max |err| / max |ref|})."""
    loss, grads = bench.grads()
    bench.sync()
    problems, errs = [], {}
    loss = float(loss.item() if hasattr(loss, "item") else loss)
    if not abs(loss - ref_loss) <= RTOL * abs(ref_loss) + 1e-6:
        problems.append(f"loss {loss:.7g}, expected {ref_loss:.7g}")
    for name, g, r in zip(names, grads, ref_grads):
        if g is None:
            problems.append(f"{name}: no gradient")
        else:
            _compare(f"d{name}", bench.host(g), r, problems, errs)
    if workload.lr and not problems:  # one SGD step: p -> p - lr * grad
        before = [bench.host(p) for p in bench.params()]
        bench.update(grads)
        bench.sync()
        for name, p0, p, r in zip(names, before, bench.params(), ref_grads):
            _compare(f"{name} after SGD step (change)", bench.host(p) - p0,
                     -workload.lr * r, problems, {})
    return problems, errs


# ---- peak memory of one forward + backward -------------------------------------

def _proc_status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {key} in /proc/self/status")


def _reset_hwm():
    """Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_memory(bench):
    """-> (peak bytes above the baseline during one forward + backward, how).

    GPU: the allocator's own counters. CPU: RSS, in a process of its own that
    run.py starts with MALLOC_MMAP_THRESHOLD_=65536: glibc then gives every block
    >= 64 KiB its own mapping and returns it on free, so RSS follows what is alive
    (with glibc's default, arena caching made torch read 1.6x its live peak on W3).
    A warm-up pass (lazy initialisation is not the workload's memory), then
    baseline = VmRSS with VmHWM reset to it, one pass, peak = VmHWM - baseline.
    Where VmHWM cannot be reset: baseline = VmHWM after imports and inputs, and
    the first pass is the one measured."""
    def once():
        out = bench.grads()
        bench.sync()
        del out
        bench.clear()
        gc.collect()

    if bench.memory == "torch":
        import torch
        once()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        once()
        return torch.cuda.max_memory_allocated() - base, "torch.cuda.max_memory_allocated"
    if bench.memory == "cupy":
        # CuPy's pool has no peak counter: sample used_bytes() after every malloc
        # (the peak always follows one). Assumes the default pool is the allocator.
        import cupy
        pool = cupy.get_default_memory_pool()
        once()
        base = pool.used_bytes()
        peak = [base]

        def malloc(n):
            mem = pool.malloc(n)
            peak[0] = max(peak[0], pool.used_bytes())
            return mem

        cupy.cuda.set_allocator(malloc)
        try:
            once()
        finally:
            cupy.cuda.set_allocator(pool.malloc)
        return peak[0] - base, "cupy pool used_bytes, sampled at every malloc"
    how = f"VmHWM - VmRSS, MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_')}"
    if _reset_hwm():
        once()
        _reset_hwm()
        base = _proc_status_bytes("VmRSS")
    else:
        gc.collect()
        base, how = _proc_status_bytes("VmHWM"), how + ", first pass (VmHWM not resettable)"
    once()
    return _proc_status_bytes("VmHWM") - base, how


# ---- timing ---------------------------------------------------------------------

def time_steps(bench, repeat, min_sample_s):
    """Median-ready samples of seconds per step. Each step ends with a device sync;
    a sample loops the step `number` times, enough to last min_sample_s."""
    bench.step()  # warm-up
    t0 = time.perf_counter()
    bench.step()
    single = time.perf_counter() - t0
    number = max(1, math.ceil(min_sample_s / single)) if single > 0 else 1
    gc.collect()
    samples = []
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            bench.step()
        samples.append((time.perf_counter() - t0) / number)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    return samples, number, faults / (repeat * number)


# ---- one cell ---------------------------------------------------------------------

def run_cell(wname, impl, device, repeat=None, quick=False, seed=0, memory=False):
    """Check then time; or, with `memory`, measure the peak memory only."""
    workload = all_workloads()[wname]
    params, consts = workload.make_inputs(np.random.default_rng(seed))
    try:
        bench = build(impl, workload, device, params, consts)
    except Skip as e:
        return {"status": "skipped", "message": str(e)}
    if memory:
        peak, how = measure_memory(bench)
        res = {"status": "ok", "peak_mb": peak / 2**20, "memory_method": how}
        if workload.min_bytes:
            res.update(min_mb=workload.min_bytes() / 2**20, peak_over_min=peak / workload.min_bytes())
        return res

    res = {"unit": workload.unit, "notes": list(bench.notes)}
    problems, errs = check(bench, workload, list(params), *reference(workload, params, consts))
    res.update(grad_err=max(errs.values(), default=None), grad_errs=errs)
    if problems:
        return {**res, "status": "FAILED", "message": "; ".join(problems)}
    gc.collect()
    samples, number, faults = time_steps(bench, repeat or (3 if quick else workload.repeat),
                                         workload.min_sample_s / (5 if quick else 1))
    med = statistics.median(samples)
    q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else (med, med, med)
    return {**res, "status": "ok", "median_s": med, "value": med * workload.per_step,
            "min_s": min(samples), "p25_s": q1, "p75_s": q3, "iqr_over_median": (q3 - q1) / med,
            "p75_over_p25": q3 / q1 if q1 > 0 else None, "samples_s": samples,
            "steps_per_sample": number, "faults_per_step": faults}


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl)"
    return [{k: d.get(k) for k in ("user_api", "internal_api", "prefix", "version",
                                   "num_threads", "architecture", "threading_layer")}
            for d in threadpool_info()]


def _version(name):
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def info(device):
    """Versions, CPU, BLAS libraries and thread counts, as a cell sees them."""
    out = {"python": platform.python_version(), "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "numpy": np.__version__,
           "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "autograd": _version("autograd"), "gradkit": _version("gradkit"),
           "env": {k: os.environ[k] for k in sorted(os.environ)
                   if k.startswith(("OMP_", "OPENBLAS", "MKL_", "GRADKIT"))}}
    try:
        with open("/proc/cpuinfo") as f:
            out["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                              if line.startswith("model name"))
    except (OSError, StopIteration):
        out["cpu"] = platform.processor() or None
    try:
        import torch
        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        out["torch_blas"] = blas.group(1) if blas else None  # linked in: threadpoolctl misses it
        if device.startswith("cuda") and torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        out["torch"] = None
    if device.startswith("cuda"):
        try:
            import cupy
            out["cupy"] = cupy.__version__
            out["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        except Exception as e:  # noqa: BLE001
            out["cupy"] = f"unusable: {type(e).__name__}: {e}"
    try:
        import gradkit
        out["gradkit_path"] = str(Path(gradkit.__file__).parent)
    except Exception as e:  # noqa: BLE001
        out["gradkit_path"] = f"import error: {type(e).__name__}: {e}"
    out["threadpools"] = _threadpools()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload", nargs="?")
    ap.add_argument("impl", nargs="?")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--memory", action="store_true", help="measure peak memory only")
    ap.add_argument("--info", action="store_true")
    a = ap.parse_args(argv)
    if a.info:
        print(MARK + json.dumps(info(a.device)), flush=True)
        return
    res = {"workload": a.workload, "impl": a.impl, "device": a.device}
    try:
        res.update(run_cell(a.workload, a.impl, a.device, a.repeat, a.quick, a.seed,
                            a.memory))
    except Exception as e:  # noqa: BLE001 - report any failure as the cell's result
        res.update(status="error", message=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=-6))
    res["threadpools"] = _threadpools()
    print(MARK + json.dumps(res), flush=True)


if __name__ == "__main__":
    sys.exit(main())
