"""The gradkit command line (`python -m gradkit` or `gradkit`): info, demo, graph, warmup.

    gradkit info                 versions, CUDA runtime/driver, devices, why CUDA is off
    gradkit demo [--steps N]     train an MLP on the bundled handwritten digits
    gradkit graph [--out PATH]   the founding graph y = (x1*x2)*(x3*x4) as a picture
    gradkit warmup               compile gradkit's CuPy kernels into CUPY_CACHE_DIR
"""
import argparse
import importlib.metadata as _md
import os
import platform
import shutil
import sys
import time

import gradkit as gk
from . import __version__, nn, optim, viz
from .backends import cpu_memory, cuda_tools
from .demo import train_mlp, ascii_digit
from .viz import install_hint
from .argtypes import device_name, nonnegative_int, picture_path, positive_int


def _pkg_version(name):
    try:
        return _md.version(name)
    except _md.PackageNotFoundError:
        return None


def _bytes(n):
    return f"{n / 2**30:.1f} GiB"


# ----------------------------------------------------------------------- info
def cmd_info(args):
    rows = [("gradkit", f"{__version__} ({os.path.dirname(os.path.abspath(gk.__file__))})"),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("numpy", _pkg_version("numpy") or "not installed"),
            ("cpu allocator", cpu_memory.status())]
    info = cuda_tools.describe()
    if info["cupy"] is None:
        rows.append(("cupy", "not installed"))
    else:
        rows.append(("cupy", info["cupy"] + (f" -- {info['cupy_error']}" if info["cupy_error"]
                                             else "")))
    if info["cupy"] is not None and info["cupy_error"] is None:
        rows.append(("CUDA runtime", info["runtime"] or f"unknown ({info['runtime_error']})"))
        rows.append(("CUDA driver", info["driver"] or f"none ({info['driver_error']})"))
        if info["devices"]:
            for d in info["devices"]:
                if "error" in d:
                    rows.append((f"cuda:{d['index']}", f"error: {d['error']}"))
                else:
                    rows.append((f"cuda:{d['index']}",
                                 f"{d['name']}, {_bytes(d['memory_total'])} "
                                 f"({_bytes(d['memory_free'])} free), compute capability "
                                 f"{d['compute_capability']}"))
        else:
            rows.append(("devices", f"none ({info['devices_error'] or 'no GPU found'})"))
        rows.append(("kernel cache", info["cache_dir"] + " (CUPY_CACHE_DIR)"))
    else:
        rows.append(("CUDA runtime", "- (needs cupy)"))
        rows.append(("CUDA driver", "- (needs cupy)"))
        rows.append(("devices", "cpu only"))
    usable = gk.cuda.is_available()
    rows.append(("CUDA usable", "yes" if usable else f"no: {gk.cuda.why_unavailable()}"))
    rows.append(("default device", "cuda (pass device='cuda')" if usable else "cpu"))
    dot = shutil.which("dot")
    rows.append(("graphviz dot", dot if dot else f"not found (gk.viz.render needs it: "
                 f"{install_hint()})"))
    opt = [f"{m} {_pkg_version(m)}" if _pkg_version(m) else f"{m} (not installed)"
           for m in ("tqdm", "matplotlib")]
    rows.append(("examples' extras", ", ".join(opt)))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0


# ----------------------------------------------------------------------- demo
def _pick_device(name):
    if name != "auto":
        return name, ""
    if gk.cuda.is_available():
        return "cuda", ""
    return "cpu", f" (CUDA is not usable: {gk.cuda.why_unavailable()})"


def cmd_demo(args):
    device, why = _pick_device(args.device)
    if device.startswith("cuda") and not gk.cuda.is_available():
        print(f"gradkit demo: --device {device} was asked for, but CUDA is not usable: "
              f"{gk.cuda.why_unavailable()}", file=sys.stderr)
        return 2
    steps = args.steps
    print(f"gradkit {__version__} demo: a 64-128-10 MLP learns the UCI handwritten digits "
          "(8x8 images, 1438 for training, 359 held out)")
    print(f"device: {device}{why}")
    print(f"training: {steps} Adam steps, batch 64, cross-entropy")
    every = max(1, steps // 8)
    t_start = time.perf_counter()

    def on_step(i, loss):
        if (i + 1) % every == 0 or i == 0 or i + 1 == steps:
            print(f"  step {i + 1:>{len(str(steps))}}/{steps}  loss {loss:.4f}  "
                  f"{time.perf_counter() - t_start:5.1f}s", flush=True)

    r = train_mlp(device=device, steps=steps, seed=args.seed, on_step=on_step)
    losses = r["losses"]
    k = max(1, min(20, len(losses) // 4))
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    x_test, y_test = r["data"][2], r["data"][3]
    n_test = y_test.shape[0]
    acc = r["test_accuracy"]
    print(f"loss: {first:.3f} (mean of the first {k} steps) -> {last:.3f} (last {k})")
    print(f"test accuracy: {100 * acc:.1f}% ({round(acc * n_test)}/{n_test} held-out images); "
          f"train accuracy {100 * r['train_accuracy']:.1f}%")
    print(f"time: {r['seconds']:.2f} s for {steps} steps on {device} "
          f"({1000 * r['seconds'] / max(1, steps):.1f} ms per step)")

    # A few held-out images with the model's guesses.
    with gk.no_grad():
        show = x_test[:6]
        guess = r["model"](show).argmax(1).tolist()
    imgs = [ascii_digit(row) for row in show.cpu().tolist()]
    truth = y_test[:6].tolist()
    print("\nsome held-out images, the model's guess and the true label:")
    for line in range(8):
        print("   ".join(img[line] for img in imgs))
    print("   ".join(f"guess {g} ({'ok' if g == t else f'is {t}'})".ljust(16)
                     for g, t in zip(guess, truth)))
    print("\nnext: `python -m gradkit graph` draws a computation graph; the examples/ folder "
          "has the full MLP and a character-level transformer")
    return 0


# ---------------------------------------------------------------------- graph
def founding_graph(device="cpu"):
    """The founding example's tensors: y = u*v, u = x1*x2, v = x3*x4."""
    x1, x2, x3, x4 = (gk.tensor(v, dtype=gk.float64, device=device, requires_grad=True)
                      for v in (2.0, 3.0, 4.0, 5.0))
    u = x1 * x2
    v = x3 * x4
    y = u * v
    return {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "u": u, "v": v, "y": y}


def cmd_graph(args):
    names = founding_graph()
    y = names["y"]
    print("y = u*v, u = x1*x2, v = x3*x4 with x1..x4 = 2, 3, 4, 5: y = "
          f"{y.item():g}")
    try:
        written = viz.write(y, args.out, names=names, show_saved=args.show_saved)
    except (OSError, RuntimeError) as e:   # unwritable, or Graphviz failed
        print(f"gradkit graph: could not write {args.out}: {e}", file=sys.stderr)
        return 1
    if written.endswith(".dot") and not args.out.endswith(".dot"):
        print(f"wrote the DOT text to {written}: Graphviz's `dot` is not installed, so no "
              "picture was drawn")
        print(f"to draw it: {viz.install_hint()}; then run "
              f"`dot -T{_ext(args.out)} {written} -o {args.out}` (or `python -m gradkit graph` "
              "again)")
    else:
        print(f"wrote {written}")
    return 0


def _ext(path):
    e = os.path.splitext(path)[1].lstrip(".").lower()
    return e   # picture_path admits only svg, png, pdf and dot


# --------------------------------------------------------------------- warmup
def _warm_workload(device, dtype):
    """Run a tiny model's forward, backward and one step of each optimizer, so
    that the CuPy kernels the usual paths use get compiled too."""
    F = nn.functional
    saved_default = gk.get_default_dtype()
    gk.set_default_dtype(dtype)  # the layers make their parameters in the default dtype
    try:
        model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.LayerNorm(16), nn.Tanh(),
                              nn.Linear(16, 4)).to(device)
    finally:
        gk.set_default_dtype(saved_default)
    x = gk.randn(5, 8, device=device, dtype=dtype)
    target = gk.randint(0, 4, (5,), device=device)
    for opt_cls, kw in ((optim.SGD, {}), (optim.SGD, {"momentum": 0.9, "nesterov": True}),
                        (optim.Adam, {}), (optim.Adam, {"amsgrad": True}), (optim.AdamW, {})):
        opt = opt_cls(model.parameters(), lr=1e-3, **kw)
        out = model(x)
        loss = F.cross_entropy(out, target) + F.mse_loss(out.sigmoid(), out.relu().exp() * 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gk.cuda.synchronize()


def cmd_warmup(args):
    if not gk.cuda.is_available():
        print(f"gradkit warmup: CUDA is not usable here ({gk.cuda.why_unavailable()}); "
              "there are no GPU kernels to compile, nothing to do")
        return 0
    dtypes = ("float16", "float32", "float64")   # half too: it compiles on first use otherwise
    info = cuda_tools.describe()
    print(f"gradkit warmup: compiling gradkit's CuPy kernels for {', '.join(dtypes)} into "
          f"{info['cache_dir']}")
    t0 = time.perf_counter()
    failures = cuda_tools.warmup_kernels(dtypes)
    for dt in dtypes:
        try:
            _warm_workload("cuda", getattr(gk, dt))
            print(f"  {'model, 5 optimizer steps':<28} {dt:<8} ok")
        except Exception as e:
            failures.append(("model", dt, f"{type(e).__name__}: {e}"))
            print(f"  {'model, 5 optimizer steps':<28} {dt:<8} FAILED: "
                  f"{type(e).__name__}: {e}")
    print(f"done in {time.perf_counter() - t0:.1f} s"
          + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


# ----------------------------------------------------------------------- main
def build_parser():
    ap = argparse.ArgumentParser(prog="gradkit", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--version", action="version", version=f"gradkit {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="{info,demo,graph,warmup}")
    p = sub.add_parser("info", help="versions, CUDA runtime and driver, devices")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("demo", help="train an MLP on the bundled handwritten digits")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (cuda when usable, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--steps", type=positive_int,
                   default=os.environ.get("GRADKIT_DEMO_STEPS", "600"),
                   help="Adam steps, >= 1 (default 600, or $GRADKIT_DEMO_STEPS)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("graph", help="write the founding graph picture (y = u*v, u = x1*x2, "
                       "v = x3*x4)")
    p.add_argument("--out", type=picture_path, default="graph.svg",
                   help="graph.svg (default), .png, .pdf or .dot")
    p.add_argument("--show-saved", action="store_true", help="show the bytes each op saved")
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("warmup", help="compile the CuPy kernels into CUPY_CACHE_DIR "
                       "(exits 0 with a message when CUDA is not usable)")
    p.set_defaults(func=cmd_warmup)
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
