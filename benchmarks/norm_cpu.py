"""The fused normalization primitive against the composition it replaced, on
the CPU: forward + backward of layer norm (W4's size), batch norm and group
norm, the two paths interleaved sample by sample (the machine is shared),
min and median of 15 samples of two steps each.

    python -m benchmarks.norm_cpu
"""
import time

import numpy as np

import gradkit as gk
import gradkit.nn.functional as F
from gradkit.nn import normalization as _nn_norm

CASES = {
    "layer_norm (8,128,256)": ((8, 128, 256), lambda x, w, b: F.layer_norm(x, (256,), w, b),
                               (256,)),
    "batch_norm (64,32,28,28)": ((64, 32, 28, 28), lambda x, w, b: F.batch_norm(
        x, None, None, w, b, training=True), (32,)),
    "group_norm (32,64,16,16) G=8": ((32, 64, 16, 16), lambda x, w, b: F.group_norm(x, 8, w, b),
                                     (64,)),
}


def main(reps=15):
    fused = _nn_norm._fusable
    for name, (shape, fn, P) in CASES.items():
        x = gk.randn(*shape, requires_grad=True)
        w, b = gk.randn(*P, requires_grad=True), gk.randn(*P, requires_grad=True)
        g = gk.randn(*shape)

        def step():
            x.grad = w.grad = b.grad = None
            fn(x, w, b).backward(g)
        res = {"fused": [], "composed": []}
        try:
            for _ in range(reps):
                for mode in res:
                    _nn_norm._fusable = fused if mode == "fused" else (lambda *a: False)
                    step()
                    t0 = time.perf_counter()
                    step()
                    step()
                    res[mode].append((time.perf_counter() - t0) / 2 * 1e3)
        finally:
            _nn_norm._fusable = fused
        f, c = np.array(res["fused"]), np.array(res["composed"])
        print(f"{name:30s} fused min {f.min():7.2f} median {np.median(f):7.2f} ms | composed "
              f"min {c.min():7.2f} median {np.median(c):7.2f} ms | {c.min() / f.min():.2f}x")


if __name__ == "__main__":
    main()
