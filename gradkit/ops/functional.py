"""``F``: the differentiable namespace. Every op registered with ``@op`` (see
``core.py``), under the same names as the backend kernels, so a VJP written as
``F.mul(g, y)`` runs on raw arrays (F = the backend) or on Tensors (F = this
module, under ``create_graph``). The implementations live in the topic
modules below; this module only gathers them.
"""
# each registers its ops on import
from . import dispatch, compare, elementwise, shape, reductions, indexing, inplace  # noqa: F401
from . import linalg, nnfused, attention, index_ops, torch_ops, convolution, norm  # noqa: F401
from .core import NAMESPACE

globals().update(NAMESPACE)
__all__ = sorted(NAMESPACE)
