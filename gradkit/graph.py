"""The graph's data: the per-thread modes and the Node type (the floor every
other part of gradkit stands on; below it only ``errors`` and ``names``).

A node is made by every op on a tensor that requires grad (with grad mode on):
the primitive (its VJP), the raw residuals it declared, version stamps for the
saved tensors, one edge per input, and a creation sequence number (creation
order is a topological order, which the engine's heap relies on).
"""
import functools
import inspect
import itertools
import os
import sys
import threading
import weakref

from .errors import HostSyncError
from .names import node_name


#: ``QUIET[0]`` is True while every thread runs with the default modes (grad
#: on, anomaly off, no host-sync guard). A thread-local read costs ~10x a list
#: item, so the recording fast paths test ``QUIET[0]`` first and read ``mode``
#: only when some thread changed a flag (``_Mode.__setattr__`` keeps it true).
QUIET = [True]
_not_quiet = set()   # ids of the threads whose flags are not the defaults
_quiet_lock = threading.Lock()


class _Mode(threading.local):
    """Per-thread flags, read where nodes are made. Class attributes are the
    defaults every new thread starts with. Every write goes through
    ``__setattr__``, which keeps ``QUIET`` up to date."""
    enabled = True
    anomaly = False
    host_sync_guard = False

    def __setattr__(self, name, value):
        threading.local.__setattr__(self, name, value)
        quiet = self.enabled is True and self.anomaly is False and self.host_sync_guard is False
        tid = threading.get_ident()
        with _quiet_lock:
            if quiet:
                _not_quiet.discard(tid)
            else:
                _not_quiet.add(tid)
            QUIET[0] = not _not_quiet


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
        if inspect.isgeneratorfunction(fn):
            return _generator_wrapper(fn, flag, value)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = getattr(mode, flag)
            setattr(mode, flag, value)
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(mode, flag, prev)
        return wrapper


class _Set:
    def __init__(self, flag, value):
        self.flag, self.value = flag, value

    def __enter__(self):
        self.prev = getattr(mode, self.flag)
        setattr(mode, self.flag, self.value)

    def __exit__(self, *exc):
        setattr(mode, self.flag, self.prev)


def _generator_wrapper(fn, flag, value):
    """A generator function decorated with a flag: the flag is set inside the
    generator, around each resumption (as torch's decorators), and the caller's
    value holds between them."""
    @functools.wraps(fn)
    def gen_wrapper(*args, **kwargs):
        gen = fn(*args, **kwargs)
        try:
            with _Set(flag, value):
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with _Set(flag, value):
                        gen.close()
                    raise
                except BaseException as e:
                    with _Set(flag, value):
                        response = gen.throw(e)
                else:
                    with _Set(flag, value):
                        response = gen.send(request)
        except StopIteration as e:
            return e.value
    return gen_wrapper


_PKG = os.path.dirname(os.path.abspath(__file__))


def creation_site():
    """'file:line in function' of the innermost frame outside gradkit."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


def host_sync_violation(what):
    """Called only while the host-sync guard is on and only for a non-cpu
    tensor: ``what`` names the conversion (``item``, ``float``, ``repr``...)."""
    site = creation_site()
    raise HostSyncError(
        f"gradkit.no_host_sync: {what} copies a device tensor to the host (a device "
        f"synchronization) at {site}. Keep the value on the device (use tensor ops such "
        f"as gk.where instead of Python control flow), or move the conversion outside "
        f"the `with gk.no_host_sync():` block")


class Node:
    """One recorded op.

    ``vers`` is flat, ``(counter, version, counter, version, ...)``: the
    version counter of each saved tensor and its value when saved (the engine
    refuses a backward through a value modified since; one tuple per node, not
    one per saved tensor, keeps the objects the collector tracks per op down).
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
        self.site = None if QUIET[0] or not mode.anomaly else creation_site()

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
