"""Proof that a W2 training step makes no device-to-host synchronization: capture
forward + backward + SGD step into a CUDA graph (``cupy.cuda.Stream.begin_capture``
fails on any host copy or sync inside the capture), replay it, and compare the
replayed parameters with the same steps run eagerly.

    python -m benchmarks.cuda_graph_check [--json PATH]

Without a usable GPU it says why and exits 0. Allocation inside the capture goes
through CuPy's stream-ordered ``MemoryAsyncPool`` (cudaMallocAsync is capturable).
"""
import argparse
import json
import sys

import numpy as np


def _model(gk, seed):
    import gradkit.nn as nn
    gk.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10)).to("cuda")


def run(steps=5):
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

    def step(m, opt):
        opt.zero_grad(set_to_none=False)  # accumulate into the existing buffers
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    eager, eopt = make()
    captured, copt = make()
    step(captured, copt)  # first step: allocate the .grad buffers, compile kernels
    step(eager, eopt)
    stream = cp.cuda.Stream(non_blocking=True)
    result = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    try:
        with stream:
            stream.begin_capture()
            try:
                with gk.no_host_sync():
                    loss = step(captured, copt)
            finally:
                graph = stream.end_capture()
    except Exception as e:  # a host sync inside the capture lands here
        result.update(status="FAILED", why=f"capture failed: {type(e).__name__}: {e}")
        return result
    for _ in range(steps):
        graph.launch(stream)
        step(eager, eopt)
    stream.synchronize()
    gk.cuda.synchronize()
    worst = 0.0
    for (n, a), (_, b) in zip(captured.named_parameters(), eager.named_parameters()):
        worst = max(worst, float(abs(a.cpu().numpy() - b.cpu().numpy()).max()))
    result.update(status="ok" if worst < 1e-4 else "FAILED", replays=steps,
                  max_abs_diff_vs_eager=worst, last_loss=float(loss.item()))
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
