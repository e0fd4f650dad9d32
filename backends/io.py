"""Host I/O for ``gk.save`` / ``gk.load``: NumPy ``.npz`` archives, no pickle.

An archive holds one ``.npy`` member per array (written with
``numpy.lib.format.write_array(allow_pickle=False)``, exactly as ``np.savez``
does) plus a ``__gradkit__`` member: the JSON metadata as a uint8 array. Any
NumPy reads it with ``np.load``. Writes are atomic: a temporary file in the
target's folder, fsync, ``os.replace``. Reads use ``np.load(allow_pickle=False)``
and read every member eagerly, so a truncated or corrupt file fails here (CRC
checks included), never later.
"""
import os
import zipfile

import numpy as np

META = "__gradkit__"


class PickledDataError(ValueError):
    """An archive member holds an object array (pickled Python objects)."""


def is_host_array(x):
    return isinstance(x, np.ndarray)


def native_byte_order(a):
    """True when the array's dtype (and every field's) is in the machine's byte order."""
    return a.dtype.isnative


def to_native(a):
    """A copy of ``a`` in the machine's byte order."""
    return a.astype(a.dtype.newbyteorder("="))


def host_scalar(x):
    """A NumPy scalar as a Python number, else None."""
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return x.item()
    return None


def _write_zip(f, arrays, meta):
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.dtype.hasobject:
                raise PickledDataError(f"array {name!r} has dtype object; only numeric "
                                       "arrays are saved (no pickle)")
            with zf.open(name + ".npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array(fp, arr, allow_pickle=False)
        with zf.open(META + ".npy", "w") as fp:
            np.lib.format.write_array(fp, np.frombuffer(meta, dtype=np.uint8),
                                      allow_pickle=False)


# temporaries are named ".<target>.gksave.<host>.<pid>.<random>.tmp": a save killed
# midway leaves one behind, and the next save of the same target on the same host
# removes those whose process is gone
_TMP_TAG = ".gksave."


def _host():
    return (os.uname().nodename if hasattr(os, "uname") else "host").replace(os.sep, "_") or "host"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def _remove_stale_temporaries(folder, base):
    """Delete temporaries of ``base`` left by killed saves (same host, dead pid)."""
    if os.name != "posix":   # os.kill(pid, 0) is not a liveness probe elsewhere
        return
    prefix, host = f".{base}{_TMP_TAG}", _host()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):-len(".tmp")].rsplit(".", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not _alive(pid):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def write_npz(file, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (bytes) to ``file``: a
    path (atomically) or a binary file object."""
    if hasattr(file, "write"):
        _write_zip(file, arrays, meta)
        return
    path = os.path.abspath(os.fspath(file))
    folder, base = os.path.split(path)
    _remove_stale_temporaries(folder, base)
    tmp = os.path.join(folder, f".{base}{_TMP_TAG}{_host()}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            _write_zip(f, arrays, meta)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# a deflated member may expand at most this much (gk.save stores members uncompressed;
# real weights deflate ~1.1x, a zip bomb ~1000x); the same rule holds for the sum of
# all deflated members, with one 1 MiB allowance for the whole archive
_MAX_RATIO = 100
_SLACK = 1 << 20
# a state dict of a 1,000-layer model with Adam's two moments has ~10,000 arrays
_MAX_MEMBERS = 100_000


def _archive_size(file):
    if hasattr(file, "seek"):
        pos = file.tell()
        end = file.seek(0, 2)
        file.seek(pos)
        return end
    return os.path.getsize(file)


def _check_members(file):
    """Refuse hostile archives before NumPy allocates anything: member names
    that try to leave the archive or appear twice, too many members, object
    dtypes, zip bombs (per member and in total), stored members larger than the
    file, and .npy headers whose declared shape needs more bytes than the member
    holds (NumPy would allocate the declared size first)."""
    size = _archive_size(file)
    with zipfile.ZipFile(file) as zf:
        infos = zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ValueError(f"the archive has {len(infos)} members (at most {_MAX_MEMBERS} "
                             "are read); refusing the file")
        seen = set()
        packed = unpacked = stored = 0
        for info in infos:
            if info.filename in seen:
                raise ValueError(f"member {info.filename!r} appears twice in the archive (the "
                                 "last copy would silently win); refusing the file")
            seen.add(info.filename)
            if info.compress_type == zipfile.ZIP_STORED:
                if info.file_size != info.compress_size:
                    raise ValueError(f"stored member {info.filename!r} declares {info.file_size} "
                                     f"bytes but holds {info.compress_size}; refusing the file")
                stored += info.file_size
            else:
                packed += info.compress_size
                unpacked += info.file_size
        if stored + packed > size:
            raise ValueError(f"the members declare {stored + packed} bytes but the file has "
                             f"{size}; refusing the file")
        if unpacked > _MAX_RATIO * packed + _SLACK:
            raise ValueError(f"the compressed members expand {packed} bytes to {unpacked} in "
                             "total (a zip bomb?); refusing the file")
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or "\0" in name or ":" in parts[0]:
                raise ValueError(f"member name {name!r} points outside the archive "
                                 "(a path trick); refusing the file")
            if not name.endswith(".npy"):
                raise ValueError(f"unexpected member {name!r} (not a .npy array)")
            if info.compress_type != zipfile.ZIP_STORED and \
                    info.file_size > _MAX_RATIO * info.compress_size + _SLACK:
                raise ValueError(f"member {name!r} expands {info.compress_size} bytes to "
                                 f"{info.file_size} (a zip bomb?); refusing the file")
            with zf.open(info) as fp:
                version = np.lib.format.read_magic(fp)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(fp)
                if dtype.hasobject:
                    raise PickledDataError(f"member {name!r} holds an object array "
                                           "(pickled Python objects)")
                n = 1
                for s in shape:
                    n *= s
                declared, held = n * dtype.itemsize, info.file_size - fp.tell()
                if declared != held:
                    raise ValueError(f"member {name!r} declares shape {shape} of {dtype} "
                                     f"({declared} bytes) but holds {held} bytes")


def _head(file, n=8):
    if hasattr(file, "read"):
        file.seek(0)
        b = file.read(n)
        file.seek(0)
        return b
    with open(file, "rb") as f:
        return f.read(n)


def read_npz(file, check_meta=None):
    """(arrays, meta bytes) from an archive written by ``write_npz``. Raises
    ``PickledDataError`` for pickles and object arrays, FileNotFoundError and
    friends as they are, and ValueError/zipfile.BadZipFile/EOFError/OSError for
    anything malformed or hostile (see ``_check_members``). ``check_meta(meta,
    names)`` runs after the metadata member is read and before any other member
    is: it may refuse the file (e.g. a member the metadata does not describe)."""
    if zipfile.is_zipfile(file):
        if hasattr(file, "seek"):
            file.seek(0)
        _check_members(file)
    else:
        head = _head(file)
        if head[:1] == b"\x80":   # pickle protocol 2+ (torch.save's legacy format too)
            raise PickledDataError("the file holds pickled Python objects")
        if head.startswith(b"\x93NUMPY"):
            raise ValueError("it is a single .npy array, not an .npz archive")
        raise ValueError(f"it is not an .npz (zip) archive: it starts with {head!r}")
    if hasattr(file, "seek"):
        file.seek(0)
    try:
        z = np.load(file, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise PickledDataError("the file holds pickled Python objects") from None
        raise
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive (a single .npy array?)")
    arrays = {}
    with z:
        if META not in z.files:
            raise ValueError(f"no {META!r} metadata member: not written by gk.save")
        meta = z[META]
        if meta.dtype != np.uint8 or meta.ndim != 1:
            raise ValueError(f"the {META!r} member is malformed")
        if check_meta is not None:
            check_meta(meta.tobytes(), frozenset(z.files) - {META})
        for name in z.files:
            if name == META:
                continue
            try:
                arrays[name] = z[name]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise PickledDataError(f"member {name!r} holds an object array "
                                           "(pickled Python objects)") from None
                raise
    return arrays, meta.tobytes()
