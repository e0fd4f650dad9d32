"""``gk.backends.cudnn`` (as ``torch.backends.cudnn``): settable flags that
PyTorch programs assign (``benchmark``, ``deterministic``, ``enabled``,
``allow_tf32``). gradkit calls no cuDNN routine itself, so the flags are
kept for those programs and change nothing; ``is_available()`` is False."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available():
    """False: gradkit does not call cuDNN."""
    return False


def version():
    """None: no cuDNN library in use (torch returns None without cuDNN too)."""
    return None
