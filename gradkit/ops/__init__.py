"""The ops: the registry and recording path (``core``), the topic modules, and
``functional``, the differentiable namespace ``F`` that gathers them."""
from . import core, functional

__all__ = ["core", "functional"]
