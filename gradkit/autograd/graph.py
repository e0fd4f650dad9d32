"""The graph's data: the per-thread grad mode and the Node type.

A node is made by every op on a tensor that requires grad (with grad mode on):
the primitive (its VJP), the raw residuals it declared, version stamps for the
saved tensors, one edge per input, and a creation sequence number (creation
order is a topological order, which the engine's heap relies on).
"""
import itertools
import threading
import weakref

from .names import node_name


class _Mode(threading.local):
    """Per-thread flags, read where nodes are made. Class attributes are the
    defaults every new thread starts with."""
    enabled = True
    anomaly = False
    host_sync_guard = False


mode = _Mode()
_seq = itertools.count()
next_seq = _seq.__next__

#: marks a node whose saved values were freed by a backward without retain_graph
FREED = object()


class Node:
    """One recorded op.

    ``edges[i]`` is None for an input that needs no gradient, else a tuple
    ``(target, out_index, shape, dtype)`` where target is the input's producing
    Node or, for a leaf, the leaf Tensor itself.
    """
    __slots__ = ("p", "B", "params", "saved", "vers", "edges", "needs", "seq",
                 "hooks", "site", "nout", "__weakref__")

    def __init__(self, p, B, params, saved, vers, edges, needs):
        self.p = p
        self.B = B
        self.params = params
        self.saved = saved
        self.vers = vers
        self.edges = edges
        self.needs = needs
        self.seq = next_seq()
        self.hooks = None
        self.nout = 1
        if mode.anomaly:
            from .anomaly import creation_site
            self.site = creation_site()
        else:
            self.site = None

    def name(self):
        """torch's name for this node, e.g. ``MulBackward0``."""
        return node_name(self)

    def __repr__(self):
        return f"<{node_name(self)} object #{self.seq}>"

    # PyTorch-ish introspection
    @property
    def next_functions(self):
        """``((node or AccumulateGrad or None, output index), ...)`` per input, as torch."""
        out = []
        for e in self.edges:
            if e is None:
                out.append((None, 0))
                continue
            t = e[0]
            if t.__class__ is weakref.ref:   # engine._weaken_leaf_edges
                t = t()
            out.append((t if t.__class__ is Node or t is None else AccumulateGrad(t), e[1]))
        return tuple(out)


class AccumulateGrad:
    """The node torch shows for a leaf in ``next_functions``: ``.variable`` is the leaf."""
    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self):
        return ()

    def __repr__(self):
        return "<AccumulateGrad object>"
