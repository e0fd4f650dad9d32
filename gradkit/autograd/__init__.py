"""Autograd: the engine, grad mode, anomaly detection."""
from .engine import backward, grad
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled
from .anomaly import detect_anomaly, set_detect_anomaly, is_anomaly_enabled, AnomalyError
from ..graph import Node
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .function import Function, FunctionCtx, once_differentiable
from .gc_policy import set_gc_policy, gc_policy_enabled

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "AnomalyError", "Node", "gradcheck", "gradgradcheck", "GradcheckError",
           "Function", "FunctionCtx", "once_differentiable", "set_gc_policy",
           "gc_policy_enabled"]

# torch names kept for PyTorch code (issue 12)
from .variable import Variable  # noqa: E402
from .inference import inference_mode, is_inference_mode_enabled  # noqa: E402

__all__ += ["Variable", "inference_mode", "is_inference_mode_enabled"]
