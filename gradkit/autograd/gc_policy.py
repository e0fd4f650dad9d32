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
"""
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


def set_gc_policy(enabled):
    """Turn gradkit's collection policy for large graphs on or off.

    ``enabled`` (bool): on (the default, unless ``GRADKIT_GC_POLICY=0``) or off;
    turning it off hands back to the collector whatever the policy froze. Returns
    the previous setting (bool). All devices (it concerns host objects only). No
    torch counterpart: torch's graph lives in C++, outside Python's collector."""
    prev = _state["enabled"]
    _state["enabled"] = bool(enabled)
    if not enabled:
        release()
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
    if phase != "start" or info.get("generation") != 2 or not _state["enabled"]:
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
