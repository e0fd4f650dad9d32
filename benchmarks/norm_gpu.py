"""Fused normalization kernels on CUDA: forward + backward time of the fused
primitive against the composition it replaced and against torch CUDA, in one
run, with the kernel outputs checked against the NumPy backend.

    python -m benchmarks.norm_gpu            # needs CuPy and a GPU

Prints one line per (layer, dtype): fused / composed / torch medians in
microseconds, and the max error of the fused output and gradients (vs the
composed path on the GPU, in float32)."""
import sys
import time

import numpy as np

import gradkit as gk
import gradkit.nn.functional as F
from gradkit.nn import normalization as _nn_norm

CASES = [
    ("layer_norm", (4096, 1024), lambda m, x, w, b: m.layer_norm(x, (1024,), w, b), (1024,)),
    ("batch_norm", (64, 32, 28, 28), lambda m, x, w, b: m.batch_norm(
        x, None, None, w, b, training=True), (32,)),
    ("group_norm", (32, 64, 32, 32), lambda m, x, w, b: m.group_norm(x, 8, w, b), (64,)),
    ("instance_norm", (16, 64, 32, 32), lambda m, x, w, b: m.instance_norm(x, None, None, w, b),
     (64,)),
]


def _time(fn, sync, reps=20):
    fn()
    sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e6


def main():
    import cupy as cp  # optional dependency (CUDA): imported lazily
    sync = cp.cuda.Device().synchronize
    try:
        import torch
        tdev = "cuda" if torch.cuda.is_available() else None
    except ImportError:
        torch = tdev = None
    r = np.random.default_rng(0)
    bad = 0
    for name, shape, fn, P in CASES:
        for dt in ("float32", "float16"):
            x = (r.standard_normal(shape) * 2 + 1).astype(dt)
            w, b = (r.standard_normal(P) + 1).astype(dt), r.standard_normal(P).astype(dt)
            g = r.standard_normal(shape).astype(dt)
            gt = [gk.tensor(a, device="cuda", requires_grad=True) for a in (x, w, b)]
            gg = gk.tensor(g, device="cuda")

            def step():
                for t in gt:
                    t.grad = None
                y = fn(F, *gt)
                y.backward(gg)
                return [y.detach()] + [t.grad for t in gt]
            fused_out = [o.cpu().numpy().astype(np.float64) for o in step()]
            t_fused = _time(step, sync)
            orig = _nn_norm._fusable
            _nn_norm._fusable = lambda *a: False
            try:
                comp_out = [o.cpu().numpy().astype(np.float64) for o in step()]
                t_comp = _time(step, sync)
            finally:
                _nn_norm._fusable = orig
            err = max(float(np.abs(a - c).max() / max(1.0, np.abs(c).max()))
                      for a, c in zip(fused_out, comp_out))
            tol = 2e-2 if dt == "float16" else 1e-4
            bad += err > tol
            t_torch = float("nan")
            if tdev:
                tt = [torch.tensor(a, device=tdev, requires_grad=True) for a in (x, w, b)]
                tg = torch.tensor(g, device=tdev)

                def tstep():
                    for t in tt:
                        t.grad = None
                    fn(torch.nn.functional, *tt).backward(tg)
                t_torch = _time(tstep, torch.cuda.synchronize)
            print(f"{name:14s} {dt:8s} {str(shape):18s} fused {t_fused:8.1f} us  composed "
                  f"{t_comp:8.1f} us  torch {t_torch:8.1f} us  err {err:.2e}"
                  f"{'  BAD' if err > tol else ''}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
