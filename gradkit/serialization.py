"""``gk.save`` / ``gk.load``: state dicts as NumPy ``.npz`` archives, no pickle.

What can be saved: tensors, NumPy arrays, Python numbers, strings, None, and
dicts / lists / tuples of them, nested (a model's ``state_dict()``, an
optimizer's, or a dict holding both and an epoch counter). Each array is one
archive member named by its path of keys (``"model/fc1.weight"``,
``"optim/state/0/exp_avg"``); the structure, the key types (int keys stay int)
and every non-array value are stored as JSON in a ``__gradkit__`` member. No
code is ever pickled, and loading refuses object arrays.

The archive I/O (the only NumPy use) lives in ``gradkit.backends.io``.
"""
import json
import math
import os

from .backends import io as _io
from .tensor import Tensor, GradkitError
from .creation import _backend
from .ops.core import const

_FORMAT = "gradkit.save"
_VERSION = 1
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _escape(key):
    s = str(key)
    if s in (".", ".."):  # never a path component that climbs out (see io._check_members)
        return s.replace(".", "%2E")
    if s and all(c in _SAFE for c in s):
        return s
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                   for c in s) or "%"


def _json_key(k, where):
    if k is None or isinstance(k, (str, bool, int, float)):
        return k
    v = _io.host_scalar(k)
    if v is not None:
        return v
    raise TypeError(f"gk.save: dict keys must be str, int, float, bool or None; got a "
                    f"{type(k).__name__} key at {where or 'the top level'}")


def _number(x):
    if isinstance(x, float) and not math.isfinite(x):
        return {"__float__": repr(x)}  # 'nan', 'inf', '-inf': strict JSON has none
    return x


class _Writer:
    def __init__(self):
        self.arrays = {}

    def name(self, path):
        base = "/".join(_escape(k) for k in path) or "tensor"
        name, i = base, 1
        while name in self.arrays or name == _io.META:
            i += 1
            name = f"{base}~{i}"
        return name

    def encode(self, x, path):
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            return _number(x)
        if x.__class__ is Tensor:
            name = self.name(path)
            self.arrays[name] = x._B.to_host(x.array)
            return {"__tensor__": name, "dtype": x.dtype_name, "device": str(x.device),
                    "requires_grad": bool(x.requires_grad)}
        if _io.is_host_array(x):
            name = self.name(path)
            self.arrays[name] = x
            return {"__ndarray__": name}
        v = _io.host_scalar(x)
        if v is not None:
            return _number(v)
        where = "/".join(str(k) for k in path)
        if isinstance(x, dict):
            return {"__dict__": [[_json_key(k, where), self.encode(v, path + (k,))]
                                 for k, v in x.items()]}
        if isinstance(x, (list, tuple)):
            items = [self.encode(v, path + (i,)) for i, v in enumerate(x)]
            return {"__tuple__" if isinstance(x, tuple) else "__list__": items}
        raise TypeError(
            f"gk.save: can't save a {type(x).__name__} (at {where or 'the top level'}): only "
            "tensors, NumPy arrays, numbers, strings, None and dicts/lists/tuples of them are "
            "saved; gradkit never pickles objects or code")


def save(obj, f):
    """Save ``obj`` (typically a state dict, or a dict of state dicts) to ``f``
    (a path, written atomically, or a binary file object) as an ``.npz``."""
    w = _Writer()
    tree = w.encode(obj, ())
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": tree},
                      allow_nan=False, separators=(",", ":")).encode("utf-8")
    try:
        _io.write_npz(f, w.arrays, meta)
    except _io.PickledDataError as e:
        raise TypeError(f"gk.save: {e}") from None


def _describe(f):
    return repr(os.fspath(f)) if isinstance(f, (str, bytes, os.PathLike)) else repr(f)


def _target_device(saved, map_location):
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return map_location.get(saved, saved)
    return str(map_location) if not isinstance(map_location, str) else map_location


#: metadata deeper than this is refused (a state dict nests 3-4 levels; JSON and the
#: decoder would hit Python's recursion limit near 1,000)
_MAX_DEPTH = 100
_SUPPORTED = frozenset(("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                        "uint8", "bool"))


def _parse_meta(meta, bad):
    """The metadata document, checked for a gradkit header; ``bad(what)`` makes the error."""
    try:
        doc = json.loads(meta.decode("utf-8"))
    except RecursionError:
        raise bad(f"its metadata is nested too deeply (more than {_MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"its metadata is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or "tree" not in doc:
        raise bad("its metadata has no gradkit header")
    if not isinstance(doc.get("version"), int) or doc["version"] > _VERSION:
        raise bad(f"format version {doc.get('version')!r} is newer than this gradkit "
                  f"reads ({_VERSION}); upgrade gradkit")
    return doc


def _named_arrays(tree, bad):
    """The array names the metadata tree refers to (iterative, depth-limited)."""
    names = []
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise bad(f"its metadata is nested too deeply (more than {_MAX_DEPTH} levels)")
        if isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, dict):
            for k in ("__tensor__", "__ndarray__"):
                if isinstance(node.get(k), str):
                    names.append(node[k])
            for k in ("__dict__", "__list__", "__tuple__"):
                if k in node:
                    stack.append((node[k], depth + 1))
    return names


class _Reader:
    def __init__(self, arrays, map_location, fname):
        self.arrays = arrays
        self.map_location = map_location
        self.fname = fname
        self.used = set()

    def bad(self, what):
        return GradkitError(f"gk.load: {self.fname} is not a valid gradkit checkpoint: {what}")

    def array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise self.bad(f"the array {name!r} named in its metadata is missing")
        self.used.add(name)
        return self.arrays[name]

    def decode(self, node, depth=0):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if depth > _MAX_DEPTH:
            raise self.bad(f"its metadata is nested too deeply (more than {_MAX_DEPTH} levels)")
        depth += 1
        if isinstance(node, list):
            raise self.bad("malformed metadata (a bare list)")
        if not isinstance(node, dict) or len(node) == 0:
            raise self.bad("malformed metadata")
        if "__tensor__" in node:
            return self.tensor(node)
        if "__ndarray__" in node:
            return self.array(node["__ndarray__"])
        if "__float__" in node:
            return float(node["__float__"])
        if "__dict__" in node:
            return {k: self.decode(v, depth) for k, v in node["__dict__"]}
        if "__list__" in node:
            return [self.decode(v, depth) for v in node["__list__"]]
        if "__tuple__" in node:
            return tuple(self.decode(v, depth) for v in node["__tuple__"])
        raise self.bad(f"unknown metadata node with keys {sorted(node)}")

    def tensor(self, node):
        arr = self.array(node["__tensor__"])
        dtype = node.get("dtype")
        if dtype not in _SUPPORTED:
            raise self.bad(f"tensor {node['__tensor__']!r} has dtype {dtype!r}, which gradkit "
                           f"does not support (one of {', '.join(sorted(_SUPPORTED))})")
        if str(arr.dtype) != dtype:
            raise self.bad(f"array {node['__tensor__']!r} has dtype {arr.dtype}, its metadata "
                           f"says {dtype}")
        saved = node.get("device", "cpu")
        dev = _target_device(saved, self.map_location)
        try:
            B = _backend(dev)
        except RuntimeError as e:
            raise GradkitError(
                f"gk.load: {self.fname} holds tensors saved on {saved}, which can't be used "
                f"here ({e}); pass map_location='cpu' (or another device) to gk.load") from None
        t = const(B, B.from_host(arr))
        if node.get("requires_grad") and B.is_floating(t.array.dtype):
            t.requires_grad_(True)
        return t


def load(f, map_location=None, weights_only=True):
    """Load what ``save`` wrote. Tensors go back to the device they were saved
    from, or to ``map_location``: a device (``"cpu"``, ``"cuda:0"``) for all of
    them, or a dict mapping saved device names to new ones. A missing file
    raises FileNotFoundError; a truncated or corrupt one, or one holding
    pickled objects, raises an error naming the file. ``weights_only`` is
    accepted for torch compatibility; loading never runs pickled code."""
    fname = _describe(f)
    r = _Reader(None, map_location, fname)

    def check_meta(meta, members):
        # every member must be named by the metadata (and vice versa) before any is read
        named = set(_named_arrays(_parse_meta(meta, r.bad)["tree"], r.bad))
        extra = sorted(members - named)
        if extra:
            raise r.bad(f"it holds arrays its metadata doesn't describe: {extra[:5]}")
        missing = sorted(named - members)
        if missing:
            raise r.bad(f"the arrays {missing[:5]} named in its metadata are missing")

    try:
        arrays, meta = _io.read_npz(f, check_meta)
    except (FileNotFoundError, IsADirectoryError, PermissionError, GradkitError):
        raise
    except _io.PickledDataError as e:
        raise GradkitError(f"gk.load: {fname}: {e}; gradkit refuses to unpickle data (it can "
                           "run arbitrary code). Save state dicts with gk.save, which stores "
                           "only arrays, numbers and strings") from None
    except Exception as e:
        raise GradkitError(f"gk.load: can't read {fname}: it is truncated, corrupt, or not a "
                           f"gradkit .npz checkpoint ({type(e).__name__}: {e})") from None
    r.arrays = arrays
    doc = _parse_meta(meta, r.bad)
    try:
        out = r.decode(doc["tree"])
    except GradkitError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise r.bad(f"malformed metadata ({type(e).__name__}: {e})") from None
    extra = sorted(set(arrays) - r.used)
    if extra:  # gk.save writes exactly the arrays its metadata names
        raise r.bad(f"it holds arrays its metadata doesn't describe: {extra[:5]}")
    return out
