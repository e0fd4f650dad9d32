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
