"""Where a training step's host time goes on the GPU path: run on the next GPU visit
to explain gradkit's W2 at 2.46x torch CUDA (second H200 run; 1.29x in the first).

    python -m benchmarks.gpu_host --device cuda [--workload W2] [--steps 30]

Prints, for gradkit on the device:
1. **host vs wall**: N steps issued back to back, timed when the last call returns
   (host) and after a device sync (wall). host ~ wall means the step is host-bound
   (or the host waits on the device somewhere: see 2); host << wall means the GPU
   kernels are the limit.
2. **hidden syncs** (CUDA only): one step under ``cupyx.allow_synchronize(False)``,
   which makes CuPy raise where a call waits for the device; the gradkit frames of
   the first such call are printed.
3. **profile**: cProfile over N steps, the functions with the most own time, and
   the calls per step of each gradkit/backends function (kernel launches and
   their Python wrappers).

``--device cpu`` runs the same on the NumPy backend (no sync check): the test suite
uses it, and it shows the Python overhead per step there.
"""
import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import frameworks  # noqa: E402
from benchmarks.workloads import select  # noqa: E402


def _issue(bench):
    """One step without the closing device sync (``Bench.step`` syncs)."""
    loss, grads = bench.grads()
    if bench.update is not None:
        bench.update(grads)


def host_vs_wall(bench, steps):
    """(host seconds per step, wall seconds per step) for ``steps`` steps issued
    back to back, the device synced once at the end."""
    bench.sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        _issue(bench)
    t1 = time.perf_counter()
    bench.sync()
    t2 = time.perf_counter()
    return (t1 - t0) / steps, (t2 - t0) / steps


def first_sync(bench):
    """The gradkit/backends frames of the first call in a step that waits for the
    device, or None when the step has none (CuPy's allow_synchronize)."""
    import cupyx
    bench.sync()
    try:
        with cupyx.allow_synchronize(False):
            _issue(bench)
    except cupyx.DeviceSynchronized:
        frames = traceback.extract_tb(sys.exc_info()[2])
        ours = [f for f in frames if os.sep + "gradkit" + os.sep in f.filename
                or os.sep + "backends" + os.sep in f.filename] or frames[-6:]
        return "".join(traceback.format_list(ours[-8:]))
    finally:
        bench.sync()
    return None


def profile(bench, steps, top=20):
    """(text of the top functions by own time, {function: calls per step} for
    gradkit and backends functions)."""
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        bench.step()
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    per_step = {}
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        if os.sep + "gradkit" + os.sep in fn or os.sep + "backends" + os.sep in fn:
            key = f"{os.path.relpath(fn, ROOT)}:{line}({name})"
            per_step[key] = (nc / steps, tt / steps * 1e6)
    return s.getvalue(), per_step


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_host", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workload", default="W2")
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args(argv)
    (w,) = select(a.workload)
    params, consts = w.make_inputs(np.random.default_rng(0))
    try:
        bench = frameworks.build("gradkit", w, a.device, params, consts)
    except frameworks.Skip as e:
        print(f"gpu_host: skipped ({e})")
        return 0
    for _ in range(3):
        bench.step()
    host, wall = host_vs_wall(bench, a.steps)
    print(f"{w.name} gradkit on {a.device}: host {host * 1e3:.3f} ms/step, wall "
          f"{wall * 1e3:.3f} ms/step (host/wall {host / wall:.2f}; near 1: host-bound or a "
          "hidden sync)")
    if a.device.startswith("cuda"):
        where = first_sync(bench)
        print("hidden syncs in a step: none" if where is None else
              "hidden sync in a step, first at:\n" + where)
    text, per_step = profile(bench, a.steps)
    print(text)
    print(f"gradkit/backends functions, calls and own microseconds per step ({a.steps} steps):")
    for key, (calls, us) in sorted(per_step.items(), key=lambda kv: -kv[1][1])[:30]:
        print(f"  {calls:7.1f} calls {us:9.1f} us  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
