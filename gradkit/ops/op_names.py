"""Errors name the op the user called, not the internal op that a composition
ran (``copy_`` runs ``expand``, ``gather`` runs ``getitem``, ``index_add`` runs
``getitem_backward``): ``as_op("gather")`` rewrites the ``gradkit.<name>:``
prefix of an error raised inside it, keeping the exception's type."""
from contextlib import contextmanager

from ..errors import GradkitError

__all__ = ["as_op"]

_REWRITTEN = (GradkitError, IndexError, TypeError, ValueError)


def _rename(e, name):
    msg = str(e)
    prefix = f"gradkit.{name}"
    if msg.startswith("gradkit.") and not msg.startswith(prefix + ":"):
        head, sep, rest = msg.partition(":")
        msg = f"{prefix}{sep}{rest}" if sep else f"{prefix}: {msg}"
    elif not msg.startswith("gradkit"):
        msg = f"{prefix}: {msg}"
    else:
        return e
    try:
        return type(e)(msg)
    except Exception:   # an exception class that takes other arguments: leave it
        return e


@contextmanager
def as_op(name):
    """Errors raised inside say ``gradkit.<name>:`` (the op the user called)."""
    try:
        yield
    except _REWRITTEN as e:
        new = _rename(e, name)
        if new is e:
            raise
        raise new from None
