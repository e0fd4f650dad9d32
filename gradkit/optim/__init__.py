"""``gk.optim``: SGD, Adam, AdamW with torch's update formulas, run in place on
each parameter's device (one fused kernel per parameter on CUDA)."""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]

# issue 12: more of torch.optim, and the learning-rate schedulers
from .rmsprop import RMSprop, Adagrad, Adadelta  # noqa: E402
from .lbfgs import LBFGS  # noqa: E402
from . import lr_scheduler  # noqa: E402

__all__ += ["RMSprop", "Adagrad", "Adadelta", "LBFGS", "lr_scheduler"]
