"""In-process A/B of backward buffer donation (``gradkit.ops.core.donating``): the
same gradkit step with the NumPy backend's ``donate_min`` at its value and at
infinity (never donate), interleaved round by round so the machine's noise hits
both alike; also checks that both sides give bit-identical gradients.

    python benchmarks/ab_donation.py [WORKLOAD] [ROUNDS]     # default W3 8

Prints min and median ms per step for each side and the ratio of the medians.
"""
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import frameworks  # noqa: E402
from benchmarks.workloads import select  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv else "W3"
    rounds = int(argv[1]) if len(argv) > 1 else 8
    # select() takes the base name (W4 also gives W4-e); match the variant here
    (w,) = [x for x in select(name.split("-")[0]) if x.name.upper() == name.upper()]
    params, consts = w.make_inputs(np.random.default_rng(0))
    bench = frameworks.build("gradkit", w, "cpu", params, consts)
    import gradkit as gk
    NB = type(gk.tensor([1.0])._B)
    on = NB.donate_min
    times = {True: [], False: []}
    grads = {}
    try:
        for _ in range(2):
            bench.step()
        for _ in range(rounds):
            for donate in (True, False):
                NB.donate_min = on if donate else float("inf")
                t0 = time.perf_counter()
                _, gs = bench.grads()
                times[donate].append(time.perf_counter() - t0)
                grads[donate] = [np.array(g.array) for g in gs]
    finally:
        NB.donate_min = on
    same = all(np.array_equal(a, b) for a, b in zip(grads[True], grads[False]))
    for donate in (True, False):
        t = times[donate]
        print(f"{w.name} donation {'on ' if donate else 'off'}: min {min(t) * 1e3:.1f} ms, "
              f"median {np.median(t) * 1e3:.1f} ms")
    print(f"on/off median ratio {np.median(times[True]) / np.median(times[False]):.3f}; "
          f"gradients bit-identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
