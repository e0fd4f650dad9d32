"""gradkit's collection policy for large graphs (Python's cyclic garbage collector).

Python's collector runs a full (generation 2) collection each time the objects
that survived into the oldest generation grew by 25%. A graph under
construction is exactly such growth: every recorded op leaves a few tracked
objects (its Node, output Tensor, edge tuples) alive until the backward, so a
forward of N ops triggers full collections that rescan the whole graph again
and again, about five visits per object, and the per-op cost of building the
graph grew with its size (benchmarks/scale.py: 1.5x at 10^5 ops).
The graph itself never needs the cyclic collector: it is freed by reference
counting when the backward drops its nodes or the user drops its output.

Policy (on by default; ``GRADKIT_GC_POLICY=0`` in the environment, or
``set_gc_policy(False)``, turns it off): when Python starts a full collection
while a live graph of at least ``MIN_NODES`` nodes is reachable from the
newest recorded node, gradkit moves every tracked object into the collector's
permanent generation (``gc.freeze()``, O(1)), so this and later full
collections scan only objects made after that point. The objects are handed
back (``gc.unfreeze()``, O(1), into the oldest generation, which the next full
collection scans as usual) at the end of the next backward (``.backward()`` or
``gradkit.grad``), or at the next full collection once that newest node has
died without a backward (the graph was dropped). Young collections
(generations 0 and 1) are never affected. So: small graphs (fewer than
``MIN_NODES`` nodes, every usual model) see no change at all; while a large
graph is being built, cyclic garbage that already existed when it was frozen is
collected after the backward instead of during the forward (torch never
collects cycles through its graph at all). A user's own ``gc.freeze()`` is
respected: gradkit only unfreezes what it froze when nothing was frozen before.

Arenas (the same switch): CPython's small-object allocator takes memory from
the OS in 1 MiB arenas and hands an arena back as soon as every object in it
died. A graph is thousands of such objects made in one sweep and freed in
one sweep by the backward, so every step of a large graph unmaps its arenas
and the next forward maps and page-faults them again (0.1 faults per op, and
a minor fault costs microseconds on a virtual machine: ~6% of the per-op cost
at 10^5 ops). So at every fourth young collection, gradkit keeps one 128-byte
``bytes`` object (not tracked by the collector) in the size class of a Node,
i.e. in the arena the graph is filling; a kept block keeps its arena mapped
and the next forward reuses it. The kept blocks are those of the graphs of
the last two backwards (rotated at the end of each backward that follows
new ones, at most ``MAX_PINS`` per graph), so a process holds the arenas of
its recent graphs, as glibc holds freed heap: a large one-off graph is handed
back two backwards later, and ``set_gc_policy(False)`` hands everything back.
"""
import collections
import gc
import os
import weakref

from ..graph import Node

#: the live graph (nodes reachable from the newest node) that makes a full
#: collection be deferred
MIN_NODES = 2_000

_state = {"enabled": os.environ.get("GRADKIT_GC_POLICY", "1").strip() not in ("0", "off", "no",
                                                                               "false"),
          "frozen": False, "frontier": None}

#: kept blocks per graph: 4096 pins ~ 1,300 arenas (~1.3 GB of graph objects)
MAX_PINS = 4096
#: bytes(95) is a 128-byte block: a Node's size class (16 + 12 slots + the GC header)
_PIN_LEN = 95
# [blocks kept since the last rotation, blocks of the graph before, young collections]
_pins = [collections.deque(maxlen=MAX_PINS), (), 0]


def set_gc_policy(enabled):
    """Turn gradkit's collection policy for large graphs on or off.

    ``enabled`` (bool): on (the default, unless ``GRADKIT_GC_POLICY=0``) or off;
    turning it off hands back to the collector whatever the policy froze, and to
    the allocator the arenas it kept for the next graph (see the module). Returns
    the previous setting (bool). All devices (it concerns host objects only). No
    torch counterpart: torch's graph lives in C++, outside Python's collector."""
    prev = _state["enabled"]
    _state["enabled"] = bool(enabled)
    if not enabled:
        release()
        _pins[0].clear()
        _pins[1] = ()
    return prev


def gc_policy_enabled():
    """Whether gradkit's collection policy for large graphs is on (bool; see
    ``set_gc_policy``). No torch counterpart."""
    return _state["enabled"]


def is_frozen():
    """Whether objects are in the permanent generation because of this policy."""
    return _state["frozen"]


def release():
    """Hand frozen objects back to the collector (the engine calls this after a backward)."""
    if _state["frozen"]:
        _state["frozen"] = False
        _state["frontier"] = None
        gc.unfreeze()


def rotate_pins():
    """At the end of a backward: the blocks kept while its graph was built become
    the previous graph's, and those of the graph before are dropped (their arenas
    are reused by now, or free to go back to the OS)."""
    if _pins[0]:
        _pins[1] = _pins[0]
        _pins[0] = collections.deque(maxlen=MAX_PINS)


def pinned_blocks():
    """How many 128-byte blocks the policy keeps now (tests and benchmarks)."""
    return len(_pins[0]) + len(_pins[1])


def _newest_node():
    newest = None
    for o in gc.get_objects(0):
        if o.__class__ is Node and (newest is None or o.seq > newest.seq):
            newest = o
    return newest


def _graph_at_least(node, n):
    """Whether at least ``n`` nodes are reachable from ``node`` (stops at n)."""
    seen = {node}
    stack = [node]
    while stack:
        for e in stack.pop().edges:
            if e is not None:
                t = e[0]
                if t.__class__ is Node and t not in seen:
                    seen.add(t)
                    if len(seen) >= n:
                        return True
                    stack.append(t)
    return False


def _on_gc(phase, info):
    if phase != "start" or not _state["enabled"]:
        return
    if info.get("generation") != 2:
        _pins[2] += 1
        if not _pins[2] & 3:
            _pins[0].append(bytes(_PIN_LEN))
        return
    try:
        if _state["frozen"]:
            ref = _state["frontier"]
            if ref is None or ref() is None:
                release()   # the graph was dropped without a backward: collect as usual
                return
            # still building: freeze what came since, so this collection scans nothing old
            newest = _newest_node()
            if newest is not None:
                _state["frontier"] = weakref.ref(newest)
            gc.freeze()
            return
        if gc.get_freeze_count():
            return   # the user froze objects: leave the permanent generation to them
        newest = _newest_node()
        if newest is None or not _graph_at_least(newest, MIN_NODES):
            return
        _state["frontier"] = weakref.ref(newest)
        _state["frozen"] = True
        gc.freeze()
    except Exception:   # a collector callback must never raise
        pass


if _on_gc not in gc.callbacks:
    gc.callbacks.append(_on_gc)
