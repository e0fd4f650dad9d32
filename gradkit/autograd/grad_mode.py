"""Grad mode: one per-thread flag; these are thin wrappers around it."""
import functools

from .graph import mode


def is_grad_enabled():
    return mode.enabled


class set_grad_enabled:
    """Context manager and decorator that sets grad mode for this thread."""

    def __init__(self, enabled=True):
        self.prev = mode.enabled
        self.mode = bool(enabled)
        mode.enabled = self.mode  # also works as a plain call, as in torch

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        mode.enabled = self.prev
        return False

    def __call__(self, fn):
        m = self.mode
        mode.enabled = self.prev  # used as a decorator: undo the eager set

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = mode.enabled
            mode.enabled = m
            try:
                return fn(*args, **kwargs)
            finally:
                mode.enabled = prev
        return wrapper


class _ModeCtx:
    _value = True

    def __enter__(self):
        self.prev = mode.enabled
        mode.enabled = self._value
        return self

    def __exit__(self, *exc):
        mode.enabled = self.prev
        return False

    def __call__(self, fn):
        v = self._value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = mode.enabled
            mode.enabled = v
            try:
                return fn(*args, **kwargs)
            finally:
                mode.enabled = prev
        return wrapper


class no_grad(_ModeCtx):
    """Disable graph recording in this thread (context manager or decorator)."""
    _value = False


class enable_grad(_ModeCtx):
    """Enable graph recording in this thread (context manager or decorator)."""
    _value = True
