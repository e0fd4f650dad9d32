"""Pictures of the computation graph: Graphviz DOT text, rendered with ``dot``.

``to_dot(y)`` walks the graph that produced ``y`` (``y.grad_fn`` and each
node's ``edges``) and draws tensors as boxes and ops as ellipses, with arrows in
data-flow order (input tensor -> op -> output tensor). The graph stores only
nodes, not the intermediate tensors, so an op's output box is labelled with the
user's name for that tensor when one is given (matched through its
``grad_fn``), else with the shape and dtype that the consuming edge recorded.
The picture is laid out bottom-to-top: the leaves at the bottom, ``y`` on top.
Tensors that need no gradient (data, targets, constants) are not part of the
graph, so they are not drawn.

``render(y, "graph.svg")`` runs the ``dot`` program (Graphviz) on that text.
"""
import os
import shutil
import subprocess
from weakref import ref as _WeakRef

from .graph import FREED
from .tensor import Tensor, GradkitError


def _deref(target):
    """An edge's target; leaf edges may be weak references after a
    backward(create_graph=True) (see autograd.engine._weaken_leaf_edges)."""
    return target() if target.__class__ is _WeakRef else target


__all__ = ["to_dot", "render", "write"]

_INSTALL_HINT = (
    "install Graphviz, which provides it: `apt-get install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install graphviz`")

_FORMATS = ("svg", "png", "pdf")


def _quote(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dtype_str(dt):
    name = getattr(dt, "name", None)
    return name if isinstance(name, str) else str(dt)


def _shape_label(shape, dtype):
    return f"{tuple(shape)} {_dtype_str(dtype)}"


def _nbytes(v, seen):
    """Bytes held by a node's saved values (arrays, possibly inside tuples)."""
    if v is None or v.__class__ in (int, float, bool, str):
        return 0
    if isinstance(v, (tuple, list)):
        return sum(_nbytes(x, seen) for x in v)
    if id(v) in seen:
        return 0
    seen.add(id(v))
    n = getattr(v, "nbytes", 0)
    return n if isinstance(n, int) else 0


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _key(t):
    """Where a tensor sits in the graph: its leaf identity or (node, output)."""
    if t.grad_fn is None:
        return ("leaf", id(t))
    return ("node", id(t.grad_fn), t._oi)


def _name_table(names):
    """Accept {name: Tensor} or {id(tensor): name}; return {graph key: name}."""
    table = {}
    by_id = {}
    if not names:
        return table, by_id
    if not isinstance(names, dict):
        raise TypeError("gk.viz: names must be a dict {name: Tensor} (e.g. {'x1': x1}) "
                        f"or {{id(tensor): name}}, got {type(names).__name__}")
    for k, v in names.items():
        if isinstance(v, Tensor):
            table[_key(v)] = str(k)
        elif isinstance(k, int) and isinstance(v, str):
            by_id[k] = v
        else:
            raise TypeError("gk.viz: names must map a name to a Tensor ({'x1': x1}) or "
                            f"id(tensor) to a name; got the item {k!r}: {type(v).__name__}")
    return table, by_id


def to_dot(y, names=None, show_saved=False):
    """Graphviz DOT text of the graph that produced ``y``.

    ``names``: ``{"x1": x1, "u": u, ...}`` (or ``{id(x1): "x1", ...}``) labels
    those tensors' boxes; other boxes show their shape and dtype. With
    ``show_saved=True`` each op also shows the bytes it saved for backward
    (``freed`` once a backward without ``retain_graph`` released them).
    """
    if not isinstance(y, Tensor):
        raise TypeError(f"gk.viz.to_dot: expected a Tensor, got {type(y).__name__}")
    table, by_id = _name_table(names)
    if by_id:
        # ids name leaves directly; a non-leaf's id is only known for y itself
        for k, v in by_id.items():
            if k == id(y):
                table[_key(y)] = v
            else:
                table[("leaf", k)] = v

    lines = ["digraph gradkit {",
             "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=12];',
             '  edge [color="#555555"];']
    ids = {}

    def nid(key):
        i = ids.get(key)
        if i is None:
            i = ids[key] = f"n{len(ids)}"
        return i

    def tensor_box(key, shape, dtype, leaf, root):
        name = table.get(key)
        label = name if name is not None else _shape_label(shape, dtype)
        fill = "#cfe2f3" if leaf else ("#d9ead3" if root else "#ffffff")
        style = "filled,bold" if root else "filled"
        lines.append(f"  {nid(key)} [shape=box, style={_quote(style)}, fillcolor={_quote(fill)}, "
                     f"label={_quote(label)}];")

    root_key = _key(y)
    if y.grad_fn is None:
        tensor_box(root_key, y.shape, y.array.dtype, True, True)
        lines.append("}")
        return "\n".join(lines) + "\n"

    # Iterative walk (a 100,000-op chain must not recurse).
    drawn_boxes = set()
    seen_nodes = {id(y.grad_fn)}
    stack = [y.grad_fn]
    tensor_box(root_key, y.shape, y.array.dtype, False, True)
    drawn_boxes.add(root_key)
    order = []
    while stack:
        node = stack.pop()
        order.append(node)
        for e in node.edges:
            if e is None:
                continue
            target = _deref(e[0])
            if target is None:
                continue
            if target.__class__ is not Tensor and id(target) not in seen_nodes:
                seen_nodes.add(id(target))
                stack.append(target)

    # Sort by sequence number so the text is deterministic and reads in creation order.
    order.sort(key=lambda n: n.seq)
    for node in order:
        op_key = ("op", id(node))
        label = node.p.name if hasattr(node.p, "name") else type(node.p).__name__
        if show_saved:
            saved = node.saved
            if saved is FREED:
                label += "\nsaved: freed"
            else:
                label += "\nsaved: " + _human(_nbytes(saved, set()))
        lines.append(f"  {nid(op_key)} [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", "
                     f"label={_quote(label)}];")
        if root_key[0] == "node" and root_key[1] == id(node):
            lines.append(f"  {nid(op_key)} -> {nid(root_key)};")

    for node in order:
        op_key = ("op", id(node))
        for e in node.edges:
            if e is None:
                continue
            target, oi, shape, dtype = e
            target = _deref(target)
            if target is None:       # a weakly held leaf that is gone
                continue
            if target.__class__ is Tensor:
                key = ("leaf", id(target))
                if key not in drawn_boxes:
                    drawn_boxes.add(key)
                    tensor_box(key, target.shape, target.array.dtype, True, False)
            else:
                key = ("node", id(target), oi)
                if key not in drawn_boxes:
                    drawn_boxes.add(key)
                    tensor_box(key, shape, dtype, False, False)
                    lines.append(f"  {nid(('op', id(target)))} -> {nid(key)};")
            lines.append(f"  {nid(key)} -> {nid(op_key)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(y, path, names=None, show_saved=False, format=None):  # noqa: A002 (graphviz's word)
    """Write the picture of ``y``'s graph to ``path`` with Graphviz's ``dot``.

    The format comes from the extension (``.svg``, ``.png``, ``.pdf``) unless
    ``format`` is given; ``.dot`` writes the DOT text itself. Returns ``path``.
    Raises GradkitError saying how to install Graphviz when ``dot`` is missing.
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    text = to_dot(y, names=names, show_saved=show_saved)
    if fmt in ("dot", "gv"):
        with open(path, "w") as f:
            f.write(text)
        return path
    if fmt not in _FORMATS:
        raise ValueError(f"gk.viz.render: cannot tell the format of {path!r}; use a .svg, .png, "
                         ".pdf or .dot file name, or pass format='svg'")
    dot = shutil.which("dot")
    if dot is None:
        raise GradkitError(f"gk.viz.render: the Graphviz program `dot` was not found on PATH; "
                           f"{_INSTALL_HINT}; or save the text of gk.viz.to_dot(y) to a .dot file and "
                           "render it elsewhere")
    try:
        r = subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GradkitError(f"gk.viz.render: running {dot} failed: {e}") from None
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip()
        raise GradkitError(f"gk.viz.render: `dot -T{fmt}` failed (exit {r.returncode}) writing "
                           f"{path!r}: {err}")
    return path


def write(y, path, names=None, show_saved=False):
    """``render(y, path)`` when Graphviz's ``dot`` is installed; otherwise write
    the DOT text next to it (``graph.svg`` -> ``graph.dot``) instead of raising.
    Returns the path written; it ends in ``.dot`` when ``dot`` was missing (say
    ``install_hint()`` to the user then)."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in _FORMATS and fmt not in ("dot", "gv"):   # the same refusal with or without dot
        raise ValueError(f"gk.viz.write: cannot tell the format of {path!r}; use a .svg, .png, "
                         ".pdf or .dot file name")
    if shutil.which("dot") is None:
        path = os.path.splitext(path)[0] + ".dot"
        with open(path, "w") as f:
            f.write(to_dot(y, names=names, show_saved=show_saved))
        return path
    return render(y, path, names=names, show_saved=show_saved)


def install_hint():
    """How to get Graphviz's ``dot`` (used by ``python -m gradkit graph``)."""
    return _INSTALL_HINT
