"""What the engine says when a backward fails, and out-of-memory errors that stay
MemoryErrors.

- ``OutOfMemoryError``: a ``MemoryError`` (so ``except MemoryError`` still catches
  it, and CuPy's ``OutOfMemoryError`` too when the backend raised that one) whose
  message names the gradkit op, the inputs' shapes, dtypes and devices, and the
  bytes requested when the backend said.
- A backward that fails without ``retain_graph`` has already freed the saved
  values of the nodes it ran; those nodes are recorded here with the error, so a
  retry says that the previous backward failed (and with what) instead of
  suggesting ``retain_graph=True``. Nothing is recorded on the success path.
"""
import weakref

from .errors import GradkitError
from .graph import Node, FREED

__all__ = ["OutOfMemoryError", "out_of_memory", "FreedGraphError", "record_failure",
           "failed_message"]


class OutOfMemoryError(MemoryError):
    """A backend ran out of memory inside a gradkit op (a ``MemoryError``).

    ``op`` is the gradkit op, ``inputs`` describes its inputs, ``original`` is the
    backend's own exception (also ``__cause__``). Mirrors ``torch.OutOfMemoryError``,
    which is a RuntimeError in torch; here it stays a MemoryError, as NumPy and CuPy
    raise it."""

    def __init__(self, message, op=None, inputs=None, original=None):
        MemoryError.__init__(self, message)
        self.op = op
        self.inputs = inputs
        self.original = original

    def __str__(self):
        return self.args[0] if self.args else ""


_OOM_CLASSES = {}


def out_of_memory(op, inputs, e, where=""):
    """A MemoryError of the same class as ``e`` (so ``except cupy...OutOfMemoryError``
    still catches it) that is also a gradkit ``OutOfMemoryError`` naming the op."""
    cls = e.__class__
    if not issubclass(cls, OutOfMemoryError):
        if cls is MemoryError:
            cls = OutOfMemoryError
        else:
            cls = _OOM_CLASSES.get(e.__class__)
            if cls is None:
                cls = _OOM_CLASSES[e.__class__] = type(
                    e.__class__.__name__, (OutOfMemoryError, e.__class__),
                    {"__init__": OutOfMemoryError.__init__, "__str__": OutOfMemoryError.__str__,
                     "__reduce__": MemoryError.__reduce__,
                     "__module__": __name__})
    detail = str(e).split("\n")[0] or "out of memory"
    msg = (f"gradkit.{op}: out of memory{where}: {detail}; inputs: {inputs}. Free memory "
           "(del tensors you no longer need; on CUDA gk.cuda.empty_cache() if available) "
           "or use smaller batches")
    return cls(msg, op=op, inputs=inputs, original=e)


class FreedGraphError(GradkitError):
    """A backward reached saved values that an earlier backward freed."""


#: node -> one-line description of the backward that failed after freeing it
_FAILED = weakref.WeakKeyDictionary()


def record_failure(roots, error):
    """After a backward without retain_graph failed: every node reachable from
    ``roots`` whose saved values are gone remembers the error."""
    if isinstance(error, FreedGraphError):
        return
    text = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    stack = [r.grad_fn for r in roots if getattr(r, "grad_fn", None) is not None]
    seen = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.saved is FREED:
            _FAILED[n] = text
        for e in n.edges:
            if e is not None and e[0].__class__ is Node and e[0] not in seen:
                stack.append(e[0])


def failed_message(node):
    """The retry message for a node freed by a failed backward, or None."""
    text = _FAILED.get(node)
    if text is None:
        return None
    return (f"gradkit: the previous backward through this graph failed ({text}) after it "
            f"had freed the saved values of the ops it ran (op: {node.p.name}); they are "
            "gone. Recompute the forward and call backward again (pass retain_graph=True "
            "to keep the saved values through a backward that may fail)")
