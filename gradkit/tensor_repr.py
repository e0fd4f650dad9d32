"""Tensor.__repr__ (a host copy: the repr of a cuda tensor synchronizes)."""
from .graph import mode
from .reliability import host_sync_violation


def tensor_repr(t):
    if mode.host_sync_guard and t._B.type != "cpu":
        host_sync_violation("repr")
    try:
        arr = t._B.to_host(t.array)
        body = repr(arr)
        if body.startswith("array("):
            body = body[len("array("):]
            i = body.rfind(", dtype=")
            body = body[:i] if i >= 0 else body[:-1]
        body = body.replace("\n      ", "\n       ")
    except Exception as e:  # never let repr raise
        body = f"<unprintable: {e}>"
    extra = []
    if t._B.type != "cpu":
        extra.append(f"device='{t._B.device_str}'")
    if t.dtype_name not in ("float32", "int64", "bool"):
        extra.append(f"dtype=gradkit.{t.dtype_name}")
    if t.grad_fn is not None:
        extra.append(f"grad_fn=<{t.grad_fn.p.name}Backward>")
    elif t.requires_grad:
        extra.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extra) + ")"
