"""Parameters <-> one flat vector (as torch.nn.utils.convert_parameters)."""
from ...ops import functional as _F
from ...tensor import Tensor


def _check_same_device(params, name):
    dev = None
    for p in params:
        if dev is None:
            dev = p.device
        elif p.device != dev:
            raise TypeError(f"gradkit.nn.utils.{name}: found two parameters on different "
                            f"devices, this is currently not supported ({dev} and {p.device})")


def parameters_to_vector(parameters):
    """One 1-D tensor holding every parameter, flattened, in order
    (torch.nn.utils.parameters_to_vector). Differentiable."""
    params = [parameters] if parameters.__class__ is Tensor else list(parameters)
    _check_same_device(params, "parameters_to_vector")
    return _F.cat([_F.reshape(p, (-1,)) for p in params], 0)


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (each
    parameter's ``.data`` becomes a view of ``vec``'s values, as torch).
    Not differentiable."""
    if vec.__class__ is not Tensor:
        raise TypeError(f"expected gradkit.Tensor, but got: {type(vec).__name__}")
    params = [parameters] if parameters.__class__ is Tensor else list(parameters)
    _check_same_device(params, "vector_to_parameters")
    n_total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != n_total:
        raise ValueError(f"gradkit.nn.utils.vector_to_parameters: vec has shape {vec.shape}, "
                         f"but the parameters hold {n_total} values in all")
    i = 0
    for p in params:
        n = p.numel()
        p.data = _F.reshape(vec.detach()[i:i + n], tuple(p.shape))
        i += n
