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


def write_npz(file, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and ``meta`` (bytes) to ``file``: a
    path (atomically) or a binary file object."""
    if hasattr(file, "write"):
        _write_zip(file, arrays, meta)
        return
    path = os.path.abspath(os.fspath(file))
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
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
# real weights deflate ~1.1x, a zip bomb ~1000x)
_MAX_RATIO = 100


def _check_members(file):
    """Refuse hostile archives before NumPy allocates anything: member names
    that try to leave the archive, object dtypes, zip bombs, and .npy headers
    whose declared shape needs more bytes than the member holds (NumPy would
    allocate the declared size first)."""
    with zipfile.ZipFile(file) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or "\0" in name or ":" in parts[0]:
                raise ValueError(f"member name {name!r} points outside the archive "
                                 "(a path trick); refusing the file")
            if not name.endswith(".npy"):
                raise ValueError(f"unexpected member {name!r} (not a .npy array)")
            if info.compress_type != zipfile.ZIP_STORED and \
                    info.file_size > _MAX_RATIO * info.compress_size + (1 << 20):
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


def read_npz(file):
    """(arrays, meta bytes) from an archive written by ``write_npz``. Raises
    ``PickledDataError`` for object arrays, FileNotFoundError and friends as
    they are, and ValueError/zipfile.BadZipFile/EOFError/OSError for anything
    malformed or hostile (see ``_check_members``)."""
    if zipfile.is_zipfile(file):
        if hasattr(file, "seek"):
            file.seek(0)
        _check_members(file)
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
        for name in z.files:
            try:
                arrays[name] = z[name]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise PickledDataError(f"member {name!r} holds an object array "
                                           "(pickled Python objects)") from None
                raise
    meta = arrays.pop(META, None)
    if meta is None:
        raise ValueError(f"no {META!r} metadata member: not written by gk.save")
    if meta.dtype != np.uint8 or meta.ndim != 1:
        raise ValueError(f"the {META!r} member is malformed")
    return arrays, meta.tobytes()
