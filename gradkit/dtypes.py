"""Dtypes, torch's type promotion and the default float dtype: names only, no
arrays (the ground floor, beside ``errors``)."""


class DType:
    """A gradkit dtype (``gk.float32`` ...). Compares equal to its name and to
    NumPy/CuPy dtype objects of the same name."""
    __slots__ = ("name", "is_floating_point", "itemsize")

    def __init__(self, name, is_floating_point, itemsize):
        self.name = name
        self.is_floating_point = is_floating_point
        self.itemsize = itemsize

    def __repr__(self):
        return f"gradkit.{self.name}"

    def __eq__(self, other):
        if isinstance(other, DType):
            return other.name == self.name
        try:
            return dtype_name(other) == self.name
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.name)


float16 = DType("float16", True, 2)
float32 = DType("float32", True, 4)
float64 = DType("float64", True, 8)
int8 = DType("int8", False, 1)
int16 = DType("int16", False, 2)
int32 = DType("int32", False, 4)
int64 = DType("int64", False, 8)
uint8 = DType("uint8", False, 1)
bool_ = DType("bool", False, 1)
DTYPES = {d.name: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool_)}
DTYPES["half"], DTYPES["float"], DTYPES["double"] = float16, float32, float64
DTYPES["long"], DTYPES["int"] = int64, int32


def dtype_name(dt):
    """The canonical name of anything that names a dtype."""
    if isinstance(dt, DType):
        return dt.name
    if isinstance(dt, str):
        n = dt
    elif dt is float:
        return "float64"
    elif dt is int:
        return "int64"
    elif dt is bool:
        return "bool"
    else:
        n = getattr(dt, "name", None)
        if not isinstance(n, str):
            n = getattr(dt, "__name__", None)
        if not isinstance(n, str):
            n = str(dt).rpartition(".")[2].strip("'>)")
    n = n.rpartition(".")[2]
    if n == "bool_":
        n = "bool"
    d = DTYPES.get(n)
    if d is None:
        raise TypeError(f"gradkit: unsupported dtype {dt!r}; use one of "
                        "float16, float32, float64, int32, int64, bool")
    return d.name


def to_dtype(dt):
    """Anything naming a dtype -> gradkit DType."""
    return DTYPES[dtype_name(dt)]


# ------------------------------------------------------------ promotion
KIND = {"bool": 0, "uint8": 1, "int8": 1, "int16": 1, "int32": 1, "int64": 1,
        "float16": 2, "float32": 2, "float64": 2}
_RANK = {"bool": 0, "uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5,
         "float16": 6, "float32": 7, "float64": 8}


def result_dtype_name(a, b):
    """torch's promotion for two dtype names: the higher category wins; within a
    category, the wider type."""
    ka, kb = KIND[a], KIND[b]
    if ka != kb:
        return a if ka > kb else b
    if ka == 1 and {a, b} == {"uint8", "int8"}:
        return "int16"   # the smallest type that holds both
    return a if _RANK[a] >= _RANK[b] else b


def common_dtype_name(names):
    """The promoted dtype of several dtype names (cat, einsum, stack ...)."""
    target = None
    for nm in names:
        target = nm if target is None else result_dtype_name(target, nm)
    return target


# ------------------------------------------------------ default float dtype
_default = [float32]


def get_default_dtype():
    return _default[0]


def set_default_dtype(dt):
    d = to_dtype(dt)
    if not d.is_floating_point:
        raise TypeError(f"gradkit.set_default_dtype: only floating point types are allowed, got {d}")
    _default[0] = d
