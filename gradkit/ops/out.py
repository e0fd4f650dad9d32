"""The ``out=`` keyword of torch's functions, added to gradkit's public functions by
one wrapper (the differentiable namespace ``F`` used inside VJPs stays unwrapped).

``gk.add(a, b, out=c)`` computes ``a + b`` and writes it into ``c`` in place, as
torch: ``c`` keeps its dtype (the result must be castable to it: no float into an
integer tensor), is resized when its shape differs (with torch's warning when it
was not empty), and its version is bumped. As in torch, ``out=`` does not support
autograd: it raises when grad mode is on and an argument or ``out`` requires grad.
"""
import functools
import inspect
import warnings

from ..dtypes import KIND as _KIND
from ..errors import GradkitError
from ..graph import mode
from ..tensor import Tensor


def write_out(name, result, out):
    """Write ``result`` into ``out`` (see the module docstring); returns ``out``."""
    if out.__class__ is not Tensor:
        raise TypeError(f"gradkit.{name}: out must be a Tensor, got {type(out).__name__}")
    if mode.enabled and (result.requires_grad or out.requires_grad):
        raise GradkitError(
            f"gradkit.{name}: {name}(): functions with out=... arguments don't support automatic "
            "differentiation, but one of the arguments requires grad; call it without out= "
            "(or under gk.no_grad())")
    if out._B is not result._B:
        raise GradkitError(f"gradkit.{name}: expected out tensor to have device "
                           f"{result._B.device_str}, but got {out._B.device_str} instead")
    if _KIND[result.dtype_name] > _KIND[out.dtype_name]:
        raise GradkitError(f"gradkit.{name}: result type {result.dtype_name} can't be cast to "
                           f"the desired output type {out.dtype_name}")
    B = out._B
    arr = result.array
    if arr.dtype != out.array.dtype:
        arr = B.astype(arr, out.array.dtype)
    if tuple(arr.shape) != tuple(out.array.shape):
        if out.numel():
            warnings.warn(
                f"gradkit.{name}: an output with one or more elements was resized since it had "
                f"shape {list(out.array.shape)}, which does not match the required output shape "
                f"{list(arr.shape)}. This behavior is deprecated (as in torch); resize it "
                "with out.resize_(0) first or pass a tensor of the right shape.", UserWarning,
                stacklevel=3)
        out.array = B.copy(arr) if arr is result.array else arr
    else:
        B.setitem(out.array, Ellipsis, arr)
    out._vc[0] += 1
    return out


def with_out(fn, name=None):
    """``fn`` with torch's ``out=`` keyword. The wrapper is written with ``fn``'s
    own parameters (no ``*args, **kwargs`` packing): the function forms are on
    the hot path of small-op chains."""
    name = name or fn.__name__
    f = _lean_wrapper(fn, name)
    if f is None:
        @functools.wraps(fn)
        def f(*args, out=None, **kwargs):
            r = fn(*args, **kwargs)
            return r if out is None else write_out(name, r, out)
    else:
        functools.update_wrapper(f, fn)
    f.__doc__ = (fn.__doc__ or f"gradkit.{name}.") + \
        "\n\n``out=``: write the result into this tensor, as torch (gradkit.ops.out)."
    return f


def _lean_wrapper(fn, name):
    """``def f(<fn's parameters>, *, out=None)`` calling ``fn`` with them, or None
    when the signature has no plain form (then the generic wrapper is used)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params, call, env = [], [], {"_fn": fn, "_write_out": write_out, "_name": name}
    star = False
    for i, p in enumerate(sig.parameters.values()):
        if p.name == "out" or p.name.startswith("_"):
            return None
        d = ""
        if p.default is not p.empty:
            env[f"_d{i}"] = p.default
            d = f"=_d{i}"
        if p.kind is p.POSITIONAL_OR_KEYWORD:
            params.append(p.name + d)
            call.append(p.name)
        elif p.kind is p.VAR_POSITIONAL:
            params.append("*" + p.name)
            call.append("*" + p.name)
            star = True
        elif p.kind is p.KEYWORD_ONLY:
            if not star:
                params.append("*")
                star = True
            params.append(p.name + d)
            call.append(f"{p.name}={p.name}")
        else:   # positional-only or **kwargs
            return None
    if not star:
        params.append("*")
    params.append("out=None")
    src = (f"def {name}({', '.join(params)}):\n"
           f"    r = _fn({', '.join(call)})\n"
           f"    return r if out is None else _write_out(_name, r, out)\n")
    exec(compile(src, f"<gradkit out= wrapper of {name}>", "exec"), env)  # noqa: S102
    return env[name]


#: public functions that take ``out=`` in torch (elementwise, reductions, matmul family)
OUT_NAMES = (
    "add sub subtract mul multiply div divide true_divide pow neg negative exp log sqrt rsqrt "
    "abs absolute sin cos tan tanh sigmoid log1p expm1 reciprocal square erf sign maximum "
    "minimum clamp clip matmul mm bmm outer ger addmm baddbmm eq ne lt le gt ge logical_and "
    "logical_or logical_not sum mean prod cumsum cumprod cat concat concatenate stack where "
    "tril triu logsumexp amax amin argmax argmin gather diag index_select masked_select "
    "clamp_min clamp_max").split()


def out_functions(namespace):
    """{name: wrapped function} for every OUT_NAMES entry found in ``namespace``
    that does not take ``out=`` itself (the unary elementwise ops do: their
    dispatcher writes it, with no extra call frame)."""
    return {n: with_out(namespace[n], n) for n in OUT_NAMES
            if n in namespace and "out" not in inspect.signature(namespace[n]).parameters}
