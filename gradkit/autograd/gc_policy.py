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

Young collections cost the same: each object a graph keeps is scanned by a
generation-0 and again by a generation-1 collection before it reaches the
oldest generation (~0.5 us per op at 10^5 ops, 10% of the per-op cost).

Policy (on by default; ``GRADKIT_GC_POLICY=0`` in the environment, or
``set_gc_policy(False)``, turns it off): when Python starts a full or a
generation-1 collection while a live graph of at least ``MIN_NODES`` nodes is
reachable from the newest recorded node, gradkit moves every tracked object
into the collector's permanent generation (``gc.freeze()``, O(1)), so this and
later collections scan only objects made after that point; from then on, every
collection that finds nodes recorded since the last freeze (a sequence number
tells, O(1)) freezes again, so the graph's objects are never scanned while it
grows. A collection that finds none (the program holds the graph but records
nothing) runs as usual. Objects frozen this way skip Python's trigger for a
full collection (they never pass into the oldest generation through
generation 1), so the backward runs one full collection itself once the young
collections frozen since its last one stand for ``HEAP_FACTOR`` (8) times the
heap: cyclic garbage made while large graphs are built is collected, after
the backward, at most a few steps late (``after_backward``). The objects are
handed back (``gc.unfreeze()``, O(1), into the oldest generation, which the
next full collection scans as usual) at the end of the next backward
(``.backward()`` or ``gradkit.grad``), or at the next full collection once that
newest node has died without a backward (the graph was dropped). So: small
graphs (fewer than ``MIN_NODES`` nodes, every usual model) see no change at
all; while a large graph is being built, cyclic garbage is collected after the
backward instead of during the forward (torch never collects cycles through
its graph at all). A user's own ``gc.freeze()`` is
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

from ..graph import Node, next_seq

#: the live graph (nodes reachable from the newest node) that makes a full
#: collection be deferred
MIN_NODES = 2_000

_state = {"enabled": os.environ.get("GRADKIT_GC_POLICY", "1").strip() not in ("0", "off", "no",
                                                                               "false"),
          "frozen": False, "frontier": None, "seq": 0,
          # young collections frozen since the last full collection run after a
          # backward, and the objects the collector tracked after it (a first guess)
          "young": 0, "heap": 30_000}

#: a full collection after a backward once the young collections frozen since the
#: last one stand for HEAP_FACTOR times the objects tracked after it (see after_backward)
HEAP_FACTOR = 8

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
    """Hand frozen objects back to the collector."""
    if _state["frozen"]:
        _state["frozen"] = False
        _state["frontier"] = None
        gc.unfreeze()


def after_backward():
    """The engine, after a backward that consumed a frozen graph: hand the objects
    back, and run the full collection that the young ones skipped when it is due.
    Objects frozen at young collections never pass through generation 1 into
    the oldest one, so Python's own trigger for a full collection (the oldest
    generation grew by 25%) never counts them: cyclic garbage made while large
    graphs were built would stay. So once the young collections frozen since the
    last such collection stand for 4x the objects the collector tracked after
    it (a young collection comes every ``gc.get_threshold()[0]`` new objects),
    one full collection runs here: at most one full scan of the heap per 4x
    the heap in new objects, as Python's own policy amortizes it."""
    release()
    young = _state["young"]
    if young and young * max(1, gc.get_threshold()[0]) > HEAP_FACTOR * _state["heap"]:
        _state["young"] = 0
        if gc.isenabled() and not gc.get_freeze_count():
            _state["enabled"] = False   # this collection scans everything (the consumed
            try:                        # graph may still be held: it is no reason to wait)
                gc.collect()
            finally:
                _state["enabled"] = True
            gc.freeze()   # counts the tracked objects without a list of them
            _state["heap"] = max(1_000, gc.get_freeze_count())
            gc.unfreeze()   # (back into the oldest generation, where a full collection left them)


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


def _young(gen):
    """A young collection while a graph grows: once a large graph is known
    (frozen), the objects made since the last freeze are frozen too when new
    nodes are among them, so the graph's nodes are never scanned at all; a
    generation-1 collection also looks for a large graph, so the policy starts
    within ~7,000 tracked objects instead of at the first full collection."""
    if _state["frozen"]:
        ref = _state["frontier"]
        if ref is None or ref() is None:
            return   # the graph died: collect as usual (the next full one releases)
        seq = next_seq()   # (a number no node takes: sequence numbers only order nodes)
        if seq > _state["seq"] + 1:   # nodes were recorded since: freeze what came since
            gc.freeze()
            _state["young"] += 1
        _state["seq"] = seq
        return
    if gen == 1:
        _detect()


def _detect():
    """Freeze when a live graph of at least ``MIN_NODES`` nodes is reachable from
    the newest node, unless the user froze objects (the permanent generation is
    theirs then)."""
    newest = _newest_node()
    # (get_freeze_count walks the permanent generation: asked last, a program
    # that froze a large heap itself does not pay a walk per collection)
    if newest is not None and _graph_at_least(newest, MIN_NODES) \
            and not gc.get_freeze_count():
        _freeze(newest)


def _freeze(newest):
    _state["frontier"] = weakref.ref(newest)
    _state["frozen"] = True
    _state["seq"] = next_seq()
    gc.freeze()


def _on_gc(phase, info):
    if phase != "start" or not _state["enabled"]:
        return
    gen = info.get("generation")
    if gen != 2:
        _pins[2] += 1
        if not _pins[2] & 3:
            _pins[0].append(bytes(_PIN_LEN))
        try:
            _young(gen)
        except Exception:   # a collector callback must never raise
            pass
        return
    try:
        if _state["frozen"]:
            ref = _state["frontier"]
            if ref is None or ref() is None:
                release()   # the graph was dropped without a backward: collect as usual
                return
            # still building: freeze what came since, so this collection scans nothing old
            newest = _newest_node()
            _freeze(newest if newest is not None else ref())
            return
        _detect()
    except Exception:   # a collector callback must never raise
        pass


if _on_gc not in gc.callbacks:
    gc.callbacks.append(_on_gc)
