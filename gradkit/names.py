"""torch-style names of graph nodes (``MulBackward0``), for ``grad_fn.name()``,
``repr(grad_fn)`` and the tensor repr. Most are the primitive's name in CamelCase
+ ``Backward0``; the table lists torch's own names where they differ, and a few
depend on the node's parameters as in torch (``SumBackward0`` for a full sum,
``SumBackward1`` over dims)."""

_FIXED = {
    "astype": "ToCopyBackward0", "to_device": "ToCopyBackward0", "copy": "CloneBackward0",
    "reshape": "ViewBackward0", "log1p": "Log1PBackward0", "square": "PowBackward0",
    "clamp": "ClampBackward1", "max_dim": "MaxBackward0", "min_dim": "MinBackward0",
    "linear": "AddmmBackward0", "index_put": "IndexPutBackward0", "sum_to": "SumBackward1",
    "split": "SplitWithSizesBackward0", "take_along_dim": "GatherBackward0",
}


def _camel(name):
    return "".join(w[:1].upper() + w[1:] for w in name.split("_"))


def node_name(node):
    """The torch name of a node: ``MulBackward0``; a custom Function's node is
    ``<ClassName>Backward``, as torch."""
    p = node.p
    n = p.name
    params = node.params or {}
    if "cls" in params and "ctx" in params:
        return n + "Backward"
    fixed = _FIXED.get(n)
    if fixed is not None:
        return fixed
    if n == "sum" or n == "prod":
        return _camel(n) + ("Backward0" if params.get("dim") is None else "Backward1")
    if n in ("amax", "amin"):
        if params.get("dim") is None:
            return ("Max" if n == "amax" else "Min") + "Backward1"
        return _camel(n) + "Backward0"
    if n == "pow":
        return "PowBackward1" if node.edges[1] is not None else "PowBackward0"
    if n == "matmul":
        nd = (params.get("an"), params.get("bn"))
        # (a 2-D product records the primitive mm: MmBackward0 by the rule below)
        return {(1, 1): "DotBackward0", (2, 1): "MvBackward0",
                (3, 3): "BmmBackward0"}.get(nd, "MatmulBackward0")
    if n == "getitem":
        if params.get("advanced"):
            return "IndexBackward0"
        idx = params.get("idx", ())
        return "SelectBackward0" if all(k.__class__ is int for k in idx) else "SliceBackward0"
    return _camel(n) + "Backward0"
