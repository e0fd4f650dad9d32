"""Grad mode: one per-thread flag; these are thin wrappers around it."""
from ..graph import FlagContext, mode


def is_grad_enabled():
    return mode.enabled


class set_grad_enabled(FlagContext):
    """Context manager and decorator that sets grad mode for this thread; as in
    torch, a plain call ``set_grad_enabled(False)`` sets it too."""
    flag = "enabled"

    def __init__(self, enabled=True):
        super().__init__(bool(enabled))
        self._eager = mode.enabled
        mode.enabled = self.value

    def __enter__(self):
        self._prev.append(self._eager)   # already set by __init__
        return self

    def __call__(self, fn):
        mode.enabled = self._eager  # used as a decorator: undo the eager set
        return super().__call__(fn)


class no_grad(FlagContext):
    """Disable graph recording in this thread (context manager or decorator)."""
    flag = "enabled"

    def __init__(self):
        super().__init__(False)


class enable_grad(FlagContext):
    """Enable graph recording in this thread (context manager or decorator)."""
    flag = "enabled"

    def __init__(self):
        super().__init__(True)
