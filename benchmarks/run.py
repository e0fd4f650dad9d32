"""Run the benchmark suite: every workload x implementation, each cell in its own
subprocess, one after another; print a table of medians and of ratios to the
hand-written NumPy version measured in the same run; optionally write JSON.

    python -m benchmarks [--device cpu|cuda] [--only W1,W3] [--impl gradkit,numpy]
                         [--repeat N] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(ROOT))

from benchmarks.cell import MARK  # noqa: E402
from benchmarks.frameworks import IMPLS  # noqa: E402
from benchmarks.workloads import select  # noqa: E402

# The parent shell may tune OpenBLAS for another machine; the cells get the defaults.
DROP_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Memory cells: glibc gives each block >= 64 KiB its own mapping, so RSS follows
# what is alive (see cell.measure_memory). Time cells keep glibc's defaults.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    return {**env, **(extra or {})}


def run_child(args, timeout, extra_env=None):
    """Run `python benchmarks/cell.py ARGS` -> its result dict (never raises)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "cell.py"), *args]
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=child_env(extra_env), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "message": f"no result within {timeout} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = " | ".join((p.stderr or p.stdout).strip().splitlines()[-3:])
    return {"status": "error", "message": f"exit code {p.returncode}: {tail}"}


def pool(prev, r, per_step):
    """One cell's result over several rounds (``--rounds``): the samples of every
    process pooled, the statistics recomputed over them, page faults averaged;
    memory from the first round. A round that did not finish ok decides."""
    if prev is None:
        return r
    if prev["status"] != "ok" or r["status"] != "ok":
        return prev if prev["status"] != "ok" else r
    samples = prev["samples_s"] + r["samples_s"]
    rounds = prev.get("rounds", 1) + 1
    med = statistics.median(samples)
    q1, _, q3 = statistics.quantiles(samples, n=4)
    out = {**r, **{k: prev[k] for k in ("peak_mb", "min_mb", "peak_over_min", "memory_method",
                                        "memory_error") if k in prev}}
    out.update(samples_s=samples, rounds=rounds, median_s=med, value=med * per_step,
               min_s=min(samples), p25_s=q1, p75_s=q3, iqr_over_median=(q3 - q1) / med,
               p75_over_p25=q3 / q1 if q1 > 0 else None,
               grad_err=max(prev.get("grad_err") or 0, r.get("grad_err") or 0))
    if prev.get("faults_per_step") is not None and r.get("faults_per_step") is not None:
        out["faults_per_step"] = (prev["faults_per_step"] * (rounds - 1)
                                  + r["faults_per_step"]) / rounds
    return out


# ---- the table ---------------------------------------------------------------------

def _num(v):
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def cell_text(r, base=None):
    """'12.3' or '12.3 (1.50x)' (ratio to `base`), or the reason there is no number."""
    if r["status"] != "ok":
        return {"FAILED": "FAILED", "skipped": "skipped", "timeout": "timeout"}.get(r["status"], "ERROR")
    v = r["value"]
    return _num(v) if base is None else f"{_num(v)} ({v / base:.2f}x)"


def spread_text(r):
    """'min / p75' of the samples, per step in the workload's unit."""
    if r["status"] != "ok" or "p75_s" not in r:
        return "n/a"
    k = r["value"] / r["median_s"]
    return f"{_num(r['min_s'] * k)} / {_num(r['p75_s'] * k)}"


def faults_text(r):
    """Minor page faults per timed step (fresh pages taken from the OS)."""
    if r["status"] != "ok" or r.get("faults_per_step") is None:
        return "n/a"
    return f"{r['faults_per_step']:.0f}"


def mem_text(r):
    if "peak_mb" in r:
        return f"{r['peak_mb']:.0f} ({r['peak_over_min']:.2f}x min)"
    return cell_text(r) if r["status"] != "ok" else "n/a"


def table(results, workloads, impls):
    cols = (["numpy"] if "numpy" in impls else []) + [i for i in impls if i != "numpy"]
    rows = []
    for w in workloads:
        cells = [results[(w.name, i)] for i in cols]
        base = results.get((w.name, "numpy"))
        base = base["value"] if base and base["status"] == "ok" else None
        rows.append([w.name, w.title, w.unit]
                    + [cell_text(r, None if i == "numpy" else base) for i, r in zip(cols, cells)])
        rows.append([f"{w.name} spread", "min / p75 of the samples", w.unit]
                    + [spread_text(r) for r in cells])
        rows.append([f"{w.name} faults", "minor page faults per step", "faults"]
                    + [faults_text(r) for r in cells])
        if w.min_bytes:
            rows.append([f"{w.name} mem", f"peak above baseline, min {w.min_bytes() / 2**20:.0f}",
                         "MiB"] + [mem_text(r) for r in cells])
    head = ["", "workload", "unit"] + cols
    widths = [max(len(row[c]) for row in [head] + rows) for c in range(len(head))]

    def line(row):
        return "  ".join(x.ljust(wd) if c < 3 else x.rjust(wd)
                         for c, (x, wd) in enumerate(zip(row, widths)))

    return "\n".join([line(head), "  ".join("-" * wd for wd in widths), *map(line, rows)])


def git_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def header(info, device, workloads, quick, repeat, rounds=1):
    if repeat or quick:
        samples = str(repeat or 3)
    else:
        counts = {}
        for w in workloads:
            counts.setdefault(w.repeat, []).append(w.name)
        common = max(counts, key=lambda n: len(counts[n]))
        samples = str(common) + "".join(f" ({', '.join(ns)}: {n})"
                                        for n, ns in counts.items() if n != common)
    blas = info.get("threadpools")
    if isinstance(blas, list):
        blas = "; ".join(
            " ".join(str(x) for x in (d["internal_api"], d.get("version")) if x)
            + f" ({d.get('prefix')}, {d['num_threads']} threads"
            + (f", {d['architecture']})" if d.get("architecture") else ")") for d in blas)
    torch_blas = f" ({info['torch_blas']})" if info.get("torch_blas") else ""
    vers = ", ".join(f"{k} {info.get(k)}" for k in ("python", "numpy", "torch", "autograd",
                                                      "gradkit", "cupy") if info.get(k))
    return "\n".join([
        f"gradkit benchmarks, device {device}"
        + (f" ({info['gpu']})" if info.get("gpu") else "")
        + f", CPU {info.get('cpu')} x{info.get('cpu_count')}, load avg {info.get('loadavg')}",
        f"{vers}{' (git ' + info['git'] + ')' if info.get('git') else ''}; "
        f"torch threads {info.get('torch_threads')}{torch_blas}",
        f"BLAS/OpenMP: {blas}",
        f"median of {samples} timed samples per cell"
        + (f" and round, {rounds} rounds (round-robin, samples pooled)" if rounds > 1 else "")
        + "; (x) = median / hand-written NumPy median, this run"])


def footnotes(results, workloads):
    out = [f"{w.name}: {n}" for w in workloads for n in w.notes]
    problems, seen = {}, set()  # (impl, what) -> workloads, so a missing library says it once
    for (wname, impl), r in results.items():
        if r["status"] != "ok":
            problems.setdefault((impl, f"{r['status']}: {r.get('message', '')}"), []).append(wname)
        if "memory_error" in r:
            problems.setdefault((impl, f"memory cell {r['memory_error']}"), []).append(wname)
        for n in r.get("notes", []):
            if (impl, n) not in seen:
                seen.add((impl, n))
                out.append(f"{impl}: {n}")
    out += [f"{', '.join(ws)} {impl}: {what}" for (impl, what), ws in problems.items()]
    return "\n".join("  - " + line for line in out)


# ---- main -----------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    ap.add_argument("--only", help="workloads, e.g. W1,W3 (W1 also selects W1-1)")
    ap.add_argument("--impl", default=",".join(IMPLS),
                    help=f"implementations, comma-separated (default {','.join(IMPLS)})")
    ap.add_argument("--repeat", type=int, help="timed samples per cell (default: per workload)")
    ap.add_argument("--quick", action="store_true", help="3 samples, short ones: a smoke test")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per cell (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every cell this many times, round-robin over all cells, and "
                         "pool their samples (default 1)")
    a = ap.parse_args(argv)
    if a.device != "cpu" and not a.device.startswith("cuda"):
        ap.error(f"--device must be cpu or cuda[:N], not {a.device!r}")
    impls = [s.strip() for s in a.impl.split(",") if s.strip()]
    if bad := [i for i in impls if i not in IMPLS]:
        ap.error(f"unknown --impl {', '.join(bad)}; choose from {', '.join(IMPLS)}")
    only = [w.strip() for w in (a.only or "").split(",") if w.strip()]
    scale = "SCALE" in [w.upper() for w in only]   # benchmarks/scale.py: only when asked
    if scale:
        only = [w for w in only if w.upper() != "SCALE"]
        if not only:
            from benchmarks import scale as scale_mod
            sizes = scale_mod.SIZES[:4] if a.quick else scale_mod.SIZES
            scale_mod.run(tuple(i for i in impls if i in scale_mod.IMPLS), sizes,
                          repeat=3 if a.quick else None, timeout=a.timeout,
                          rounds=1 if a.quick else 3)
            return
    workloads = select(",".join(only) if only else None)

    started = time.time()
    info = run_child(["--info", "--device", a.device], a.timeout)
    info.update(git=git_commit(),
                dropped_env={k: os.environ[k] for k in DROP_ENV if k in os.environ})
    common = ["--device", a.device, "--seed", str(a.seed)] + (["--quick"] if a.quick else []) \
        + (["--repeat", str(a.repeat)] if a.repeat else [])
    results = {}
    rounds = max(1, a.rounds)
    n, k = len(workloads) * len(impls) * rounds, 0
    for rnd in range(rounds):
        for w in workloads:
            for impl in impls:
                k += 1
                print(f"[{k}/{n}] {w.name} {impl} ...", end=" ", file=sys.stderr, flush=True)
                t0 = time.time()
                r = run_child([w.name, impl, *common], a.timeout)
                if w.min_bytes and r["status"] == "ok" and rnd == 0:
                    m = run_child([w.name, impl, "--memory", *common], a.timeout, MEMORY_ENV)
                    keys = ("peak_mb", "min_mb", "peak_over_min", "memory_method")
                    r.update({key: m[key] for key in keys if key in m})
                    if m["status"] != "ok":
                        r["memory_error"] = f"{m['status']}: {m.get('message')}"
                r.update(workload=w.name, impl=impl, device=a.device)
                results[(w.name, impl)] = pool(results.get((w.name, impl)), r, w.per_step)
                shown = f"{_num(r['value'])} {w.unit}" if r["status"] == "ok" else r["status"]
                print(f"{shown}  ({time.time() - t0:.1f} s)", file=sys.stderr, flush=True)

    for (wname, impl), r in results.items():  # ratios to hand-written NumPy, this run
        base = results.get((wname, "numpy"))
        if r["status"] == "ok" and base and base["status"] == "ok":
            r["ratio_to_numpy"] = r["value"] / base["value"]

    print()
    print(header(info, a.device, workloads, a.quick, a.repeat, rounds))
    print()
    print(table(results, workloads, impls))
    notes = footnotes(results, workloads)
    if notes:
        print("\nnotes:\n" + notes)
    print(f"\n{len(results)} cells in {time.time() - started:.0f} s; "
          f"load avg at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if scale:
        from benchmarks import scale as scale_mod
        scale_mod.run(tuple(i for i in impls if i in scale_mod.IMPLS),
                      scale_mod.SIZES[:4] if a.quick else scale_mod.SIZES,
                      repeat=3 if a.quick else None, timeout=a.timeout,
                          rounds=1 if a.quick else 3)
    if a.json:
        doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "args": vars(a), "env": info,
               "workloads": {w.name: {"title": w.title, "unit": w.unit, "notes": list(w.notes)}
                             for w in workloads},
               "cells": list(results.values())}
        Path(a.json).write_text(json.dumps(doc, indent=1))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
