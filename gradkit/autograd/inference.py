"""``gk.inference_mode`` (as ``torch.inference_mode``): a context manager and
decorator that turns graph recording off, like ``no_grad``. torch also marks
the tensors made inside as inference tensors; gradkit's are ordinary tensors
that never record history (the same results, one restriction fewer)."""
import functools
import inspect
import threading

from .grad_mode import no_grad

_local = threading.local()


def _depth():
    return getattr(_local, "depth", 0)


class inference_mode:
    """``with gk.inference_mode():``, ``@gk.inference_mode()`` or
    ``@gk.inference_mode``; ``inference_mode(False)`` changes nothing."""

    def __new__(cls, mode=True):
        if callable(mode):  # used as a bare decorator: @inference_mode
            return cls(True)(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self._inner = []  # one no_grad per nested entry of this object

    def __enter__(self):
        if self.mode:
            ctx = no_grad()
            ctx.__enter__()
            self._inner.append(ctx)
            _local.depth = _depth() + 1
        return self

    def __exit__(self, *exc):
        if self.mode:
            _local.depth = _depth() - 1
            self._inner.pop().__exit__(*exc)
        return False

    def __call__(self, fn):
        if not self.mode:
            return fn
        if inspect.isgeneratorfunction(fn):  # the mode holds inside the generator only
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with inference_mode(True):
                        response = gen.send(None)
                    while True:
                        try:
                            request = yield response
                        except GeneratorExit:
                            with inference_mode(True):
                                gen.close()
                            raise
                        except BaseException as e:
                            with inference_mode(True):
                                response = gen.throw(e)
                        else:
                            with inference_mode(True):
                                response = gen.send(request)
                except StopIteration as e:
                    return e.value
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(True):
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)(self.mode)


def is_inference_mode_enabled():
    """True inside ``inference_mode()`` (this thread)."""
    return _depth() > 0
