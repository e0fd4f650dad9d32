"""The ``out=`` keyword of torch's functions, added to gradkit's public functions by
one wrapper (the differentiable namespace ``F`` used inside VJPs stays unwrapped).

``gk.add(a, b, out=c)`` computes ``a + b`` and writes it into ``c`` in place, as
torch: ``c`` keeps its dtype (the result must be castable to it: no float into an
integer tensor), is resized when its shape differs (with torch's warning when it
was not empty), and its version is bumped. As in torch, ``out=`` does not support
autograd: it raises when grad mode is on and an argument or ``out`` requires grad.
"""
import functools
import warnings

from ..autograd.graph import mode
from ..tensor import Tensor, GradkitError

_KIND = {"bool": 0, "uint8": 1, "int8": 1, "int16": 1, "int32": 1, "int64": 1,
         "float16": 2, "float32": 2, "float64": 2}


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
    """``fn`` with torch's ``out=`` keyword."""
    name = name or fn.__name__

    @functools.wraps(fn)
    def f(*args, out=None, **kwargs):
        r = fn(*args, **kwargs)
        return r if out is None else write_out(name, r, out)
    f.__doc__ = (fn.__doc__ or f"gradkit.{name}.") + \
        "\n\n``out=``: write the result into this tensor, as torch (gradkit.ops.out)."
    return f


#: public functions that take ``out=`` in torch (elementwise, reductions, matmul family)
OUT_NAMES = (
    "add sub subtract mul multiply div divide true_divide pow neg negative exp log sqrt rsqrt "
    "abs absolute sin cos tan tanh sigmoid log1p expm1 reciprocal square erf sign maximum "
    "minimum clamp clip matmul mm bmm outer ger addmm baddbmm eq ne lt le gt ge logical_and "
    "logical_or logical_not sum mean prod cumsum cumprod cat concat concatenate stack where "
    "tril triu logsumexp amax amin argmax argmin gather diag index_select masked_select "
    "clamp_min clamp_max").split()


def out_functions(namespace):
    """{name: wrapped function} for every OUT_NAMES entry found in ``namespace``."""
    return {n: with_out(namespace[n], n) for n in OUT_NAMES if n in namespace}
