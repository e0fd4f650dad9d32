"""``default_collate`` and ``default_convert`` (as torch.utils.data's): a
list of samples becomes one batch of gradkit tensors, recursing through
tuples, lists, dicts and namedtuples. NumPy arrays and scalars are
recognised by their array interface (gradkit/ never imports numpy)."""
import collections.abc
import re

from ... import creation
from ...ops import functional as _F
from ...tensor import Tensor

__all__ = ["default_collate", "default_convert"]

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")
_STR_DTYPE = re.compile(r"[SaUO]")


def _is_numpy(x):
    return (type(x).__module__ == "numpy" and hasattr(x, "dtype") and hasattr(x, "shape"))


def default_convert(data):
    """NumPy arrays (not of strings/objects) become tensors, recursively; the
    rest is returned unchanged (what DataLoader does when ``batch_size=None``)."""
    if data.__class__ is Tensor:
        return data
    if _is_numpy(data):
        if _STR_DTYPE.search(data.dtype.str) is not None:
            return data
        return creation.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            return type(data)({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def default_collate(batch):
    """Stack a list of samples along a new first dimension: tensors with
    ``gk.stack``, NumPy arrays as tensors, Python floats as float64, ints as
    int64, bools as bool; strings stay a list; dicts, tuples (returned as
    lists, as torch) and namedtuples are collated field by field."""
    elem = batch[0]
    if elem.__class__ is Tensor:
        return _F.stack(list(batch), 0)
    if _is_numpy(elem):
        if _STR_DTYPE.search(elem.dtype.str) is not None:
            raise TypeError(_ERR.format(elem.dtype))
        if elem.shape == ():  # a NumPy scalar
            return creation.as_tensor([b.item() for b in batch], dtype=str(elem.dtype))
        return _F.stack([creation.as_tensor(b) for b in batch], 0)
    if isinstance(elem, bool):
        return creation.tensor(list(batch))
    if isinstance(elem, float):
        return creation.tensor(list(batch), dtype="float64")
    if isinstance(elem, int):
        return creation.tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        out = {k: default_collate([d[k] for d in batch]) for k in elem}
        try:
            return type(elem)(out)
        except TypeError:
            return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(e) != n for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [default_collate(s) for s in transposed]
        try:
            return type(elem)([default_collate(s) for s in transposed])
        except TypeError:
            return [default_collate(s) for s in transposed]
    raise TypeError(_ERR.format(type(elem)))
