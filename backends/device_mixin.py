"""What a device backend (CUDA, the fake accelerator) adds to ``Backend``: every
call runs with its own device current, library results keep the input's dtype,
and integer-array indices are checked on the device without a host sync. Mixed
into ``base.Backend``; the CPU backend inherits it unused (NumPy raises itself)."""

import os

_index_checks = ["eager" if os.environ.get("GRADKIT_INDEX_CHECKS", "").lower() == "eager"
                  else "deferred"]


def index_check_mode():
    """'deferred' (default: read at the next synchronizing call) or 'eager'."""
    return _index_checks[0]


def set_index_check_mode(mode):
    if mode not in ("deferred", "eager"):
        raise ValueError(f"gradkit.set_index_checks: mode must be 'deferred' or 'eager', got {mode!r}")
    _index_checks[0] = mode



def _on_device(f, get_current, set_current, index):
    def call(*args, **kwargs):
        prev = get_current()
        if prev == index:
            return f(*args, **kwargs)
        set_current(index)
        try:
            return f(*args, **kwargs)
        finally:
            set_current(prev)
    call.__name__ = getattr(f, "__name__", "kernel")
    call.__wrapped__ = f
    return call


class DeviceMixin:
    #: device index ("cuda:N", "fake:N"); 0 for the CPU
    index = 0

    # ------------------------------------------- the current device (multi-device)
    #: backend methods that touch no device array (not wrapped)
    _NO_DEVICE = frozenset(("dtype_name", "is_floating", "is_integral", "strides"))

    def _enter_device_for_every_call(self, get_current, set_current, index):
        """Make every kernel of this backend run with its own device current:
        CuPy allocates each result (and runs each ufunc, reduction, matmul,
        fused kernel, scatter-add) on the *current* device, whatever the inputs'
        device, so a "cuda:1" backend must make device 1 current for every call.
        Each public callable is replaced by a wrapper that does so and restores
        the previous device (per thread, like CUDA's current device); when the
        device is already current it costs one ``get_current()``."""
        for name in dir(self):
            if name.startswith("_") or name in self._NO_DEVICE:
                continue
            f = getattr(self, name)
            if not callable(f) or isinstance(f, type):
                continue
            setattr(self, name, _on_device(f, get_current, set_current, index))

    def _keep_dtype(self, out, x):
        """``out`` in ``x``'s dtype (a library function that promotes, e.g.
        cupyx.scipy.special.erf maps float16 to float64): every op returns the
        dtype it returns on the CPU."""
        return out if out.dtype == x.dtype else self.xp.astype(out, x.dtype)

    # ------------------------------------------- deferred on-device index checks
    # One persistent device array of int64 flags, one slot per (op, range); a
    # check writes min(flag, seq) into its slot when an index is out of range
    # (seq: a host counter, so the earliest failure wins). Nothing a check
    # allocates outlives it, so checks are safe inside a CUDA graph capture (and
    # a replayed graph's checks land in the same slots).
    _SLOTS = 128
    _NONE = 1 << 62

    def check_index(self, idx, lo, hi, op, ignore=None):
        """Check that every value of the integer array ``idx`` is in [lo, hi)
        (``ignore`` is also allowed), without a host sync: a fused on-device
        reduction records a flag that the next synchronizing call (``to_host``:
        ``.item()``, ``.cpu()``, ``.numpy()``, ``.tolist()``; ``synchronize``)
        reads and raises as ``IndexError`` naming ``op``. In eager mode
        (``gk.set_index_checks("eager")``) the flag is read at once."""
        if idx.shape and 0 in idx.shape:
            return
        msg = (f"gradkit.{op}: index out of range: indices must be in [{lo}, {hi})"
               + (f" (or ignore_index={ignore})" if ignore is not None else ""))
        if index_check_mode() == "eager":
            bad = self._out_of_range(idx, lo, hi, ignore)
            if bool(self._raw_to_host(bad)):
                raise IndexError(msg + f" for an index of shape {tuple(idx.shape)}")
            return
        slots = self.__dict__.setdefault("_slots", {})
        j = slots.get(msg)
        if j is None:
            j = len(slots) if len(slots) < self._SLOTS - 1 else self._SLOTS - 1
            slots[msg] = j
            self.__dict__.setdefault("_slot_msgs", {})[j] = (
                msg if j < self._SLOTS - 1 else "gradkit: an indexing op: index out of range")
        if self.__dict__.get("_flags") is None:
            self._flags = self.full((self._SLOTS,), self._NONE, self.dtypes["int64"])
        self._seq = self.__dict__.get("_seq", 0) + 1
        self._record(j, self._seq, idx, lo, hi, ignore)
        self._pending = True

    @staticmethod
    def _index_msg(idx, lo, hi, op, ignore):
        return (f"gradkit.{op}: index out of range: indices must be in [{lo}, {hi})"
                + (f" (or ignore_index={ignore})" if ignore is not None else "")
                + f" for an index of shape {tuple(idx.shape)}")

    def _out_of_range(self, idx, lo, hi, ignore):
        """A 0-d device bool: some value of ``idx`` is outside [lo, hi)."""
        xp = self.xp
        bad = xp.logical_or(idx < lo, idx >= hi)
        if ignore is not None:
            bad = xp.logical_and(bad, idx != ignore)
        return xp.any(bad)

    def _record(self, j, seq, idx, lo, hi, ignore):
        """flags[j] = min(flags[j], seq if idx is out of range else NONE), on the device."""
        xp = self.xp
        bad = self._out_of_range(idx, lo, hi, ignore)
        cand = xp.astype(bad, self.dtypes["int64"]) * (seq - self._NONE) + self._NONE
        self._flags[j] = xp.minimum(self._flags[j], cand)

    def _raw_to_host(self, a):
        return self.to_host(a)

    def raise_pending(self):
        """Read the index-check flags (one small transfer, at a call that syncs
        anyway) and raise the earliest failure as IndexError. Once armed, every
        sync reads them: a replayed CUDA graph may have written them."""
        flags = self.__dict__.get("_flags")
        if flags is None:
            return
        host = self._raw_to_host(flags)
        j = int(host.argmin())
        if host[j] >= self._NONE:
            return
        # reset in place: a captured CUDA graph keeps writing into this very array
        flags[...] = self._NONE
        raise IndexError(self._slot_msgs[j] + " (reported at this synchronizing call: "
                         "out-of-range indices on the device are checked without a host "
                         "sync; gk.set_index_checks('eager') raises at the op itself)")

    def synchronize(self):
        """Wait for the device, then raise any deferred index error."""
        if self._pending:
            self.raise_pending()

    def strides(self, a):
        """The array's strides in bytes, or None where the namespace hides them."""
        return None

