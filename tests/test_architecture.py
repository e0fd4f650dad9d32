"""The shape of the code (docs/ARCHITECTURE.md): imports only point down.

The import graph is read from the source (``ast``) over ``gradkit/`` and
``backends/`` (installed as ``gradkit.backends``), counting imports at every
depth, function bodies included, so a cycle cannot hide in a function-level
import. Importing ``a.b.c`` also runs the packages ``a.b`` (``__init__``), so
those edges count too (the top package ``gradkit`` excepted: everything is
under it). Run it as a script for the figures: ``python tests/test_architecture.py``.
"""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 600


def _modules():
    """{module name: file path} for gradkit/ and backends/ (as gradkit.backends)."""
    mods = {}
    for top, pkg in (("gradkit", "gradkit"), ("backends", "gradkit.backends")):
        base = os.path.join(ROOT, top)
        for dirpath, dirnames, files in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, base)
            parts = [pkg] + ([] if rel == "." else rel.split(os.sep))
            for f in files:
                if not f.endswith(".py"):
                    continue
                name = ".".join(parts if f == "__init__.py" else parts + [f[:-3]])
                mods[name] = os.path.join(dirpath, f)
    return mods


def _resolve(mod, is_pkg, node, mods):
    """Internal modules an import statement loads."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.split(".")[0] == "gradkit":
                out.append(a.name)
        return out
    if node.level:
        base = mod.split(".")
        if not is_pkg:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
        if target.split(".")[0] != "gradkit":
            return out
    for a in node.names:
        sub = f"{target}.{a.name}"
        out.append(sub if sub in mods else target)
    return out


def import_graph():
    """(edges, function_level): edges {module: {(imported module, line, lazy)}}
    and the list of function-level imports (module, line, target, comment?)."""
    mods = _modules()
    edges = {m: set() for m in mods}
    lazy = []
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            src = f.read()
        lines = src.splitlines()
        tree = ast.parse(src, path)
        is_pkg = path.endswith("__init__.py")

        def visit(node, in_func):
            for ch in ast.iter_child_nodes(node):
                if isinstance(ch, (ast.Import, ast.ImportFrom)):
                    targets = _resolve(mod, is_pkg, ch, mods)
                    for t in targets:
                        edges[mod].add((t, ch.lineno, in_func))
                    if in_func:
                        # a comment on the line, or on the import block's first line or above it
                        k = ch.lineno - 1
                        while k > 0 and lines[k - 1].strip().startswith(("import ", "from ")) \
                                and "#" not in lines[k]:
                            k -= 1
                        line = lines[k]
                        above = lines[k - 1].strip() if k > 0 else ""
                        names = [a.name for a in ch.names] if isinstance(ch, ast.Import) else \
                            [("." * ch.level) + (ch.module or "")]
                        lazy.append((mod, ch.lineno, names, bool(targets),
                                     "#" in line or above.startswith("#")))
                visit(ch, in_func or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda)))
        visit(tree, False)
    # importing a.b.c runs a.b's __init__ (the top package excepted)
    for mod in list(edges):
        for t, line, fl in list(edges[mod]):
            parts = t.split(".")
            for k in range(2, len(parts)):
                parent = ".".join(parts[:k])
                if parent in mods and not (mod + ".").startswith(parent + "."):
                    edges[mod].add((parent, line, fl))
    return mods, edges, lazy


def cycles(edges):
    """Strongly connected components with more than one module (or a self-loop),
    by Tarjan's algorithm, iteratively."""
    graph = {m: sorted({t for t, _, _ in es if t in edges}) for m, es in edges.items()}
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph[v]:
                    out.append(sorted(comp))
    return out


def _line_counts():
    mods = _modules()
    counts = {}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            counts[os.path.relpath(path, ROOT)] = sum(1 for _ in f)
    return counts


# ------------------------------------------------------------------ tests
def test_no_import_cycle():
    _, edges, _ = import_graph()
    found = cycles(edges)
    assert not found, "import cycles (module-level and function-level imports):\n" + "\n".join(
        " <-> ".join(c) for c in found)


# The two late imports of gradkit's own modules that are not about floors: the
# fallback loader of a bare source checkout, and the fake accelerator, which
# imports array_api_strict (a test dependency) at its top.
LAZY_OK = {("gradkit", "."), ("gradkit.backends", ".strict_backend")}


def test_no_function_level_import_of_gradkit():
    """The floors are one-way, so nothing needs a late import of gradkit itself;
    the only lazy imports left are optional dependencies (CuPy, mpi4py), each
    with a comment saying why."""
    _, _, lazy = import_graph()
    internal = [f"{m}:{line} {names}" for m, line, names, inner, _ in lazy
                if inner and not all((m, n) in LAZY_OK for n in names)]
    assert not internal, "function-level imports of gradkit modules:\n" + "\n".join(internal)
    silent = [f"{m}:{line} {names}" for m, line, names, inner, commented in lazy
              if not commented]
    assert not silent, "function-level imports without a comment saying why:\n" + "\n".join(silent)


def test_no_file_over_600_lines():
    big = {p: n for p, n in _line_counts().items() if n > MAX_LINES}
    assert not big, f"files over {MAX_LINES} lines: {big}"


def report():
    mods, edges, lazy = import_graph()
    cyc = cycles(edges)
    counts = _line_counts()
    path, n = max(counts.items(), key=lambda kv: kv[1])
    print(f"modules: {len(mods)}")
    print(f"import cycles (strongly connected groups): {len(cyc)}")
    for c in cyc:
        print("   ", len(c), "modules:", ", ".join(c))
    print(f"function-level imports: {len(lazy)} "
          f"({sum(1 for x in lazy if x[3])} of gradkit modules)")
    print(f"largest file: {path} ({n} lines); files over {MAX_LINES}: "
          f"{sum(1 for v in counts.values() if v > MAX_LINES)}")


if __name__ == "__main__":
    sys.exit(report())
