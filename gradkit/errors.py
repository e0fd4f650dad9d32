"""gradkit's error type: the ground floor (imports nothing from gradkit)."""


class GradkitError(RuntimeError):
    """An error raised by gradkit for bad input; the message names the op."""


class HostSyncError(RuntimeError):
    """A device tensor was copied to the host inside ``gk.no_host_sync()`` (or, on
    the fake accelerator, a device array was converted to a host value inside
    gradkit). One class for both: ``gradkit.HostSyncError``."""
