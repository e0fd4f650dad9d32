"""The backward engine: reverse accumulation over the recorded nodes.

Nodes are processed in decreasing sequence number from a heap (creation order
is topological, so a node is popped only after every consumer has added its
gradient). Each node runs once; its saved residuals are dropped right after
its VJP unless ``retain_graph``; a leaf's gradient is summed over all paths
and accumulated in place into ``.grad``, on the leaf's device, in its dtype.
No recursion: a chain of any length works.
"""
from heapq import heappush, heappop
from sys import getrefcount as _refcount
from weakref import ref as _WeakRef

from ..creation import as_tensor, zeros_like
from ..errors import GradkitError
from ..graph import FREED, Node, mode
from ..ops import functional as _F
from ..failures import FreedGraphError, failed_message, out_of_memory, record_failure
from ..ops.core import _describe, method
from ..tensor import POST_ACCUMULATE_HOOKS, Tensor, const
from .accumulate import (_accumulate, _leaf_lock, _leaves_done, _post_hook_feeds,
                         _run_hooks, _run_leaf_hooks, _run_post_accumulate_hooks, _wrap)
from .anomaly import check_grads
from .gc_policy import _pins as _gc_pins, _state as _gc_state, \
    after_backward as _gc_after_backward, rotate_pins as _gc_rotate_pins

_FREED_MSG = (
    "gradkit: Trying to backward through the graph a second time (or directly access saved "
    "tensors after they have already been freed). Saved intermediate values of the graph are "
    "freed when you call .backward() or gk.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


def _seed(root, grad, i):
    """The starting gradient for one root, checked for shape, device and dtype."""
    B = root._B
    if grad is None:
        if root.numel() != 1:
            raise GradkitError("gradkit.backward: grad can be implicitly created only for scalar outputs")
        return B.ones(root.array.shape, root.array.dtype)
    if grad.__class__ is not Tensor:
        grad = as_tensor(grad, device=root.device)
    if grad._B is not B:
        raise GradkitError(
            f"gradkit.backward: the gradient for output {i} is on {grad._B.device_str} but the "
            f"output is on {B.device_str}; pass a gradient on the output's device")
    if tuple(grad.array.shape) != tuple(root.array.shape):
        raise GradkitError(
            f"gradkit.backward: Mismatch in shape: grad_output[{i}] has a shape of "
            f"{grad.shape} and output[{i}] has a shape of {root.shape}; pass a gradient of the "
            "output's shape")
    if grad.array.dtype != root.array.dtype:
        # as torch: the seed takes the output's dtype (a fused CUDA kernel takes
        # one dtype for all its arguments; NumPy would silently promote)
        if not B.is_floating(root.array.dtype):
            raise GradkitError(f"gradkit.backward: output {i} has dtype {root.dtype_name}; "
                               "only floating point outputs have gradients")
        grad = _F.astype(grad, root.dtype_name)
    return grad


def _useful_nodes(root_nodes, leaf_targets, node_targets):
    """Nodes from which some requested input can be reached (iterative DFS).
    Returns (expand, capture): nodes whose VJP must run, and nodes whose output
    gradient is requested."""
    expand = set()
    state = {}
    for r in root_nodes:
        if r in state:
            continue
        stack = [(r, False)]
        while stack:
            n, done = stack.pop()
            if done:
                for e in n.edges:
                    if e is None:
                        continue
                    t = e[0]
                    if t.__class__ is _WeakRef:   # see _weaken_leaf_edges
                        t = t()
                    if t.__class__ is Tensor:
                        if id(t) in leaf_targets:
                            expand.add(n)
                    elif t in expand or (t, e[1]) in node_targets:
                        expand.add(n)
                state[n] = 2
                continue
            if n in state:
                continue
            state[n] = 1
            stack.append((n, True))
            for e in n.edges:
                if e is not None and e[0].__class__ is Node and e[0] not in state:
                    stack.append((e[0], False))
    return expand


def run_backward(roots, grads, retain_graph, create_graph, inputs=None, accumulate=True):
    """The engine. ``inputs``: None (every leaf) or the tensors whose gradient is
    wanted. Returns {id(input): gradient} when ``inputs`` is given."""
    if retain_graph is None:
        retain_graph = create_graph
    F = _F if create_graph else None
    prev_mode = mode.enabled
    mode.enabled = bool(create_graph)
    try:
        return _run(roots, grads, retain_graph, create_graph, inputs, accumulate, F)
    except BaseException as e:
        if not retain_graph:   # a retry must say this backward failed, not "second time"
            record_failure(roots, e)
        raise
    finally:
        mode.enabled = prev_mode
        if _gc_state["frozen"]:   # gc_policy: the graph is consumed, hand objects back
            _gc_after_backward()
        if _gc_pins[0]:   # gc_policy: this graph's arenas are kept, the one before's go
            _gc_rotate_pins()


def _run(roots, grads, retain_graph, create_graph, inputs, accumulate, F):
    heap = []
    buf = {}          # node -> summed output gradient (a list for multi-output nodes)
    leaf_buf = {}     # id(leaf) -> [leaf, summed gradient]
    leaf_targets = node_targets = expand = None
    captured = {}
    if inputs is not None:
        leaf_targets = {}
        node_targets = {}
        for t in inputs:
            if t.grad_fn is None:
                leaf_targets[id(t)] = t
            else:
                node_targets[(t.grad_fn, t._oi)] = t
        expand = _useful_nodes([r.grad_fn for r in roots if r.grad_fn is not None],
                               leaf_targets, node_targets)

    for i, (root, g) in enumerate(zip(roots, grads)):
        if not root.requires_grad:
            raise GradkitError(
                f"gradkit.backward: element {i} of tensors does not require grad and does not "
                "have a grad_fn; set requires_grad=True on the leaves you differentiate with "
                "respect to (and make sure the op ran outside gk.no_grad())")
        g = _seed(root, g, i)
        if create_graph:
            g = _wrap(root._B, g)
        elif g.__class__ is Tensor:
            g = g.array
        node = root.grad_fn
        if node is None:
            _add_leaf(leaf_buf, root, g, F)
        else:
            _add_node(buf, heap, node, root._oi, g, F)

    anomaly = mode.anomaly
    add_to = F.add if F is not None else None
    # Leaves with a post-accumulate-grad hook are accumulated as soon as the last
    # node feeding them has run (data-parallel training starts all-reducing then).
    feeds = pending = None
    if POST_ACCUMULATE_HOOKS[0] and accumulate and inputs is None and not create_graph:
        feeds, pending = _post_hook_feeds([r.grad_fn for r in roots if r.grad_fn is not None])
    # A chain's next node skips the heap: when the heap is empty and a node's
    # gradient goes to one fresh node, that node is the next to run (every other
    # node that could feed it would be in the heap), so it is carried in
    # ``nxt``/``nxt_g`` and never enters ``buf`` or the heap. Any further edge
    # into a node first puts the carried one there, so sums still meet in ``buf``.
    nxt = nxt_g = None
    while True:
        if nxt is not None:
            node = nxt
            g = nxt_g
            nxt = nxt_g = None
        elif heap:
            node = heappop(heap)[1]
            g = buf.pop(node)
        else:
            break
        B = node.B
        if node.hooks:
            g = _run_hooks(node, g, B, create_graph)
        if node_targets is not None:
            outs = g if node.nout > 1 else (g,)
            for oi, gi in enumerate(outs):
                t = node_targets.get((node, oi))
                if t is not None:
                    captured[id(t)] = gi
            if node not in expand:
                continue
        saved = node.saved
        if saved is FREED:
            raise FreedGraphError(failed_message(node) or _FREED_MSG + f" (node: {node.name()}, "
                                  f"made by gradkit.{node.p.name})")
        vers = node.vers   # flat: (counter, version at record, counter, version, ...)
        if vers and (vers[0][0] != vers[1] or len(vers) > 2):
            err = _version_error(node)   # the first pair differs, or more pairs to check
            if err is not None:
                raise err
        if create_graph:
            saved = _saved_tensors(node)
            if node.nout > 1:
                g = [None if x is None else _wrap(B, x) for x in g]
            fv = F
        else:
            fv = B
        try:
            dv = node.p.dvjp
            if dv is not None and fv is B and g.size >= B.donate_min:
                # donation: what this VJP may overwrite (see core.donating). The
                # counts: g is held by this frame's `g` and getrefcount's argument
                # (and owns its memory, or is the only view of memory nobody owns);
                # a saved value by the node's saved tuple, the loop variable and
                # getrefcount's argument (_saved_free). More means someone else
                # holds it (another node, a hook, the user's tensor, a view).
                gf = dv[1] and _refcount(g) == 2 and g.flags.writeable and _owns(g)
                sf = dv[2] and not retain_graph and _saved_free(saved)
                out = dv[0](fv, node.needs, g, gf, sf, *saved, **node.params) if node.params \
                    else dv[0](fv, node.needs, g, gf, sf, *saved)
            elif node.params:
                out = node.p.vjp(fv, node.needs, g, *saved, **node.params)
            else:   # the common lengths without *: a plain call, no argument tuple
                ns = len(saved)
                if ns == 1:
                    out = node.p.vjp(fv, node.needs, g, saved[0])
                elif ns == 2:
                    out = node.p.vjp(fv, node.needs, g, saved[0], saved[1])
                elif ns == 0:
                    out = node.p.vjp(fv, node.needs, g)
                else:
                    out = node.p.vjp(fv, node.needs, g, *saved)
        except GradkitError:
            raise
        except MemoryError as e:
            raise out_of_memory(node.p.name, _describe(_vjp_args(B, g, saved)), e,
                                " in the backward") from e
        except Exception as e:
            if node.site is not None:
                raise GradkitError(f"gradkit: error in the backward of '{node.p.name}' "
                                   f"created at {node.site}: {e}") from e
            raise
        saved = node.saved
        if not retain_graph and saved:
            # as torch: only a node that saved a value refuses a rerun (the first
            # or second value decides in the common cases, without a call)
            v0 = saved[0]
            if v0 is None and len(saved) > 1:
                v0 = saved[1]
            if (v0 is not None and v0.__class__ is not tuple and v0.__class__ is not list) \
                    or _holds_values(saved):
                node.saved = FREED
            v0 = None   # else it holds a freed value into the next node (donation)
        if anomaly:
            check_grads(node, out)
        g = None
        k = 0
        for e in node.edges:   # an index, not zip(): no iterator object per node
            gi = out[k]
            k += 1
            if e is None or gi is None:
                continue
            target, oi, shape, dtype = e
            if gi.shape != shape:
                gi = (F or B).sum_to(gi, shape)
            gdt = gi.dtype
            if gdt is not dtype and gdt != dtype:
                gi = (F or B).astype(gi, dtype)
            if target.__class__ is Node:   # the common case first
                if expand is not None and target not in expand and \
                        (target, oi) not in node_targets:
                    continue
                if nxt is None and not heap and target.nout == 1:
                    nxt = target   # the chain case (an empty heap means an empty buf)
                    nxt_g = gi
                    continue
                if nxt is not None:   # a second node target: the first joins the heap
                    buf[nxt] = nxt_g
                    heappush(heap, (-nxt.seq, nxt))
                    nxt = nxt_g = None
                if target.nout == 1:  # inlined _add_node: the common case
                    old = buf.get(target)
                    if old is None:
                        buf[target] = gi
                        heappush(heap, (-target.seq, target))
                    elif add_to is None and getattr(old, "base", 1) is None and old.ndim \
                            and _refcount(old) <= 3:
                        target.B.iadd(old, gi)   # only buf holds it: sum in place (no new array)
                    else:
                        buf[target] = add_to(old, gi) if add_to else target.B.add(old, gi)
                else:
                    _add_node(buf, heap, target, oi, gi, F)
            elif target.__class__ is Tensor:
                if leaf_targets is None or id(target) in leaf_targets:
                    _add_leaf(leaf_buf, target, gi, F)
            elif target.__class__ is _WeakRef:   # a leaf edge made weak by _weaken_leaf_edges
                target = target()
                if target is not None and (leaf_targets is None or id(target) in leaf_targets):
                    _add_leaf(leaf_buf, target, gi, F)
        out = gi = None   # nothing but buf holds the next gradients (donation, stealing)
        if feeds is not None:
            done = feeds.get(node)
            if done is not None:
                _leaves_done(done, pending, leaf_buf)

    out = gi = g = None  # drop loop references: _accumulate counts them
    # all or nothing: every leaf hook runs (and may raise) before any .grad changes
    # (leaves that a post-accumulate-grad hook completed above are done early, as torch)
    for cur in leaf_buf.values():
        if cur[0]._hooks:
            cur[1] = _run_leaf_hooks(cur[0], cur[1], cur[0]._B, create_graph)
    cur = None
    results = {}
    graph_grads = []
    while leaf_buf:
        key, (leaf, g) = leaf_buf.popitem()
        B = leaf._B
        if accumulate:
            try:
                lock = leaf._glock
            except AttributeError:
                lock = _leaf_lock(leaf)
            with lock:   # threads sharing a leaf must not lose each other's +=
                _accumulate(leaf, g, B, create_graph)
            if create_graph and leaf.grad.grad_fn is not None:
                graph_grads.append(leaf)
            if leaf._hooks:
                _run_post_accumulate_hooks(leaf)
        else:
            results[key] = g
    if graph_grads:
        _weaken_leaf_edges(graph_grads)
    if inputs is not None:
        for t in inputs:
            k = id(t)
            if k in captured:
                results[k] = captured[k]
                if accumulate:
                    _accumulate(t, captured[k], t._B, create_graph)
    return results


def _version_error(node):
    """The error for the first saved value whose version moved since it was
    saved (``node.vers`` holds flat pairs), or None."""
    vers = node.vers
    for k in range(0, len(vers), 2):
        if vers[k][0] != vers[k + 1]:
            return GradkitError(
                f"gradkit: one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: the input or output of "
                f"'{node.p.name}' (node #{node.seq}) is at version {vers[k][0]}; expected "
                f"version {vers[k + 1]} instead. Use an out-of-place op, or clone() the tensor "
                f"before modifying it.")
    return None


def _owns(g):
    """Whether ``g``'s memory is reachable through ``g`` only, given that nothing
    else holds ``g``: it owns it, or it is a whole-buffer view (a permute or
    reshape backward) of an owner that nothing but ``g`` holds (3: ``g.base``,
    ``b`` and getrefcount's argument), without zero strides."""
    b = g.base
    if b is None:
        return True
    return getattr(b, "base", 1) is None and _refcount(b) == 3 and b.size == g.size \
        and 0 not in g.strides


def _saved_free(saved):
    """Whether every saved array is held only by the node's saved tuple (which
    the backward frees after this VJP): owned memory, writeable, no other
    reference (3: the tuple, ``v`` and getrefcount's argument)."""
    for v in saved:
        if v is None or v.__class__ is float or v.__class__ is int:
            continue
        if getattr(v, "base", 1) is not None or _refcount(v) != 3 or not v.flags.writeable:
            return False
    return True


def _vjp_args(B, g, saved):
    """The gradient and saved arrays of a failed VJP, as Tensors for _describe."""
    vals = (list(g) if g.__class__ is list else [g]) + [v for v in saved if v is not None]
    return [v if v.__class__ is Tensor or not hasattr(v, "shape") else const(B, v) for v in vals]


def _holds_values(saved):
    """Whether a node saved any value (a tensor, or a Python scalar operand, which
    torch wraps as a tensor): only such a node refuses a second backward."""
    for v in saved:
        if v is None:
            continue
        if v.__class__ is tuple or v.__class__ is list:
            if _holds_values(v):
                return True
            continue
        return True
    return False


def _weaken_leaf_edges(leaves):
    """Break the cycle leaf -> leaf.grad -> grad_fn -> ... -> leaf that
    ``backward(create_graph=True)`` makes: in the graph reachable from these
    leaves' new gradients (which includes the forward nodes the gradient's
    graph refers to), edges into these leaves become weak references. The
    leaf then dies with its last user reference even with ``gc`` disabled,
    and its gradient graph with it; while it lives, every backward
    dereferences the edge and treats it as the leaf (a dead leaf's gradient
    is unobservable and dropped). Only this path makes weak edges, so the
    common backward pays one extra class check per node edge."""
    ids = {id(t) for t in leaves}
    stack = [t.grad.grad_fn for t in leaves]
    seen = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        edges = n.edges
        for k, e in enumerate(edges):
            if e is None:
                continue
            t = e[0]
            if t.__class__ is Node:
                if t not in seen:
                    stack.append(t)
            elif t.__class__ is Tensor and id(t) in ids:
                if edges.__class__ is not list:
                    edges = n.edges = list(edges)
                edges[k] = (_WeakRef(t),) + tuple(e[1:])


def _add_node(buf, heap, node, oi, g, F):
    if node.nout == 1:
        old = buf.get(node)
        if old is None:
            buf[node] = g
            heappush(heap, (-node.seq, node))
        else:
            buf[node] = (F or node.B).add(old, g)
        return
    lst = buf.get(node)
    if lst is None:
        lst = buf[node] = [None] * node.nout
        heappush(heap, (-node.seq, node))
    lst[oi] = g if lst[oi] is None else (F or node.B).add(lst[oi], g)


def _add_leaf(leaf_buf, leaf, g, F):
    k = id(leaf)
    cur = leaf_buf.get(k)
    if cur is None:
        leaf_buf[k] = [leaf, g]
    elif F is None:
        old = cur[1]
        if getattr(old, "base", 1) is None and old.ndim and _refcount(old) <= 3:
            leaf._B.iadd(old, g)   # only leaf_buf holds it: sum in place
        else:
            cur[1] = leaf._B.add(old, g)
    else:
        cur[1] = F.add(cur[1], g)


def reattach(B, arr, target, oi):
    """The one way a saved raw value becomes a Tensor connected to the graph
    again under create_graph: ``target`` is where it came from (None: a
    constant; a leaf Tensor, or a weak reference to one; a Node and its output
    index ``oi``)."""
    if target is None:
        return const(B, arr)
    if target.__class__ is Tensor:
        return target
    if target.__class__ is _WeakRef:
        leaf = target()
        return leaf if leaf is not None else const(B, arr)
    t = const(B, arr)
    t.grad_fn = target
    t._oi = oi
    t._rg = True
    return t


def _saved_tensors(node):
    """Saved raw values as Tensors connected to the graph (create_graph)."""
    B = node.B
    p = node.p
    saved = node.saved
    out = []
    k = 0
    for i in p.save:
        v = saved[k]
        k += 1
        e = node.edges[i]
        if v.__class__ in (int, float, bool) or v is None or v.__class__ is tuple:
            out.append(v)
        else:
            out.append(reattach(B, v, None if e is None else e[0], 0 if e is None else e[1]))
    if p.out:
        out.append(reattach(B, saved[k], node, 0))
        k += 1
    for v in saved[k:]:
        out.append(v if v.__class__ in (int, float, bool, tuple) or v is None else const(B, v))
    return out


# ------------------------------------------------------------------ public
def _as_list(x, what="backward"):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    if not isinstance(x, (str, bytes, dict)):
        try:
            return list(x)  # a list, tuple or generator (model.parameters())
        except TypeError:
            pass
    raise TypeError(f"gradkit.{what}: expected a Tensor or a sequence of Tensors, got "
                    f"{type(x).__name__}")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """``gk.autograd.backward``; ``Tensor.backward`` calls it."""
    roots = _as_list(tensors)
    grads = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(roots)
    if len(grads) != len(roots):
        raise GradkitError(f"gradkit.backward: got {len(grads)} gradients for {len(roots)} outputs")
    inputs = _as_list(inputs)
    if inputs is not None:
        if not inputs:
            raise GradkitError("gradkit.backward: 'inputs' argument should not be empty")
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"gradkit.backward: inputs must be Tensors, got {type(t).__name__}")
            if not t.requires_grad:
                raise GradkitError("gradkit.backward: one of the 'inputs' does not require grad")
    run_backward(roots, grads, retain_graph, create_graph, inputs, accumulate=True)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``; touches no ``.grad``."""
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    gouts = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    if len(gouts) != len(outs):
        raise GradkitError(f"gradkit.grad: got {len(gouts)} grad_outputs for {len(outs)} outputs")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradkit.grad: inputs[{i}] is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise GradkitError(f"gradkit.grad: inputs[{i}] does not require grad")
    res = run_backward(outs, gouts, retain_graph, create_graph, ins, accumulate=False)
    result = []
    for i, t in enumerate(ins):
        g = res.get(id(t))
        if g is None:
            if materialize_grads:
                result.append(zeros_like(t))
                continue
            if not allow_unused:
                raise GradkitError(
                    f"gradkit.grad: The differentiated Tensor at index {i} appears to not have "
                    "been used in the graph (no path from it to the outputs). Set "
                    "allow_unused=True if this is the desired behavior (you then get None for "
                    "it, or zeros with materialize_grads=True).")
            result.append(None)
        else:
            result.append(g if g.__class__ is Tensor else const(t._B, g))
    return tuple(result)


@method("backward")
def tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """``t.backward(...)``: ``gk.autograd.backward`` with torch's argument names."""
    backward(self, gradient, retain_graph, create_graph, inputs)
