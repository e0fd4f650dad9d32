"""Tensor printing as torch prints (``torch/_tensor_str.py``'s rules): 4 decimals,
integer-valued floats as ``1.``, scientific notation when the magnitudes span more
than 1e3 or leave [1e-4, 1e8), one width per tensor, 80-column lines, more than
1000 elements summarised with ``...`` (3 items at each edge), suffixes ``device=``,
``dtype=`` (for other than the default float dtype, int64, bool), ``grad_fn=<MulBackward0>`` or
``requires_grad=True``. A cuda tensor's repr copies (a few edge items when
summarised) to the host and so synchronizes.
"""
import math

from .dtypes import get_default_dtype
from .graph import host_sync_violation, mode

#: set by gradkit.nn.module: (is_parameter(t) -> bool, mark_parameter(t) -> t); the
#: repr prints a parameter as torch does, tensor_pickle keeps it a parameter
parameter_kind = [None, None]

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


class _Skip:
    """The ``...`` marker of a summarised dimension."""


SKIP = _Skip()


def _gather(B, a, summarize):
    """Nested lists of Python values (SKIP where summarised), read from the device
    row by row when summarising, in one copy otherwise."""
    if not summarize:
        return B.to_host(a).tolist()
    if a.ndim == 0:
        return B.item(a)
    n = a.shape[0]
    if a.ndim == 1:
        if n > 2 * EDGEITEMS:
            return (B.to_host(a[:EDGEITEMS]).tolist() + [SKIP]
                    + B.to_host(a[n - EDGEITEMS:]).tolist())
        return B.to_host(a).tolist()
    rows = (list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n))
            if n > 2 * EDGEITEMS else list(range(n)))
    return [SKIP if i is None else _gather(B, a[i, ...], True) for i in rows]


def _flat(v, out):
    if isinstance(v, list):
        for x in v:
            _flat(x, out)
    elif v is not SKIP:
        out.append(v)
    return out


class _Formatter:
    """One format for every element (torch's ``_Formatter``)."""

    def __init__(self, values, floating):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        if not floating:
            for v in values:
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        nz = [v for v in values if math.isfinite(v) and v != 0]
        if not nz:
            return
        absv = [abs(v) for v in nz]
        lo, hi = min(absv), max(absv)
        self.int_mode = all(v == math.ceil(v) for v in nz)
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                self.max_width = max(len(f"{v:.{PRECISION}e}") for v in nz)
            else:
                self.max_width = max(len(f"{v:.0f}") + 1 for v in nz)
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            self.max_width = max(len(f"{v:.{PRECISION}e}") for v in nz)
        else:
            self.max_width = max(len(f"{v:.{PRECISION}f}") for v in nz)

    def format(self, v):
        if self.floating:
            if self.sci_mode:
                s = f"{v:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                s = f"{v:.0f}"
                if math.isfinite(v):
                    s += "."
            else:
                s = f"{v:.{PRECISION}f}"
        else:
            s = f"{v}"
        return (self.max_width - len(s)) * " " + s


def _vector(vals, indent, fmt):
    per_line = max(1, int(math.floor((LINEWIDTH - indent) / (fmt.max_width + 2))))
    data = [" ..." if v is SKIP else fmt.format(v) for v in vals]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(vals, ndim, indent, fmt):
    if ndim == 0:
        return fmt.format(vals)
    if ndim == 1:
        return _vector(vals, indent, fmt)
    parts = ["..." if v is SKIP else _nested(v, ndim - 1, indent + 1, fmt) for v in vals]
    return "[" + ("," + "\n" * (ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _body(t, indent):
    B = t._B
    a = t.array
    summarize = t.numel() > THRESHOLD
    vals = _gather(B, a, summarize)
    floating = B.is_floating(a.dtype)
    flat = _flat(vals, []) if a.ndim else [vals]
    if floating:
        flat = [float(v) for v in flat]
    return _nested(vals, a.ndim, indent, _Formatter(flat, floating))


def _add_suffixes(text, suffixes, indent):
    out = [text]
    last = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > LINEWIDTH:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    out.append(")")
    return "".join(out)


def tensor_repr(t):
    if mode.host_sync_guard and t._B.type != "cpu":
        host_sync_violation("repr")
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if t._B.type != "cpu":
        suffixes.append(f"device='{t._B.device_str}'")
    name = t.dtype_name
    try:
        if t.numel() == 0:
            if t.array.ndim != 1:
                suffixes.append(f"size={tuple(t.array.shape)}")
            if name != get_default_dtype().name:
                suffixes.append(f"dtype=gradkit.{name}")
            body = "[]"
        else:
            if name not in (get_default_dtype().name, "int64", "bool"):
                suffixes.append(f"dtype=gradkit.{name}")
            body = _body(t, indent)
    except Exception as e:  # never let repr raise
        body = f"<unprintable: {e}>"
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    text = _add_suffixes(prefix + body, suffixes, indent)
    if parameter_kind[0] is not None and parameter_kind[0](t):
        return "Parameter containing:\n" + text   # as torch prints an nn.Parameter
    return text


def tensor_format(t, spec):
    """``format(t, spec)``: a one-element tensor formats its value (``f"{loss:.4f}"``,
    as torch does for 0-d tensors); an empty spec gives ``str(t)``."""
    if t.array.ndim == 0 or (spec and t.numel() == 1):
        return format(t.item(), spec)
    if not spec:
        return repr(t)
    raise TypeError(f"unsupported format string passed to Tensor.__format__ ({spec!r}: "
                    f"gradkit formats only one-element tensors, this one has shape "
                    f"{tuple(t.array.shape)})")
