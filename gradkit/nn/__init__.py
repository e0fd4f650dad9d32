"""``gk.nn``: modules, parameters, layers; ``gk.nn.functional``; ``gk.nn.init``.

``nn.Parameter(data)`` returns a plain leaf Tensor marked as a parameter (not a
Tensor subclass: see ``gradkit/nn/module.py``).
"""
from . import functional, init, rnn_functional
from .module import Module, Parameter
from .layers import (Identity, Linear, Embedding, LayerNorm, Dropout, ReLU, GELU, Tanh,
                     Sigmoid, Softmax, LogSoftmax, Sequential, ModuleList, ModuleDict)

__all__ = ["functional", "init", "Module", "Parameter", "Identity", "Linear", "Embedding",
           "LayerNorm", "Dropout", "ReLU", "GELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
           "Sequential", "ModuleList", "ModuleDict"]

# containers, activation and loss modules, hooks, utilities (issue 12)
from . import utils  # noqa: E402
from .container import Flatten, Unflatten, ParameterList, ParameterDict  # noqa: E402
from .activation import *  # noqa: E402,F401,F403
from .activation import __all__ as _act_all  # noqa: E402
from .loss import *  # noqa: E402,F401,F403
from .loss import __all__ as _loss_all  # noqa: E402

__all__ += ["utils", "Flatten", "Unflatten", "ParameterList", "ParameterDict"] + _act_all + _loss_all

# recurrent layers (issue 13)
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell  # noqa: E402

__all__ += ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
from .transformer import (MultiheadAttention, TransformerEncoderLayer,  # noqa: E402
                          TransformerDecoderLayer, TransformerEncoder, TransformerDecoder,
                          Transformer)

__all__ += ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
            "TransformerEncoder", "TransformerDecoder", "Transformer"]

from . import parallel  # noqa: E402  (DistributedDataParallel; needs mpi4py only when used)

# image layers (issue 13): convolution, pooling, resampling, normalization
from .conv import (Conv1d, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d,  # noqa: E402
                   AdaptiveAvgPool2d, AdaptiveMaxPool2d, PixelShuffle, PixelUnshuffle, Upsample)
from .norm import BatchNorm1d, BatchNorm2d, InstanceNorm2d, GroupNorm  # noqa: E402

__all__ += ["Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
            "AdaptiveMaxPool2d", "PixelShuffle", "PixelUnshuffle", "Upsample", "BatchNorm1d",
            "BatchNorm2d", "InstanceNorm2d", "GroupNorm"]
