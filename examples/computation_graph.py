"""The founding example: y = u*v, u = x1*x2, v = x3*x4.

Builds the graph, runs reverse accumulation, prints every leaf's gradient beside
its analytic value, shows that a graph is one-shot (a second backward raises),
and that y.sum().backward() gives 2*x for y = x*x.

It also writes the graph's picture (examples/out/graph.svg with Graphviz's
`dot`, else graph.dot there and how to render it).

    python examples/computation_graph.py [--device cpu|cuda] [--graph PATH.svg]
"""
import argparse
import os
import sys

import gradkit as gk
from gradkit.argtypes import check_device, device_name, picture_path

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--graph", type=picture_path, default=None,
                    help="where to write the graph picture: .svg/.png/.pdf with Graphviz's dot "
                    "(else the .dot text is written), or .dot (default examples/out/graph.svg)")
    args = ap.parse_args(argv)
    dev = check_device(ap.prog, args.device)
    if args.graph is None:
        os.makedirs(OUT, exist_ok=True)
        args.graph = os.path.join(OUT, "graph.svg")

    x1, x2, x3, x4 = (gk.tensor(v, device=dev, requires_grad=True) for v in (2.0, 3.0, 4.0, 5.0))
    u = x1 * x2
    v = x3 * x4
    u.retain_grad()
    v.retain_grad()
    y = u * v
    print(f"y = u*v = (x1*x2)*(x3*x4) = {y.item():g}")
    y.backward()

    analytic = {"x1": x2 * x3 * x4, "x2": x1 * x3 * x4, "x3": x1 * x2 * x4, "x4": x1 * x2 * x3,
                "u": v, "v": u}
    got = {"x1": x1.grad, "x2": x2.grad, "x3": x3.grad, "x4": x4.grad, "u": u.grad, "v": v.grad}
    print(f"{'':4} {'dy/d· (backward)':>18} {'analytic':>22}")
    for name, g in got.items():
        formula = {"x1": "x2*x3*x4", "x2": "x1*x3*x4", "x3": "x1*x2*x4", "x4": "x1*x2*x3",
                   "u": "v", "v": "u"}[name]
        print(f"{name:4} {g.item():>18g} {formula:>12} = {analytic[name].detach().item():g}")

    names = {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "u": u, "v": v, "y": y}
    try:
        written = gk.viz.write(y, args.graph, names=names)
    except (OSError, RuntimeError) as e:
        print(f"{ap.prog}: could not write {args.graph}: {e}", file=sys.stderr)
        return 1
    if written.endswith(".dot") and not args.graph.endswith(".dot"):
        print(f"\nWrote {written} (Graphviz's `dot` is missing, so no picture); render it with "
              f"`dot -Tsvg {written} -o {written[:-4]}.svg` after you {gk.viz.install_hint()}")
    else:
        print(f"\nWrote the graph picture to {written}")

    print("\nThe graph is one-shot: its saved values were freed by backward().")
    try:
        y.backward()
    except RuntimeError as e:
        print(f"second y.backward() -> RuntimeError: {e}")

    print("\nNon-scalar outputs need a gradient; y.sum() supplies d(sum)/dy_i = 1:")
    x = gk.tensor([1.0, -2.0, 3.0], device=dev, requires_grad=True)
    y = x * x
    try:
        y.backward()
    except RuntimeError as e:
        print(f"y.backward() on shape {y.shape} -> RuntimeError: {e}")
    y.sum().backward()
    print(f"x = {x.detach().tolist()}, x.grad = {x.grad.tolist()}, 2*x = {(2 * x).detach().tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
