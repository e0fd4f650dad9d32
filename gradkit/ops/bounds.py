"""Bounds checks of integer-array indices that cost no host sync.

NumPy raises ``IndexError`` for an out-of-range integer-array index; CuPy wraps
it around (advanced indexing, ``cupyx.scatter_add``) and a one-hot comparison
(cross-entropy targets) silently drops it. Reading a device flag at every op
would synchronize the host with the device, so on a device the check is a fused
on-device reduction whose flag the backend reads at the next point that
synchronizes anyway (``.item()``, ``.numpy()``, ``.tolist()``, ``.cpu()``,
``gk.cuda.synchronize()``) and raises as ``IndexError`` naming the op
(``Backend.check_index``). ``gk.set_index_checks("eager")`` (or
``GRADKIT_INDEX_CHECKS=eager``) reads it at the op itself, for debugging.
On the CPU the check is free and raises at once.
"""
from .. import backends as _backends


def set_index_checks(mode="deferred"):
    """How gradkit checks integer-array indices on a device (CUDA, the fake
    accelerator): ``"deferred"`` (default; no host sync: an out-of-range index
    raises ``IndexError`` naming the op at the next synchronizing call) or
    ``"eager"`` (raise at the op; each indexing op then waits for the device).
    The CPU always checks at once. No torch counterpart (torch asserts on the
    device and loses the CUDA context)."""
    _backends.set_index_check_mode(mode)


def index_checks():
    """The current mode of ``set_index_checks``: 'deferred' or 'eager'."""
    return _backends.index_check_mode()


def check_index_arrays(x, raw, op):
    """Check every integer-array index of the normalized index ``raw`` (as
    ``functional._norm_index`` returns it) against the dim of ``x`` it indexes.
    On the CPU NumPy's own indexing raises, so nothing is done there."""
    B = x._B
    if B.type == "cpu":
        return
    shp = x.array.shape
    bool_dt = B.bool_dtype
    # dims each entry consumes: ints/slices/integer arrays 1, bool masks ndim, None 0
    n_explicit = 0
    for k in raw:
        if k is None or k is Ellipsis:
            continue
        dt = getattr(k, "dtype", None)
        n_explicit += k.ndim if (dt is not None and dt == bool_dt) else 1
    d = 0
    for k in raw:
        if k is None:
            continue
        if k is Ellipsis:
            d += len(shp) - n_explicit
            continue
        dt = getattr(k, "dtype", None)
        if dt is not None and dt == bool_dt:
            d += k.ndim
            continue
        if dt is not None and d < len(shp):
            s = shp[d]
            B.check_index(k, -s, s, op)
        d += 1
