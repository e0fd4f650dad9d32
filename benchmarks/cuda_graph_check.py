"""Proof that a W2 training step makes no device-to-host synchronization: capture
forward + backward + SGD step into a CUDA graph (``cupy.cuda.Stream.begin_capture``
fails on any host copy or sync inside the capture), replay it, and compare the
replayed parameters with the same steps run eagerly.

    python -m benchmarks.cuda_graph_check [--json PATH]

Without a usable GPU it says why and exits 0. Allocation inside the capture goes
through CuPy's stream-ordered ``MemoryAsyncPool`` (cudaMallocAsync is capturable).

Rules a capture must follow (each broke the first version of this check):
- nothing allocated inside the capture may still be referenced after it: CuPy
  instantiates graphs without auto-free-on-launch, so a live allocation makes the
  second ``graph.launch()`` fail with cudaErrorInvalidValue. The loss is copied
  into a buffer allocated before the capture and the step's own tensors are
  dropped before ``end_capture``;
- parameters that require grad are read with ``.detach()`` first;
- several eager warm-up steps run on the capture stream first (kernel compiles,
  cuBLAS workspaces, the .grad buffers, the index-check flags).

CuPy refuses cuBLAS during capture; gradkit's GEMMs then call cuBLAS themselves
(backends/cublas_capture.py, docs/gpus.md "CUDA graphs").
"""
import argparse
import json
import sys
import traceback

import numpy as np


def _model(gk, seed):
    import gradkit.nn as nn
    gk.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10)).to("cuda")


def run(steps=5, warmup=3):
    import gradkit as gk
    if not gk.cuda.is_available():
        return {"status": "skipped", "why": gk.cuda.why_unavailable()}
    import cupy as cp
    import gradkit.nn.functional as F

    cp.cuda.set_allocator(cp.cuda.MemoryAsyncPool().malloc)
    rng = np.random.default_rng(0)
    x = gk.tensor(rng.standard_normal((256, 784)).astype(np.float32), device="cuda")
    y = gk.tensor(rng.integers(0, 10, 256), device="cuda")

    def make():
        m = _model(gk, 0)
        opt = gk.optim.SGD(m.parameters(), lr=0.01)
        return m, opt

    def step(m, opt, loss_buf):
        opt.zero_grad(set_to_none=False)  # accumulate into the existing buffers
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        with gk.no_grad():
            loss_buf.copy_(loss)          # into memory that outlives the capture
        del loss                          # nothing allocated in the step stays alive

    eager, eopt = make()
    captured, copt = make()
    eloss = gk.zeros((), device="cuda")
    closs = gk.zeros((), device="cuda")
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        for _ in range(warmup):           # kernel compiles, workspaces, .grad buffers
            step(captured, copt, closs)
            step(eager, eopt, eloss)
    stream.synchronize()
    from gradkit.backends.cublas_capture import find_libcublas  # after CuPy loaded cuBLAS
    result = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
              "warmup_steps": warmup, "cupy": cp.__version__,
              "libcublas": find_libcublas()}   # the capturable GEMM path's library
    try:
        with stream:
            stream.begin_capture()
            try:
                with gk.no_host_sync():
                    step(captured, copt, closs)
            finally:
                graph = stream.end_capture()
    except Exception as e:  # a host sync inside the capture lands here
        result.update(status="FAILED", why=f"capture failed: {type(e).__name__}: {e}",
                      trace=traceback.format_exc().splitlines()[-12:])
        return result
    try:
        for _ in range(steps):
            graph.launch(stream)
            with stream:
                step(eager, eopt, eloss)
        stream.synchronize()
    except Exception as e:
        result.update(status="FAILED", why=f"replay failed: {type(e).__name__}: {e}",
                      trace=traceback.format_exc().splitlines()[-12:])
        return result
    gk.cuda.synchronize()
    worst = 0.0
    for (n, a), (_, b) in zip(captured.named_parameters(), eager.named_parameters()):
        d = abs(a.detach().cpu().numpy() - b.detach().cpu().numpy()).max()
        worst = max(worst, float(d))
    ok = worst < 1e-4 and abs(closs.item() - eloss.item()) < 1e-4
    result.update(status="ok" if ok else "FAILED", replays=steps,
                  max_abs_diff_vs_eager=worst, last_loss=closs.item(),
                  last_loss_eager=eloss.item())
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    try:
        res = run()
    except Exception as e:  # report, don't hide
        res = {"status": "FAILED", "why": f"{type(e).__name__}: {e}"}
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if res["status"] in ("ok", "skipped") else 1


if __name__ == "__main__":
    sys.exit(main())
