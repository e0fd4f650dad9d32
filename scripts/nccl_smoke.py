"""NCCL smoke test for a one-GPU machine (run by scripts/gpu_check.sh):

    python3 scripts/nccl_smoke.py          # a one-rank job (MPI singleton), no mpiexec needed
    python3 scripts/nccl_smoke.py --cpu    # the same script on CPU tensors and MPI (dry run)

1. ``init_process_group("nccl")``, then every collective on CUDA tensors of every NCCL dtype
   against the one-rank result computed on the CPU (all_reduce and broadcast leave the
   tensor as it is, all_gather copies it, reduce_scatter keeps the rank's block);
2. a DDP step on CUDA (W2's MLP, batch 256): the gradients equal the plain model's, and
   the step time with and without DDP (its overhead with one rank: the bucket copies);
3. ``examples/train_ddp.py --device cuda`` for 50 steps.
Exits non-zero on any mismatch. Only a GPU machine can run it; without CUDA it says so
and exits 0.
"""
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import gradkit as gk  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    dev = "cpu" if "--cpu" in argv else "cuda"    # --cpu: a dry run of this script on MPI
    backend = "mpi" if dev == "cpu" else "nccl"
    if dev == "cuda" and not gk.cuda.is_available():
        print(f"nccl_smoke: skipped, CUDA is not usable ({gk.cuda.why_unavailable()})")
        return 0
    import gradkit.distributed as dist
    import gradkit.nn as nn
    import gradkit.nn.functional as F
    from gradkit.nn.parallel import DistributedDataParallel as DDP
    if not dist.is_available() or (dev == "cuda" and not dist.is_nccl_available()):
        print("nccl_smoke: FAILED: mpi4py or NCCL missing "
              f"(mpi4py: {dist.is_available()}, nccl: {dist.is_nccl_available()})")
        return 1
    dist.init_process_group(backend, timeout=60)
    assert dist.get_world_size() == 1 and dist.get_backend() == backend
    bad = []
    for dt in ("float16", "float32", "float64", "int32", "int64", "uint8", "bool"):
        x = gk.tensor([[(4 * r + c) % 5 for c in range(4)] for r in range(3)]).to(dt)
        for op in (["SUM", "AVG", "MAX"] if dt.startswith("float") else ["SUM", "MAX", "MIN"]):
            t = x.to(dev)
            dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
            if not bool((t.cpu() == x).all()):
                bad.append(f"all_reduce {op} {dt}")
        t = x.to(dev)
        dist.broadcast(t, 0)
        out = [gk.zeros(3, 4, dtype=dt, device=dev)]
        dist.all_gather(out, x.to(dev))
        big = gk.zeros(3, 4, dtype=dt, device=dev)
        dist.all_gather_into_tensor(big, x.to(dev))
        rs = gk.zeros(3, 4, dtype=dt, device=dev)
        dist.reduce_scatter_tensor(rs, x.to(dev))
        for name, got in (("broadcast", t), ("all_gather", out[0]),
                          ("all_gather_into_tensor", big), ("reduce_scatter_tensor", rs)):
            if not bool((got.cpu() == x).all()):
                bad.append(f"{name} {dt}")
    dist.barrier()
    print(f"collectives on {dev}:", "ok" if not bad else f"MISMATCH {bad}")

    def mlp():
        gk.manual_seed(0)
        return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                             nn.Linear(1024, 10)).to(dev)
    x, y = gk.randn(256, 784, device=dev), gk.randint(0, 10, (256,), device=dev)
    sync = gk.cuda.synchronize if dev == "cuda" else (lambda: None)
    plain, ddp = mlp(), DDP(mlp())
    times = {"plain": [], "ddp": []}
    for i in range(30):
        for name, m in (("plain", plain), ("ddp", ddp)):
            m.zero_grad()
            sync()
            t0 = time.perf_counter()
            F.cross_entropy(m(x), y).backward()
            sync()
            if i >= 5:
                times[name].append(time.perf_counter() - t0)
    worst = max(float((p.grad - q.grad).abs().max().item())
                for p, q in zip(plain.parameters(), ddp.module.parameters()))
    tp, td = (1e3 * statistics.median(times[k]) for k in ("plain", "ddp"))
    print(f"DDP on {dev}, one rank: gradients match the plain model's to {worst:.3g}; "
          f"forward+backward {tp:.2f} ms plain, {td:.2f} ms DDP ({100 * (td / tp - 1):+.0f}%)")
    if worst > 1e-6:
        bad.append("DDP gradients")
    dist.destroy_process_group()

    import train_ddp
    acc = train_ddp.main(["--device", dev, "--steps", "50", "--no-plot"])
    print(f"examples/train_ddp.py --device {dev}: test accuracy {100 * acc:.1f}% after 50 steps")
    print("nccl_smoke:", "ok" if not bad else "FAILED")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
