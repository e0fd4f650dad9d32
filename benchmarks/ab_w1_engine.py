"""In-process A/B of W1 for an engine change: ``run_backward``/``_run`` of the working
tree against the same two functions at an older commit (default bd5ad64: before the
per-leaf accumulation lock and the failed-backward record), in one process,
interleaved round by round, so the machine's noise hits both alike.

    python benchmarks/ab_w1_engine.py [COMMIT] [ROUNDS]

Prints, per workload and side, the min, 10th percentile and median of the rounds
(each round: 20 forward+backward steps), in microseconds per op.
"""
import os
import re
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import gradkit.autograd.engine as eng  # noqa: E402
from benchmarks import frameworks  # noqa: E402
from benchmarks.workloads.w1_overhead import WORKLOADS  # noqa: E402


def _old_functions(commit):
    src = subprocess.run(["git", "-C", REPO, "show", f"{commit}:gradkit/autograd/engine.py"],
                         capture_output=True, text=True, check=True).stdout
    ns = dict(eng.__dict__)   # today's helpers (_accumulate ...), the old two functions
    for name in ("run_backward", "_run"):
        m = re.search(rf"^def {name}\(.*?(?=^def |\Z)", src, re.S | re.M)
        exec(m.group(0), ns)
    return ns["run_backward"]


def main(commit="bd5ad64", rounds=40):
    sides = {"base": _old_functions(commit), "now": eng.run_backward}
    res = {}
    for wl in WORKLOADS:
        p, c = wl.make_inputs(np.random.default_rng(0))
        bench = frameworks.build("gradkit", wl, "cpu", p, c)
        for fn in sides.values():
            eng.run_backward = fn
            bench.grads()
        for r in range(rounds):
            for side in (("base", "now") if r % 2 else ("now", "base")):
                eng.run_backward = sides[side]
                t0 = time.perf_counter()
                for _ in range(20):
                    bench.grads()
                res.setdefault((wl.name, side), []).append(
                    (time.perf_counter() - t0) / 20 * 1e6 / 300)
    eng.run_backward = sides["now"]
    for (w, side), xs in sorted(res.items()):
        xs.sort()
        print(f"{w:5} {side:4} ({commit if side == 'base' else 'working tree'}): min "
              f"{xs[0]:.3f}, 10th pct {xs[len(xs) // 10]:.3f}, median {xs[len(xs) // 2]:.3f} us/op")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["bd5ad64"]), *([int(sys.argv[2])] if len(sys.argv) > 2 else []))
