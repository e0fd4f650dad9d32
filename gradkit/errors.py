"""gradkit's error type: the ground floor (imports nothing from gradkit)."""


class GradkitError(RuntimeError):
    """An error raised by gradkit for bad input; the message names the op."""
