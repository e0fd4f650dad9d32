"""Anomaly mode: record where each node was created (only while the mode is on,
so it costs nothing otherwise) and raise when a backward produces NaN or inf."""
import os
import sys

from .graph import mode

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def creation_site():
    """'file:line in function' of the innermost frame outside gradkit."""
    f = sys._getframe(1)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


class AnomalyError(RuntimeError):
    """A NaN or inf appeared in a backward."""


def check_grads(node, grads):
    B = node.B
    for i, g in enumerate(grads):
        if g is None:
            continue
        arr = g.array if hasattr(g, "_B") else g
        if not B.is_floating(arr.dtype):
            continue
        ok = B.item(B.all(B.isfinite(arr)))  # anomaly mode syncs by design
        if not ok:
            where = node.site or "<site not recorded: enable detect_anomaly before the forward>"
            raise AnomalyError(
                f"gradkit.detect_anomaly: Function '{node.name()}' returned nan or inf values "
                f"in its {i}th output (the gradient for input {i}). The forward op "
                f"'{node.p.name}' was "
                f"created at {where}")


class detect_anomaly:
    """Context manager/decorator: record creation sites and check every backward
    gradient for NaN/inf."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = mode.anomaly
        mode.anomaly = bool(self.check_nan)
        return self

    def __exit__(self, *exc):
        mode.anomaly = self.prev
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with detect_anomaly(self.check_nan):
                return fn(*a, **k)
        return wrapper


def set_detect_anomaly(mode_on):
    mode.anomaly = bool(mode_on)


def is_anomaly_enabled():
    return mode.anomaly
