"""Anomaly mode: record where each node was created (only while the mode is on,
so it costs nothing otherwise) and raise when a backward produces NaN or inf."""
from ..graph import FlagContext, mode


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


class detect_anomaly(FlagContext):
    """Context manager/decorator: record creation sites and check every backward
    gradient for NaN/inf."""
    flag = "anomaly"

    def __init__(self, check_nan=True):
        super().__init__(bool(check_nan))
        self.check_nan = check_nan


def set_detect_anomaly(mode_on):
    mode.anomaly = bool(mode_on)


def is_anomaly_enabled():
    return mode.anomaly
