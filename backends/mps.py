"""``gk.backends.mps`` (as ``torch.backends.mps``): gradkit has no Apple
Metal backend, so both answers are False. Imports nothing."""


def is_available():
    """False: gradkit has no MPS (Apple Metal) device."""
    return False


def is_built():
    """False: gradkit is not built with MPS."""
    return False
