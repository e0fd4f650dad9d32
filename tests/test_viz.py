"""gk.viz: the DOT text of a graph (parsed three ways: a small parser here, pydot
from the test extra when installed, Graphviz's own `dot -Tplain` when `dot` is on
PATH) and render()'s behaviour with and without `dot`."""
import re
import shutil
import subprocess

import pytest

import gradkit as gk
from gradkit import viz

HAVE_DOT = shutil.which("dot") is not None

_STMT = re.compile(r'^\s*(\w+)\s*(?:->\s*(\w+)\s*)?(?:\[(.*)\])?\s*;\s*$')
_ATTR = re.compile(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s\]]+)')


def parse_dot(text):
    """{node id: attrs}, [(tail, head)] from the flat DOT that gk.viz writes."""
    lines = text.strip().splitlines()
    assert lines[0].startswith("digraph") and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if re.match(r'^\s*\w+\s*=\s*[^\[]*;\s*$', line):     # graph attribute: rankdir=BT;
            continue
        m = _STMT.match(line)
        assert m, f"unparsed DOT line: {line!r}"
        a, b, attrs = m.groups()
        if a in ("node", "edge", "graph"):
            continue
        if b is not None:
            edges.append((a, b))
            continue
        d = {}
        for k, v in _ATTR.findall(attrs or ""):
            if v.startswith('"'):
                v = re.sub(r'\\(.)', lambda mm: "\n" if mm.group(1) == "n" else mm.group(1),
                           v[1:-1])
            d[k] = v
        nodes[a] = d
    for t, h in edges:
        assert t in nodes and h in nodes, f"edge {t}->{h} names an undeclared node"
    return nodes, edges


def founding(dtype=gk.float64):
    x1, x2, x3, x4 = (gk.tensor(v, dtype=dtype, requires_grad=True) for v in (2., 3., 4., 5.))
    u = x1 * x2
    v = x3 * x4
    y = u * v
    return {"x1": x1, "x2": x2, "x3": x3, "x4": x4, "u": u, "v": v, "y": y}


def by_label(nodes, shape):
    out = {}
    for k, d in nodes.items():
        if d.get("shape") == shape:
            out.setdefault(d["label"], []).append(k)
    return out


def check_founding_structure(nodes, edges):
    boxes = by_label(nodes, "box")
    ops = by_label(nodes, "ellipse")
    assert sorted(boxes) == ["u", "v", "x1", "x2", "x3", "x4", "y"]
    assert all(len(ids) == 1 for ids in boxes.values()), "one box per named tensor"
    assert list(ops) == ["mul"] and len(ops["mul"]) == 3
    assert len(edges) == 9
    b = {name: ids[0] for name, ids in boxes.items()}
    ins = {op: {t for t, h in edges if h == op} for op in ops["mul"]}
    outs = {op: {h for t, h in edges if t == op} for op in ops["mul"]}
    want = [({"x1", "x2"}, "u"), ({"x3", "x4"}, "v"), ({"u", "v"}, "y")]
    for srcs, dst in want:
        op = [o for o in ops["mul"] if ins[o] == {b[s] for s in srcs}]
        assert len(op) == 1, f"no single mul op fed by {srcs}"
        assert outs[op[0]] == {b[dst]}, f"mul of {srcs} must point to {dst}"
    # data flow: no arrow points into a leaf, none leaves y
    for leaf in ("x1", "x2", "x3", "x4"):
        assert all(h != b[leaf] for _, h in edges)
    assert all(t != b["y"] for t, _ in edges)


def test_founding_graph_boxes_ops_and_arrows():
    names = founding()
    nodes, edges = parse_dot(viz.to_dot(names["y"], names=names))
    check_founding_structure(nodes, edges)


def test_names_by_id_and_unnamed_labels():
    names = founding()
    text = viz.to_dot(names["y"], names={id(names["x1"]): "x1", id(names["y"]): "y"})
    nodes, edges = parse_dot(text)
    labels = sorted(d["label"] for d in nodes.values() if d["shape"] == "box")
    assert labels == ["() float64"] * 5 + ["x1", "y"]


def test_shape_and_dtype_labels():
    a = gk.ones(2, 3, requires_grad=True)
    b = gk.ones(3, 4, dtype=gk.float32, requires_grad=True)
    y = (a @ b).sum()
    nodes, edges = parse_dot(viz.to_dot(y))
    boxes = by_label(nodes, "box")
    assert set(boxes) == {"(2, 3) float32", "(3, 4) float32", "(2, 4) float32", "() float32"}
    assert set(by_label(nodes, "ellipse")) == {"mm", "sum"}   # a 2-D product records mm, as torch
    assert len(edges) == 5


def test_shared_input_is_one_box_with_two_arrows():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    nodes, edges = parse_dot(viz.to_dot(y, names={"x": x, "y": y}))
    b = {d["label"]: k for k, d in nodes.items()}
    assert [t for t, h in edges if h == b["mul"]] == [b["x"], b["x"]]


def test_show_saved_bytes_then_freed():
    names = founding()
    y = names["y"]
    text = viz.to_dot(y, names=names, show_saved=True)
    ops = [d["label"] for d in parse_dot(text)[0].values() if d["shape"] == "ellipse"]
    assert ops == ["mul\nsaved: 16 B"] * 3        # each mul saved its two float64 inputs
    assert "saved" not in viz.to_dot(y, names=names)
    y.backward()
    ops = [d["label"] for d in parse_dot(viz.to_dot(y, show_saved=True))[0].values()
           if d["shape"] == "ellipse"]
    assert ops == ["mul\nsaved: freed"] * 3
    # the graph's structure is still drawable after backward
    check_founding_structure(*parse_dot(viz.to_dot(y, names=names)))


def test_leaf_root_and_no_grad_graph():
    x = gk.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse_dot(viz.to_dot(x, names={"x": x}))
    assert [d["label"] for d in nodes.values()] == ["x"] and edges == []
    with gk.no_grad():
        z = x * 2
    nodes, edges = parse_dot(viz.to_dot(z))
    assert len(nodes) == 1 and edges == []


def test_constant_inputs_are_not_drawn_and_multi_output():
    x = gk.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    vals, idx = x.max(dim=1)
    y = (vals * 3.0).sum()
    nodes, edges = parse_dot(viz.to_dot(y, names={"x": x, "vals": vals}))
    boxes = by_label(nodes, "box")
    assert "x" in boxes and "vals" in boxes
    assert len(edges) == 2 * sum(1 for d in nodes.values() if d["shape"] == "ellipse")


def test_long_chain_does_not_recurse():
    x = gk.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    nodes, edges = parse_dot(viz.to_dot(y))
    assert len(nodes) == 1 + 3000 * 2 and len(edges) == 2 * 3000


def test_bad_arguments():
    names = founding()
    with pytest.raises(TypeError, match="names"):
        viz.to_dot(names["y"], names=["x1"])
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot([1, 2])
    with pytest.raises(ValueError, match=r"\.svg"):
        viz.render(names["y"], "graph.txt")


def test_labels_are_escaped():
    x = gk.tensor(1.0, requires_grad=True)
    y = x * 2
    nodes, _ = parse_dot(viz.to_dot(y, names={'a "quoted"\\name': x}))
    assert 'a "quoted"\\name' in [d["label"] for d in nodes.values()]


def test_render_without_dot_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    names = founding()
    with pytest.raises(RuntimeError) as e:
        viz.render(names["y"], tmp_path / "g.svg", names=names)
    msg = str(e.value)
    for hint in ("dot", "apt-get install graphviz", "brew install graphviz",
                 "conda install graphviz"):
        assert hint in msg
    assert not (tmp_path / "g.svg").exists()
    # .dot needs no Graphviz; write() falls back to it
    p = viz.render(names["y"], tmp_path / "g.dot", names=names)
    check_founding_structure(*parse_dot(open(p).read()))
    p = viz.write(names["y"], str(tmp_path / "w.svg"), names=names)
    assert p == str(tmp_path / "w.dot")
    check_founding_structure(*parse_dot(open(p).read()))


def test_render_without_dot_via_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        viz.render(founding()["y"], tmp_path / "g.png")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")    # pyparsing's, inside pydot
def test_pydot_parses_it():
    pydot = pytest.importorskip("pydot")
    names = founding()
    (g,) = pydot.graph_from_dot_data(viz.to_dot(names["y"], names=names, show_saved=True))
    labels = sorted(n.get_label().strip('"') for n in g.get_nodes()
                    if n.get_name() not in ("node", "edge", "graph"))
    assert labels.count("mul\\nsaved: 16 B") == 3
    assert {"x1", "x2", "x3", "x4", "u", "v", "y"} <= set(labels)
    assert len(g.get_edges()) == 9


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
def test_dot_parses_it_and_renders(tmp_path):
    names = founding()
    text = viz.to_dot(names["y"], names=names)
    plain = subprocess.run(["dot", "-Tplain"], input=text.encode(), capture_output=True,
                           check=True).stdout.decode()
    nodes = {}
    edges = []
    for line in plain.splitlines():
        f = line.split()
        if f[0] == "node":
            nodes[f[1]] = (f[6], f[8])            # label, shape
        elif f[0] == "edge":
            edges.append((f[1], f[2]))
    labelled = {k: {"label": lab, "shape": shape} for k, (lab, shape) in nodes.items()}
    check_founding_structure(labelled, edges)
    # y is drawn above the leaves (rankdir=BT): larger y coordinate in the plain output
    ys = {f.split()[6]: float(f.split()[3]) for f in plain.splitlines() if f.startswith("node")}
    assert ys["y"] > ys["u"] > ys["x1"]

    svg = viz.render(names["y"], tmp_path / "graph.svg", names=names)
    content = open(svg).read()
    assert "<svg" in content and ">x1<" in content and ">mul<" in content
    png = viz.render(names["y"], str(tmp_path / "graph.png"), names=names)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
