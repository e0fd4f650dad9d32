"""``gk.optim``: SGD, Adam, AdamW with torch's update formulas, run in place on
each parameter's device (one fused kernel per parameter on CUDA)."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
