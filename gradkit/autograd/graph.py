"""The graph's data: the per-thread grad mode and the Node type.

A node is made by every op on a tensor that requires grad (with grad mode on):
the primitive (its VJP), the raw residuals it declared, version stamps for the
saved tensors, one edge per input, and a creation sequence number (creation
order is a topological order, which the engine's heap relies on).
"""
import itertools
import threading
import weakref


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
        return self.p.name

    def __repr__(self):
        return f"<{self.p.name}Backward #{self.seq}>"

    # PyTorch-ish introspection
    @property
    def next_functions(self):
        # a leaf edge may be a weakref (engine._weaken_leaf_edges): dereference it
        return tuple((None if e is None else (e[0]() if e[0].__class__ is weakref.ref else e[0]),
                      0 if e is None else e[1]) for e in self.edges)
