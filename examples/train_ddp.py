"""Data-parallel training of the digits MLP with gk.nn.parallel.DistributedDataParallel.

Every process (rank) holds a replica of the model and trains on its own share of
each global batch (a DistributedSampler deals the indices); DDP averages the
gradients over the ranks during backward, so the replicas stay identical and
the run equals training on the whole global batch in one process.

    mpiexec -n 2 python examples/train_ddp.py                         # CPU, MPI
    python -m gradkit.distributed.run -n 4 examples/train_ddp.py      # the same, via gradkit
    mpiexec -n 2 python examples/train_ddp.py --device cuda           # one GPU per rank, NCCL

Rank 0 prints the progress, the held-out accuracy, and checks at the end that
every rank holds the same weights. Needs ``pip install 'gradkit[mpi]'``.
"""
import os
# Several processes share the machine's cores: one BLAS thread each (set the
# variables yourself to override).
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import time

import gradkit as gk
import gradkit.distributed as dist
import gradkit.nn.functional as F
from gradkit.demo import load_digits
from gradkit.nn.parallel import DistributedDataParallel as DDP
from gradkit.utils.data.distributed import DistributedSampler

from _common import add_common_args, sync
from train_mlp import MLP, evaluate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, steps=600, lr=2e-3)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64,
                    help="global batch (split over the ranks; default 64)")
    args = ap.parse_args(argv)

    cuda = args.device.startswith("cuda")
    if cuda:
        # one GPU per rank: the rank's index on its machine, modulo the GPUs there
        local = dist.get_node_local_rank(fallback_rank=0) % gk.cuda.device_count()
        dev = f"cuda:{local}"
        dist.init_process_group("nccl", device_id=local)
    else:
        dev = "cpu"
        dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    say = print if rank == 0 else (lambda *a, **k: None)
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the number of "
                         f"processes ({world})")
    per_rank = args.batch_size // world

    x_train, y_train, x_test, y_test = load_digits(dev)
    n = x_train.shape[0]
    say(f"{world} processes; each trains on {per_rank} of every {args.batch_size} images "
        f"({n} training images), device {dev}")

    gk.manual_seed(args.seed + rank)        # different initial weights on purpose: DDP
    model = DDP(MLP(hidden=args.hidden).to(dev))   # starts every rank from rank 0's
    opt = gk.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sampler = DistributedSampler(range(n), seed=args.seed, drop_last=True)

    step, epoch, losses = 0, 0, []
    t0 = time.perf_counter()
    while step < args.steps:
        sampler.set_epoch(epoch)
        mine = list(sampler)
        for i in range(0, len(mine) - per_rank + 1, per_rank):
            idx = gk.tensor(mine[i:i + per_rank], device=dev)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()                     # gradients averaged over the ranks here
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % max(1, args.steps // 10) == 0 or step == args.steps:
                say(f"step {step}/{args.steps}  epoch {epoch}  loss {losses[-1]:.4f}")
            if step == args.steps:
                break
        epoch += 1
    sync(dev)
    seconds = time.perf_counter() - t0

    # every replica must hold the same weights: compare with rank 0's
    worst = gk.zeros(1, dtype=gk.float64, device=dev)
    for p in model.parameters():
        ref = p.detach().clone()
        dist.broadcast(ref, src=0)
        worst = gk.maximum(worst, (p.detach() - ref).abs().max().double().reshape(1))
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)

    test_loss, test_acc = evaluate(model.module, x_test, y_test)
    say(f"trained {step} steps in {seconds:.1f} s ({1000 * seconds / max(step, 1):.2f} ms per "
        f"step); held-out loss {test_loss:.4f}")
    say(f"test accuracy {100 * test_acc:.1f}% ({round(test_acc * y_test.shape[0])}/"
        f"{y_test.shape[0]} held-out images)")
    say(f"replicas agree: {'yes' if worst.item() == 0.0 else 'NO'} "
        f"(largest difference from rank 0: {worst.item():.3g})")
    dist.destroy_process_group()
    return test_acc


if __name__ == "__main__":
    main()
