"""``gradkit.utils.data`` (as ``torch.utils.data``)."""
from .distributed import DistributedSampler  # noqa: F401
