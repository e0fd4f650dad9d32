"""Shape arithmetic shared by every floor (it imports nothing of gradkit, so the
backends may use it too)."""


def broadcast_shapes(a, b):
    """NumPy's broadcast of two shapes as a tuple, or None when they don't
    broadcast (the caller names its op in the error)."""
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(out)
