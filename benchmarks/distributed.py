"""Data-parallel benchmarks (gradkit.distributed), on CPU through MPI:

    mpiexec -n 2 python -m benchmarks.distributed              # ~1 minute on 2 cores
    mpiexec -n 2 python -m benchmarks.distributed --quick      # smoke run
    mpiexec -n 2 python -m benchmarks.distributed --json dist.json

1. All-reduce (SUM) of 1, 16 and 100 MB of float32: ``gradkit.distributed.all_reduce``
   on a gradkit tensor against mpi4py's raw ``Comm.Allreduce(IN_PLACE, ...)`` on a
   NumPy array of the same size. The two alternate sample by sample (after a
   barrier) so that both see the same machine load; each sample is the slowest
   rank's time; the median is reported, and the ratio gradkit / raw (target <= 1.1).
2. A training step of the W2 MLP (784-1024-1024-10, batch per rank 256, float32,
   SGD): DDP against the same model without DDP on the same per-rank batch, every
   rank stepping at the same time (so both see the same CPU contention). Reported:
   the step times, DDP's overhead, the time the gradients' all-reduce takes on its
   own (``comm``), and how much of it DDP hides behind backward:
   ``overlap = (backward_plain + comm - backward_ddp) / comm``, clipped to [0, 1].

Timings are medians of interleaved samples; the machine this runs on is shared
and noisy, so compare ratios within one run.
"""
import os
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse   # noqa: E402
import json       # noqa: E402
import statistics  # noqa: E402
import time       # noqa: E402

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

import gradkit as gk  # noqa: E402
import gradkit.distributed as dist  # noqa: E402
import gradkit.nn as nn  # noqa: E402
import gradkit.nn.functional as F  # noqa: E402
from gradkit.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from gradkit.ops.core import const  # noqa: E402

WORLD = MPI.COMM_WORLD


def slowest(seconds):
    """The largest of every rank's time for one sample."""
    return WORLD.allreduce(seconds, op=MPI.MAX)


def timed(fn):
    WORLD.Barrier()
    t0 = time.perf_counter()
    fn()
    return slowest(time.perf_counter() - t0)


def bench_allreduce(sizes_mb, reps):
    rows = []
    for mb in sizes_mb:
        n = mb * 2 ** 20 // 4
        raw = np.ones(n, np.float32)
        t = gk.ones(n, dtype=gk.float32)
        g, r = [], []
        raw_call = lambda: WORLD.Allreduce(MPI.IN_PLACE, raw, MPI.SUM)  # noqa: E731
        gk_call = lambda: dist.all_reduce(t)  # noqa: E731
        raw_call()
        gk_call()                                    # warm up both paths
        for i in range(reps(mb)):
            if i % 2:
                r.append(timed(raw_call))
                g.append(timed(gk_call))
            else:
                g.append(timed(gk_call))
                r.append(timed(raw_call))
        tg, tr = statistics.median(g), statistics.median(r)
        rows.append({"MB": mb, "gradkit_ms": 1e3 * tg, "mpi4py_ms": 1e3 * tr, "ratio": tg / tr,
                     "samples": len(g)})
    return rows


def mlp(seed):
    gk.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10))


def bench_ddp(steps, batch):
    rank = dist.get_rank()
    gk.manual_seed(100 + rank)
    x = gk.randn(batch, 784)
    y = gk.randint(0, 10, (batch,))
    plain = mlp(0)
    ddp = DDP(mlp(0))
    opt_p = gk.optim.SGD(plain.parameters(), lr=0.01)
    opt_d = gk.optim.SGD(ddp.parameters(), lr=0.01)

    def step(model, opt, phases):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        phases.append((t3 - t0, t2 - t1))

    def comm_alone():
        for b in ddp._buckets:
            dist.all_reduce(const(b.B, b.flat))

    res = {"plain": [], "ddp": [], "comm": []}
    for _ in range(2):                               # warm up
        step(plain, opt_p, [])
        step(ddp, opt_d, [])
    for i in range(steps):
        order = ("plain", "ddp", "comm") if i % 2 else ("comm", "ddp", "plain")
        for what in order:
            WORLD.Barrier()
            if what == "comm":
                res["comm"].append(timed(comm_alone))
                continue
            ph = []
            w0, o0 = ddp.stats["comm_wait_s"], ddp.stats["comm_overlapped_s"]
            step(plain, opt_p, ph) if what == "plain" else step(ddp, opt_d, ph)
            res[what].append((slowest(ph[0][0]), slowest(ph[0][1])))
            if what == "ddp":
                w, o = ddp.stats["comm_wait_s"] - w0, ddp.stats["comm_overlapped_s"] - o0
                res.setdefault("wait", []).append(slowest(w))
                res.setdefault("in_flight", []).append(WORLD.allreduce(o / (o + w), op=MPI.MIN))
    med = statistics.median
    step_p, bwd_p = med(s for s, _ in res["plain"]), med(b for _, b in res["plain"])
    step_d, bwd_d = med(s for s, _ in res["ddp"]), med(b for _, b in res["ddp"])
    comm = med(res["comm"])
    wait = med(res["wait"])
    in_flight = med(res["in_flight"])
    overlap = min(1.0, max(0.0, (bwd_p + comm - bwd_d) / comm)) if comm > 0 else 0.0
    nbytes = sum(p.numel() * 4 for p in ddp.parameters())
    return {"params_MB": nbytes / 2 ** 20, "buckets": len(ddp._buckets), "batch_per_rank": batch,
            "step_plain_ms": 1e3 * step_p, "step_ddp_ms": 1e3 * step_d,
            "overhead": step_d / step_p - 1, "backward_plain_ms": 1e3 * bwd_p,
            "backward_ddp_ms": 1e3 * bwd_d, "comm_alone_ms": 1e3 * comm, "overlap": overlap,
            "wait_at_end_ms": 1e3 * wait, "in_flight_during_backward": in_flight,
            "samples": steps}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few samples (smoke run)")
    ap.add_argument("--json", help="write the results to this file (rank 0)")
    ap.add_argument("--sizes", default="1,16,100", help="all-reduce sizes in MB (default 1,16,100)")
    args = ap.parse_args(argv)
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = [int(s) for s in args.sizes.split(",")]

    def reps(mb):
        if args.quick:
            return 4
        return 40 if mb <= 1 else 16 if mb <= 16 else 8

    ar = bench_allreduce(sizes, reps)
    dd = bench_ddp(4 if args.quick else 12, 256)
    if rank == 0:
        print(f"gradkit.distributed on {world} ranks ({MPI.Get_library_version().splitlines()[0]}"
              f", mpi4py {__import__('mpi4py').__version__}); medians, slowest rank")
        print(f"{'all-reduce float32':>20} {'gradkit ms':>11} {'mpi4py ms':>10} {'ratio':>6}")
        for r in ar:
            print(f"{r['MB']:>17} MB {r['gradkit_ms']:>11.3f} {r['mpi4py_ms']:>10.3f} "
                  f"{r['ratio']:>6.2f}")
        print(f"DDP step, MLP 784-1024-1024-10 ({dd['params_MB']:.1f} MB of gradients in "
              f"{dd['buckets']} buckets), batch {dd['batch_per_rank']} per rank:")
        print(f"  step: plain {dd['step_plain_ms']:.1f} ms, DDP {dd['step_ddp_ms']:.1f} ms "
              f"(overhead {100 * dd['overhead']:+.0f}%)")
        print(f"  backward: plain {dd['backward_plain_ms']:.1f} ms, DDP "
              f"{dd['backward_ddp_ms']:.1f} ms; the all-reduce alone {dd['comm_alone_ms']:.1f} ms;"
              f" hidden behind backward: {100 * dd['overlap']:.0f}%")
        print(f"  buckets in flight while backward computed: "
              f"{100 * dd['in_flight_during_backward']:.0f}% of DDP's communication window; "
              f"then it waited {dd['wait_at_end_ms']:.1f} ms for them")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"world_size": world, "allreduce": ar, "ddp": dd}, f, indent=1)
            print(f"wrote {args.json}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
