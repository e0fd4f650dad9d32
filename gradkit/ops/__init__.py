"""Primitives (forward kernel + VJP, one table) and the differentiable namespace."""
from . import core, functional
from .core import prims

__all__ = ["core", "functional", "prims"]
