"""gradkit: reverse-mode automatic differentiation for NumPy and CuPy arrays.

``import gradkit as gk``; PyTorch is the reference for every shared name.
The modules import each other in one direction only (docs/ARCHITECTURE.md):
errors, dtypes -> graph -> backends, device -> tensor -> creation -> ops ->
autograd -> nn, optim, serialization, viz -> cli.
"""
__version__ = "0.1.0"

import sys as _sys


def _load_backends():
    # Installed, ``backends/`` is the subpackage ``gradkit.backends``. From a bare
    # source checkout (no ``pip install``), load it from beside this folder.
    try:
        from . import backends  # noqa: F401  (the package mapping, or the fallback below)
    except ImportError:
        import importlib.util  # the fallback needs these only here
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
from .errors import GradkitError  # noqa: E402
from .dtypes import (DType, float16, float32, float64, int8, int16, int32, int64,  # noqa: E402
                     uint8, bool_, get_default_dtype, set_default_dtype)
from .dtypes import bool_ as bool  # noqa: E402,A001  (gk.bool, as torch.bool)
from .tensor import Tensor  # noqa: E402
from .device import device, Device  # noqa: E402
from .size import Size  # noqa: E402
from .size import Size  # noqa: E402
from . import cuda  # noqa: E402
from .errors import HostSyncError  # noqa: E402
from .failures import OutOfMemoryError  # noqa: E402  (a MemoryError naming the op)
from .reliability import no_host_sync  # noqa: E402
from .creation import (tensor, as_tensor, from_numpy, from_dlpack, zeros, ones, empty,  # noqa: E402
                       full, arange, linspace, eye, zeros_like, ones_like, empty_like,
                       full_like, rand, randn, randint, rand_like, randn_like, manual_seed)
from . import ops  # noqa: E402
from .ops import out as _out  # noqa: E402
from .ops.bounds import set_index_checks, index_checks  # noqa: E402,F401
from .ops.core import PUBLIC as _PUBLIC, install_methods as _install_methods  # noqa: E402
from . import autograd  # noqa: E402
from .autograd import (no_grad, enable_grad, set_grad_enabled, is_grad_enabled,  # noqa: E402
                       grad, detect_anomaly)

# every op's function form (gk.exp, gk.sum, ...), from the one op table, with
# torch's out= keyword where torch has it (gradkit/ops/out.py)
globals().update(_PUBLIC)
globals().update(_out.out_functions(_PUBLIC))
# and its method form (t.exp(), t + u, ...): installed on Tensor once, here
_install_methods()

from . import viz  # noqa: E402  (graph pictures: gk.viz.to_dot, gk.viz.render)
from . import func  # noqa: E402  (vjp, jvp, jacobian, hessian, hvp)
from . import nn, optim  # noqa: E402  (layers, losses, init; SGD/Adam/AdamW)
from .serialization import save, load  # noqa: E402  (state dicts as .npz, no pickle)

long = int64
half = float16
double = float64
float = float32  # noqa: A001
int = int32  # noqa: A001

# issue 12: torch names gradkit keeps for PyTorch code, the host-side random
# generator, and gradkit.utils.data
from .generator import Generator  # noqa: E402
from . import utils  # noqa: E402
from .creation import set_default_device, get_default_device  # noqa: E402
from .autograd import inference_mode, is_inference_mode_enabled  # noqa: E402

from . import docstrings as _docstrings  # noqa: E402  (the ops' texts, attached once)
_docstrings.attach(_sys.modules[__name__], Tensor)
_docstrings.attach_tensor(_sys.modules[__name__], Tensor)
_docstrings.attach_extra()
