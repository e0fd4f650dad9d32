"""The graph's data: the per-thread modes and the Node type (the floor every
other part of gradkit stands on; it imports nothing from gradkit).

A node is made by every op on a tensor that requires grad (with grad mode on):
the primitive (its VJP), the raw residuals it declared, version stamps for the
saved tensors, one edge per input, and a creation sequence number (creation
order is a topological order, which the engine's heap relies on).
"""
import functools
import itertools
import os
import sys
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

class FlagContext:
    """Context manager and decorator that sets one per-thread flag of ``mode``
    (named by the subclass's ``flag``) and restores it on exit: grad mode,
    anomaly mode and the host-sync guard are all this one class."""
    flag = None

    def __init__(self, value):
        self.value = value
        self._prev = []

    def __enter__(self):
        self._prev.append(getattr(mode, self.flag))
        setattr(mode, self.flag, self.value)
        return self

    def __exit__(self, *exc):
        setattr(mode, self.flag, self._prev.pop())
        return False

    def __call__(self, fn):
        flag, value = self.flag, self.value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = getattr(mode, flag)
            setattr(mode, flag, value)
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(mode, flag, prev)
        return wrapper


_PKG = os.path.dirname(os.path.abspath(__file__))


def creation_site():
    """'file:line in function' of the innermost frame outside gradkit."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


class Node:
    """One recorded op.

    ``edges[i]`` is None for an input that needs no gradient, else a tuple
    ``(target, out_index, shape, dtype)`` where target is the input's producing
    Node or, for a leaf, the leaf Tensor itself.
    """
    __slots__ = ("p", "B", "params", "saved", "vers", "edges", "needs", "seq",
                 "hooks", "site", "nout", "__weakref__")

    def __init__(self, p, B, params, saved, vers, edges, needs, nout=1):
        self.p = p
        self.B = B
        self.params = params
        self.saved = saved
        self.vers = vers
        self.edges = edges
        self.needs = needs
        self.seq = next_seq()
        self.hooks = None
        self.nout = nout
        self.site = creation_site() if mode.anomaly else None

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
