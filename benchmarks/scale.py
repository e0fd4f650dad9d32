"""SCALE: does the per-op cost grow with the graph?

A chain of N elementwise ops on 16 float32 elements, ``h = tanh(h * w + b)``
repeated (3 ops: mul by a tensor, add a tensor, tanh), forward then backward
from ``.sum()``; reported as microseconds per op (forward + backward) for N =
10^2 ... 10^6, and the peak resident memory of the step above the process's
baseline (VmHWM - RSS before; Linux). Python's cyclic garbage collector runs
as the process leaves it (gradkit must keep the cost flat without the user
touching ``gc``); ``--gc off`` disables it around the step, for comparison.

Two references run the same chain. ``numpy``: hand-written reverse mode (the
forward keeps the tanh outputs in a list, the backward walks it); it keeps no
Python object the collector tracks, so its growth is what the machine's caches
charge for memory that a step writes in the forward and reads back in the
backward, whoever records it. ``tape``: a minimal tape of Python objects (one
3-slot node and one edge tuple per op, no checks) without a collection policy:
the caches' cost and the collector's (``--gc off`` shows the caches' part).

Each (implementation, N) is measured in its own process, so one size's heap
does not tilt the next:

    python -m benchmarks.scale                       # gradkit and torch when installed
    python -m benchmarks.scale --impl gradkit,torch,numpy,tape --sizes 1e3,1e4,1e5,1e6
    python -m benchmarks.scale --impl gradkit --sizes 1e3,1e5 --gc both
    python -m benchmarks --only SCALE                # the same, from the main runner

The target (issue 14): per-op cost at 10^5 and 10^6 ops within 1.1x of 10^3.
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_EL = 16
SIZES = (100, 1000, 10_000, 100_000, 1_000_000)
#: gradkit and torch; "numpy": hand-written reverse mode; "tape": a minimal tape of
#: Python objects (the references for what the machine's caches cost as graphs grow)
IMPLS = ("gradkit", "torch", "numpy", "tape")


def _rss_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _make(impl):
    import numpy as np
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(N_EL).astype(np.float32)
    w0 = (0.9 + 0.1 * rng.standard_normal(N_EL)).astype(np.float32)
    b0 = (0.1 * rng.standard_normal(N_EL)).astype(np.float32)
    if impl == "gradkit":
        sys.path.insert(0, REPO)
        import gradkit as gk
        x = gk.tensor(x0, requires_grad=True)
        w, b = gk.tensor(w0), gk.tensor(b0)
        tanh = gk.tanh
    elif impl == "torch":
        import torch
        torch.set_num_threads(1)
        x = torch.tensor(x0, requires_grad=True)
        w, b = torch.tensor(w0), torch.tensor(b0)
        tanh = torch.tanh
    elif impl == "numpy":
        return _hand_numpy(x0, w0, b0)
    elif impl == "tape":
        return _bare_tape(x0, w0, b0)
    else:
        raise SystemExit(f"scale: unknown implementation {impl!r} (one of {', '.join(IMPLS)})")

    def step(n):
        h = x
        for _ in range(n // 3):
            h = tanh(h * w + b)
        h.sum().backward()
        gx = x.grad
        x.grad = None
        return gx
    return step


def _hand_numpy(x, w, b):
    """Hand-written reverse mode, as a NumPy user would write it: the forward keeps
    each tanh output in a list (all that the backward needs), the backward walks
    the list from the end: per op the least memory any implementation can keep."""
    import numpy as np

    def step(n):
        h = x
        ys = []
        for _ in range(n // 3):
            h = np.tanh(h * w + b)
            ys.append(h)
        g = np.ones_like(h)
        for y in reversed(ys):
            g = g * (1 - y * y)   # tanh; the add passes g through
            g = g * w             # mul by w
        return g
    return step


class _TapeNode:
    __slots__ = ("vjp", "saved", "edge")


def _tanh_vjp(g, y):
    return g * (1 - y * y)


def _mul_vjp(g, w):
    return g * w


def _add_vjp(g, _):
    return g


def _bare_tape(x, w, b):
    """A minimal define-by-run tape of Python objects: per op one 3-slot node (its
    VJP, its saved array, one edge: the input's node, output index, shape and
    dtype), the backward walks the chain from the root. No checks, no
    generality, no collection policy: what a naive graph of Python objects costs
    as it grows (the collector rescans its nodes; with ``--gc off``, the caches only)."""
    import numpy as np
    shape, dtype = x.shape, x.dtype

    def record(vjp, saved, prev):
        n = _TapeNode()
        n.vjp = vjp
        n.saved = saved
        n.edge = (prev, 0, shape, dtype)
        return n

    def step(n):
        h, node = x, None
        for _ in range(n // 3):
            h = h * w
            node = record(_mul_vjp, w, node)
            h = h + b
            node = record(_add_vjp, None, node)
            h = np.tanh(h)
            node = record(_tanh_vjp, h, node)
        g = np.ones_like(h)
        while node is not None:
            g = node.vjp(g, node.saved)
            node = node.edge[0]
        return g
    return step


def cell(impl, n, gc_mode, repeat):
    """One (impl, N) in this process: per-op microseconds (min, median) and peak MB."""
    step = _make(impl)
    n = (n // 3) * 3
    step(min(n, 3000))   # warm-up (imports, caches)
    if gc_mode == "off":
        gc.disable()
    gc.collect()
    times = []
    # small graphs: repeat the step so that a sample lasts >= 0.05 s
    inner = max(1, int(30_000 // n))
    base = _rss_kb("VmRSS:")
    hwm_ok = _reset_hwm()
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            step(n)
        times.append((time.perf_counter() - t0) / inner / n * 1e6)
    peak = _rss_kb("VmHWM:")
    gc.enable()
    times.sort()
    return {"impl": impl, "n": n, "gc": gc_mode, "us_per_op_min": times[0],
            "us_per_op_median": times[len(times) // 2], "samples": times,
            "peak_mb": (peak - base) / 1024 if (hwm_ok and peak and base) else None}


def ab_policy(n, rounds):
    """gradkit's gc policy on and off, interleaved in one process (noise hits both
    alike): per side, the min and median per-op microseconds and the time spent in
    the collector per op (measured with gc.callbacks)."""
    from gradkit.autograd import gc_policy
    step = _make("gradkit")
    n = (n // 3) * 3
    step(min(n, 3000))
    inner = max(1, int(30_000 // n))
    spent = [0.0, 0.0]

    def cb(phase, info):
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]
    gc.callbacks.insert(0, cb)   # before gradkit's: its check counts as collector time
    res = {}
    for r in range(rounds):
        for side in (("on", "off") if r % 2 else ("off", "on")):
            gc_policy.set_gc_policy(side == "on")
            gc.collect()
            spent[0] = 0.0
            t0 = time.perf_counter()
            for _ in range(inner):
                step(n)
            dt = time.perf_counter() - t0
            res.setdefault(side, []).append((dt / inner / n * 1e6, spent[0] / inner / n * 1e6))
    gc.callbacks.remove(cb)
    out = {}
    for side, xs in res.items():
        xs.sort()
        out[side] = {"us_per_op_min": xs[0][0], "us_per_op_median": xs[len(xs) // 2][0],
                     "gc_us_per_op_median": sorted(x[1] for x in xs)[len(xs) // 2]}
    return {"n": n, **out}


def _available(impl):
    try:
        __import__("torch" if impl == "torch" else "numpy")
        return True
    except ImportError:
        return False


def run(impls=IMPLS, sizes=SIZES, gc_modes=("on",), repeat=None, out=print,
        timeout=900, rounds=3):
    """Every (impl, gc, N) cell runs in ``rounds`` separate processes, in
    round-robin order (all cells once, then all again...), so that a slow spell
    of a shared machine does not fall on one size only; a cell's min and median
    are over the samples of all its processes."""
    cells = []
    for impl in impls:
        if not _available(impl):
            out(f"SCALE {impl}: skipped ({impl} is not installed)")
            continue
        cells += [(impl, g, n) for g in gc_modes for n in sizes]
    merged = {}
    for _ in range(max(1, rounds)):
        for impl, g, n in cells:
            r = repeat or (5 if n <= 100_000 else 3)
            cmd = [sys.executable, "-m", "benchmarks.scale", "--cell", impl, str(n), g, str(r)]
            try:
                p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                   timeout=timeout)
            except subprocess.TimeoutExpired:
                out(f"SCALE {impl} n={n} gc={g}: timed out after {timeout} s")
                continue
            if p.returncode:
                out(f"SCALE {impl} n={n} gc={g}: FAILED\n{p.stderr[-2000:]}")
                continue
            row = json.loads(p.stdout.strip().splitlines()[-1])
            prev = merged.get((impl, g, n))
            if prev is None:
                merged[(impl, g, n)] = row
                continue
            prev["samples"] = sorted(prev["samples"] + row["samples"])
            if row["peak_mb"] is not None and (prev["peak_mb"] is None
                                               or row["peak_mb"] > prev["peak_mb"]):
                prev["peak_mb"] = row["peak_mb"]
    rows = []
    for key in cells:
        row = merged.get(key)
        if row is not None:
            xs = row["samples"]
            row["us_per_op_min"], row["us_per_op_median"] = xs[0], xs[len(xs) // 2]
            rows.append(row)
    _table(rows, out)
    return rows


def _table(rows, out):
    out("\nSCALE: tanh(h*w+b) chain on 16 float32 elements, forward + backward, us per op "
        "(min of samples; median) and peak RSS above baseline")
    out(f"{'impl':8} {'gc':3} {'ops':>9} {'us/op min':>10} {'median':>8} {'/ 10^3':>7} "
        f"{'peak MB':>8}")
    ref = {(r["impl"], r["gc"]): r["us_per_op_min"] for r in rows if r["n"] == 999}
    for r in rows:
        k = ref.get((r["impl"], r["gc"]))
        rel = f"{r['us_per_op_min'] / k:.2f}x" if k else "-"
        pk = f"{r['peak_mb']:.1f}" if r["peak_mb"] is not None else "-"
        out(f"{r['impl']:8} {r['gc']:3} {r['n']:>9} {r['us_per_op_min']:>10.2f} "
            f"{r['us_per_op_median']:>8.2f} {rel:>7} {pk:>8}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", default=",".join(IMPLS),
                    help=f"comma-separated, from {', '.join(IMPLS)} (default: all)")
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                    help="comma-separated op counts (1e5 style accepted)")
    ap.add_argument("--gc", default="on", choices=("on", "off", "both"))
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3,
                    help="processes per cell, run round-robin (default 3)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cell", nargs=4, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ab-policy", action="store_true",
                    help="gradkit only: its gc policy on vs off, interleaved in one process per size")
    a = ap.parse_args(argv)
    if a.ab_policy:
        sizes = [int(float(s)) for s in a.sizes.split(",") if s]
        for n in sizes:
            p = subprocess.run([sys.executable, "-c", "import sys, json; from benchmarks.scale "
                                f"import ab_policy; print(json.dumps(ab_policy({n}, "
                                f"{a.repeat or (8 if n <= 100_000 else 4)})))"],
                               cwd=REPO, capture_output=True, text=True)
            if p.returncode:
                print(p.stderr[-2000:])
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            for side in ("off", "on"):
                x = r[side]
                print(f"gradkit gc policy {side:3} ops {r['n']:>8}: {x['us_per_op_min']:.2f} us/op "
                      f"min, {x['us_per_op_median']:.2f} median; in the collector "
                      f"{x['gc_us_per_op_median']:.2f} us/op", flush=True)
        return
    if a.cell:
        impl, n, g, r = a.cell
        print(json.dumps(cell(impl, int(n), g, int(r))))
        return
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    modes = ("on", "off") if a.gc == "both" else (a.gc,)
    rows = run(tuple(a.impl.split(",")), sizes, modes, a.repeat, rounds=a.rounds)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
