"""Grad mode: one per-thread flag; these are thin wrappers around it."""
import functools
import inspect

from .graph import mode


def _decorate(fn, value):
    """``fn`` running with grad mode ``value``; a generator function gets the mode
    inside the generator, around each resumption (as torch's decorators), and the
    caller's mode between them."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            gen = fn(*args, **kwargs)
            try:
                with _Set(value):
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with _Set(value):
                            gen.close()
                        raise
                    except BaseException as e:
                        with _Set(value):
                            response = gen.throw(e)
                    else:
                        with _Set(value):
                            response = gen.send(request)
            except StopIteration as e:
                return e.value
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        prev = mode.enabled
        mode.enabled = value
        try:
            return fn(*args, **kwargs)
        finally:
            mode.enabled = prev
    return wrapper


class _Set:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.prev = mode.enabled
        mode.enabled = self.value

    def __exit__(self, *exc):
        mode.enabled = self.prev


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
        mode.enabled = self.prev  # used as a decorator: undo the eager set
        return _decorate(fn, self.mode)


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
        return _decorate(fn, self._value)


class no_grad(_ModeCtx):
    """Disable graph recording in this thread (context manager or decorator)."""
    _value = False


class enable_grad(_ModeCtx):
    """Enable graph recording in this thread (context manager or decorator)."""
    _value = True
