"""Where a backward ends: gradient hooks, and accumulation into a leaf's
``.grad`` (in place, on the leaf's device, under a per-leaf lock), with the
post-accumulate-grad hooks that data-parallel training starts its all-reduces
from (a leaf is accumulated as soon as its last feeding node has run)."""
from sys import getrefcount as _refcount
from threading import Lock as _Lock
from weakref import ref as _WeakRef

from ..errors import GradkitError
from ..graph import Node
from ..tensor import PostAccumulateGradHook, Tensor, const


def _wrap(B, g):
    return g if g.__class__ is Tensor else const(B, g)


_LOCK_MAKE = _Lock()


def _leaf_lock(leaf):
    """The lock that serialises accumulation into ``leaf.grad`` (made on first use)."""
    with _LOCK_MAKE:
        lock = getattr(leaf, "_glock", None)
        if lock is None:
            lock = leaf._glock = _Lock()
    return lock


def _accumulate(leaf, g, B, create_graph):
    if create_graph:
        g = _wrap(B, g)
        leaf._grad = g if leaf._grad is None else leaf._grad + g
        return
    if g.__class__ is Tensor:
        g = g.array
    cur = leaf._grad
    if cur is None:
        # Steal the gradient when nothing else can see it (as torch does): it
        # owns its memory (not a view) and only this call and its caller hold
        # it. Otherwise copy, so .grad never aliases a user's or another
        # leaf's array (``a + b`` hands the same g to both).
        if getattr(g, "base", 1) is None and _refcount(g) <= 3:
            leaf._grad = const(B, g)
        else:
            leaf._grad = const(B, B.copy(g))
    elif cur.grad_fn is not None or cur.array.shape != g.shape:
        leaf._grad = const(B, B.add(cur.array, g))
    else:
        B.iadd(cur.array, g)
        cur._vc[0] += 1


def _call_hook(fn, g, B, create_graph):
    gt = _wrap(B, g)
    r = fn(gt)
    if r is None:
        return g
    if r.__class__ is not Tensor:
        raise TypeError(f"gradkit: a hook must return a Tensor or None, got {type(r).__name__}")
    if tuple(r.array.shape) != tuple(gt.array.shape):
        raise GradkitError(f"gradkit: hook returned a gradient of shape {r.shape}, expected "
                           f"{gt.shape}")
    if r._B is not gt._B:
        raise GradkitError(f"gradkit: hook {getattr(fn, '__name__', fn)!s} returned a gradient on "
                           f"{r._B.device_str}, but the gradient it was given is on "
                           f"{gt._B.device_str}; return it on that device (.to({gt._B.device_str!r}))")
    if r.array.dtype != gt.array.dtype:
        raise GradkitError(f"gradkit: hook {getattr(fn, '__name__', fn)!s} has changed the type of "
                           f"the gradient (was {gt.dtype_name}, got {r.dtype_name}); return "
                           f"it as {gt.dtype_name}")
    return r if create_graph else r.array


def _run_hooks(node, g, B, create_graph):
    for oi, fn in list(node.hooks):
        if node.nout > 1:
            if g[oi] is not None:
                g[oi] = _call_hook(fn, g[oi], B, create_graph)
        else:
            g = _call_hook(fn, g, B, create_graph)
    return g


def _run_leaf_hooks(leaf, g, B, create_graph):
    for fn in list(leaf._hooks):
        if fn.__class__ is not PostAccumulateGradHook:
            g = _call_hook(fn, g, B, create_graph)
    return g


def _run_post_accumulate_hooks(leaf):
    for h in list(leaf._hooks):
        if h.__class__ is PostAccumulateGradHook:
            h.fn(leaf)


def _post_hook_feeds(root_nodes):
    """For the leaves that have a post-accumulate-grad hook: ``feeds`` maps each
    node with an edge into such a leaf to those leaves, ``pending`` counts for
    each leaf (by id) the nodes still to run. (None, None) when there is none."""
    feeds = {}
    pending = {}
    seen = set()
    stack = list(root_nodes)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        hooked = None
        for e in n.edges:
            if e is None:
                continue
            t = e[0]
            if t.__class__ is Node:
                if t not in seen:
                    stack.append(t)
                continue
            if t.__class__ is _WeakRef:
                t = t()
            if t is not None and t._hooks and any(
                    h.__class__ is PostAccumulateGradHook for h in t._hooks):
                if hooked is None:
                    hooked = {}
                hooked[id(t)] = t
        if hooked:
            feeds[n] = list(hooked.values())
            for k in hooked:
                pending[k] = pending.get(k, 0) + 1
    return (feeds, pending) if feeds else (None, None)


def _leaves_done(leaves, pending, leaf_buf):
    """One node feeding ``leaves`` has run: accumulate each leaf whose gradient is
    now complete, then run its post-accumulate-grad hooks."""
    for leaf in leaves:
        k = id(leaf)
        pending[k] -= 1
        if pending[k] or k not in leaf_buf:
            continue
        leaf, g = leaf_buf.pop(k)
        B = leaf._B
        if leaf._hooks:
            g = _run_leaf_hooks(leaf, g, B, False)
        try:
            lock = leaf._glock
        except AttributeError:
            lock = _leaf_lock(leaf)
        with lock:   # threads sharing a leaf must not lose each other's +=
            _accumulate(leaf, g, B, False)
        g = None
        _run_post_accumulate_hooks(leaf)
