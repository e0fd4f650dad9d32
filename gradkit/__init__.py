"""gradkit: reverse-mode automatic differentiation for NumPy and CuPy arrays.

``import gradkit as gk``; PyTorch is the reference for every shared name.
"""
__version__ = "0.1.0"

import sys as _sys


def _load_backends():
    # Installed, ``backends/`` is the subpackage ``gradkit.backends``. From a bare
    # source checkout (no ``pip install``), load it from beside this folder.
    try:
        from . import backends  # noqa: F401
    except ImportError:
        import importlib.util
        import os
        import sys
        root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "backends")
        spec = importlib.util.spec_from_file_location(
            __name__ + ".backends", os.path.join(root, "__init__.py"),
            submodule_search_locations=[root])
        if spec is None:
            raise
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)


_load_backends()

from . import backends  # noqa: E402
from . import autograd  # noqa: E402  (first: it imports the tensor module)
from .tensor import (Tensor, DType, GradkitError, float16, float32, float64, int8, int16,  # noqa: E402
                     int32, int64, uint8, bool_)
from .tensor import bool_ as bool  # noqa: E402,A001  (gk.bool, as torch.bool)
from .device import device, Device  # noqa: E402
from .size import Size  # noqa: E402
from . import cuda  # noqa: E402
from . import viz  # noqa: E402  (graph pictures: gk.viz.to_dot, gk.viz.render)
from .autograd import (no_grad, enable_grad, set_grad_enabled, is_grad_enabled,  # noqa: E402
                       grad, detect_anomaly)
from .reliability import no_host_sync, HostSyncError  # noqa: E402
from .autograd.failures import OutOfMemoryError  # noqa: E402  (a MemoryError naming the op)
from .creation import (tensor, as_tensor, from_numpy, from_dlpack, zeros, ones, empty,  # noqa: E402
                       full, arange, linspace, eye, zeros_like, ones_like, empty_like,
                       full_like, rand, randn, randint, rand_like, randn_like, manual_seed,
                       get_default_dtype, set_default_dtype)
from .ops.functional import (  # noqa: E402
    add, sub, subtract, mul, multiply, div, divide, true_divide, pow, neg, negative,
    exp, log, sqrt, abs, absolute, sin, cos, tanh, sigmoid, relu, sign, maximum, minimum,
    where, clamp, clip, eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_not,
    isfinite, sum, mean, amax, amin, max, min, argmax, argmin, all, any, reshape, view,
    flatten, unsqueeze, squeeze, permute, transpose, swapaxes, t, expand, broadcast_to,
    matmul, mm, bmm, cat, concat, concatenate, stack, clone, detach, masked_fill)
from .ops.more import (  # noqa: E402
    log1p, expm1, rsqrt, reciprocal, square, tan, erf, gelu, silu, softplus, prod, var, std,
    logsumexp, norm, cumsum, softmax, log_softmax, flip, repeat, split, chunk, gather,
    index_add, einsum)
from .ops.torch_ops import (  # noqa: E402  (issue 12; also installs their Tensor methods)
    tril, triu, topk, sort, argsort, msort, multinomial, randperm, roll, unbind, select, outer,
    ger, mm, bmm, addmm, baddbmm, diag, diagonal, trace, cumprod, isclose, allclose, nonzero,
    argwhere, where, view_as, reshape_as, isnan, isinf, numel, take_along_dim, detach_, clamp_,
    fill_, zero_, index_select, masked_select, narrow, clamp_min, clamp_max, is_floating_point)
from .ops import out as _out  # noqa: E402
globals().update(_out.out_functions(globals()))  # torch's out= keyword on the public functions
from . import func  # noqa: E402  (vjp, jvp, jacobian, hessian, hvp)
from . import nn, optim  # noqa: E402  (layers, losses, init; SGD/Adam/AdamW)
from .serialization import save, load  # noqa: E402  (state dicts as .npz, no pickle)

long = int64
half = float16
double = float64
float = float32  # noqa: A001
int = int32  # noqa: A001
from .ops.bounds import set_index_checks, index_checks  # noqa: E402,F401

from . import docstrings as _docstrings  # noqa: E402  (the ops' texts, attached once)
_docstrings.attach(_sys.modules[__name__], Tensor)
_docstrings.attach_tensor(_sys.modules[__name__], Tensor)
