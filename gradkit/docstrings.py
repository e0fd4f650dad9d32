"""Docstrings of the public ops, written once here and attached at import.

As in PyTorch (``torch/_torch_docs.py``), the text of an op lives in one table, and
the function ``gk.NAME`` and the method ``Tensor.NAME`` get the same text. An op
that already carries its own docstring keeps it. ``tests/test_docstrings.py`` checks that
every public name is documented and that every entry here names a public op.
"""
import importlib

_DEVICES = "Devices: cpu (NumPy) and cuda (CuPy); the result is on the input's device."


def _doc(summary, args, returns, grad, torch_name, note="", example=""):
    lines = [summary, "", "Args:"]
    lines += ["    " + a for a in args]
    lines += ["", "Returns:", "    " + returns, "", "Gradient: " + grad, "", _DEVICES,
              "", f"PyTorch: mirrors ``torch.{torch_name}``." + (" " + note if note else "")]
    if example:
        lines += ["", "Example:", ""] + ["    " + e for e in example.strip().splitlines()]
    return "\n".join(lines) + "\n"


_X = "x (Tensor): the input."
_ANY = "differentiable to any order (the backward is itself made of gradkit ops)."

# unary elementwise: name -> (what it computes, its derivative)
_UNARY = {
    "exp": ("Elementwise exponential, ``e ** x``.", "``g * exp(x)``"),
    "log": ("Elementwise natural logarithm (``-inf`` at 0, NaN below).", "``g / x``"),
    "log1p": ("Elementwise ``log(1 + x)``, accurate for small ``x``.", "``g / (1 + x)``"),
    "expm1": ("Elementwise ``exp(x) - 1``, accurate for small ``x``.", "``g * exp(x)``"),
    "sqrt": ("Elementwise square root (NaN below 0).", "``g / (2 * sqrt(x))``"),
    "rsqrt": ("Elementwise reciprocal square root, ``1 / sqrt(x)``.", "``-g / (2 * x ** 1.5)``"),
    "reciprocal": ("Elementwise ``1 / x``.", "``-g / x ** 2``"),
    "square": ("Elementwise ``x * x``.", "``2 * g * x``"),
    "abs": ("Elementwise absolute value.", "``g * sign(x)`` (0 at 0, as torch)"),
    "absolute": ("Alias of :func:`gradkit.abs`.", "``g * sign(x)``"),
    "neg": ("Elementwise negation, ``-x``.", "``-g``"),
    "negative": ("Alias of :func:`gradkit.neg`.", "``-g``"),
    "sin": ("Elementwise sine (radians).", "``g * cos(x)``"),
    "cos": ("Elementwise cosine (radians).", "``-g * sin(x)``"),
    "tan": ("Elementwise tangent (radians).", "``g * (1 + tan(x) ** 2)``"),
    "tanh": ("Elementwise hyperbolic tangent.", "``g * (1 - tanh(x) ** 2)`` (a fused kernel)"),
    "sigmoid": ("Elementwise logistic sigmoid, ``1 / (1 + exp(-x))``.",
                "``g * s * (1 - s)`` with ``s = sigmoid(x)`` (a fused kernel)"),
    "relu": ("Elementwise rectified linear unit, ``max(x, 0)``; NaN stays NaN.",
             "``g`` where ``x > 0``, else 0 (0 at 0, as torch)"),
    "silu": ("Elementwise SiLU (swish), ``x * sigmoid(x)``.",
             "``g * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``"),
    "erf": ("Elementwise Gauss error function.", "``g * 2 / sqrt(pi) * exp(-x ** 2)``"),
}

_UNARY_EXAMPLES = {
    "exp": """
>>> x = gk.tensor([0.0, 1.0], requires_grad=True)
>>> gk.exp(x).sum().backward()
>>> [round(g, 4) for g in x.grad.tolist()]
[1.0, 2.7183]
""",
    "tanh": """
>>> x = gk.tensor([0.0, 0.5], requires_grad=True)
>>> x.tanh().sum().backward()
>>> [round(g, 4) for g in x.grad.tolist()]
[1.0, 0.7864]
""",
}

# binary elementwise (broadcasting): name -> (what it computes, gradient, torch name)
_BINARY = {
    "add": ("Elementwise sum ``a + alpha * b``, broadcasting as NumPy and torch.",
            "``g`` to ``a`` and ``alpha * g`` to ``b``, each summed to its input's shape"),
    "sub": ("Elementwise difference ``a - alpha * b``, broadcasting.",
            "``g`` to ``a`` and ``-alpha * g`` to ``b``, each summed to its input's shape"),
    "mul": ("Elementwise product ``a * b``, broadcasting.",
            "``g * b`` to ``a`` and ``g * a`` to ``b``, each summed to its input's shape"),
    "div": ("Elementwise true division ``a / b``, broadcasting; integer inputs give floats.",
            "``g / b`` to ``a`` and ``-g * a / b ** 2`` to ``b``"),
    "pow": ("Elementwise power ``a ** b``, broadcasting (either may be a Python number).",
            "``g * b * a ** (b - 1)`` to ``a`` and ``g * a ** b * log(a)`` to ``b``"),
    "maximum": ("Elementwise maximum of two tensors, broadcasting; NaN propagates.",
                "``g`` to the larger input; ties split the gradient in half, as torch"),
    "minimum": ("Elementwise minimum of two tensors, broadcasting; NaN propagates.",
                "``g`` to the smaller input; ties split the gradient in half, as torch"),
}
_BINARY_ALIAS = {"subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div"}

_COMPARE = {"eq": "``a == b``", "ne": "``a != b``", "lt": "``a < b``", "le": "``a <= b``",
            "gt": "``a > b``", "ge": "``a >= b``",
            "logical_and": "``a and b`` (nonzero is true)", "logical_or": "``a or b`` (nonzero is true)"}

_NOGRAD = "none: the result is boolean or integer, so it is not part of the graph."
_DIM = "dim (int or tuple of ints, optional): the dimensions to reduce; all when None."
_KEEP = "keepdim (bool): keep reduced dimensions with size 1. Default False."


def _table():
    d = {}
    for name, (what, grad) in _UNARY.items():
        d[name] = _doc(what, [_X], "Tensor: the same shape and dtype as ``x``.",
                       grad + "; " + _ANY, name, example=_UNARY_EXAMPLES.get(name, ""))
    for name, (what, grad) in _BINARY.items():
        args = ["a (Tensor or number): the first operand.", "b (Tensor or number): the second operand."]
        if name in ("add", "sub"):
            args.append("alpha (number, optional): the multiplier of ``b``. Default 1.")
        d[name] = _doc(what, args, "Tensor: the broadcast shape; the promoted dtype (torch's "
                       "rules: a Python number does not widen a tensor's float dtype).",
                       grad + "; " + _ANY, name)
    for alias, name in _BINARY_ALIAS.items():
        d[alias] = f"Alias of :func:`gradkit.{name}`.\n\n" + d[name]
    for name, what in _COMPARE.items():
        d[name] = _doc(f"Elementwise {what}, broadcasting.",
                       ["a (Tensor or number): the first operand.", "b (Tensor or number): the second operand."],
                       "Tensor: bool, the broadcast shape.", _NOGRAD, name)
    d["logical_not"] = _doc("Elementwise logical negation (nonzero is true).", [_X],
                            "Tensor: bool, the shape of ``x``.", _NOGRAD, "logical_not")
    d["isfinite"] = _doc("Elementwise test for finite values (not NaN, not +-inf).", [_X],
                         "Tensor: bool, the shape of ``x``.", _NOGRAD, "isfinite")
    red = {
        "sum": ("Sum of the elements over ``dim``.", "the gradient broadcast back over ``dim``", True),
        "mean": ("Mean of the elements over ``dim``.", "``g / n`` broadcast back over ``dim``", True),
        "amax": ("Maximum over ``dim`` (values only).",
                 "split evenly among the tied maxima, as torch", False),
        "amin": ("Minimum over ``dim`` (values only).",
                 "split evenly among the tied minima, as torch", False),
    }
    for name, (what, grad, dt) in red.items():
        args = [_X, _DIM, _KEEP]
        if dt:
            args.append("dtype (dtype, optional): cast the input to this dtype first.")
        d[name] = _doc(what, args, "Tensor: ``x``'s dtype, reduced shape.", grad + "; " + _ANY, name)
    for name, word in (("max", "maximum"), ("min", "minimum")):
        d[name] = _doc(
            f"The {word} of all elements, or ``(values, indices)`` along ``dim``.",
            [_X, "dim (int, optional): the dimension to reduce; without it, over all elements.", _KEEP],
            f"Tensor, or a named tuple ``(values, indices)`` (indices int64) when ``dim`` is given.",
            f"to the position of the {word} (a NaN's position when there is one, as torch); " + _ANY,
            name)
    for name, word in (("argmax", "largest"), ("argmin", "smallest")):
        d[name] = _doc(f"Index of the {word} element, over the flattened tensor or along ``dim``.",
                       [_X, "dim (int, optional): the dimension; flattened when None.", _KEEP],
                       "Tensor: int64 indices.", _NOGRAD, name)
    for name, word in (("all", "every element is true"), ("any", "some element is true")):
        d[name] = _doc(f"Whether {word} (nonzero), over ``dim``.", [_X, _DIM, _KEEP],
                       "Tensor: bool.", _NOGRAD, name)
    d["logsumexp"] = _doc("``log(sum(exp(x), dim))``, computed stably (shifted by the maximum).",
                          [_X, "dim (int or tuple of ints): the dimensions to reduce.", _KEEP],
                          "Tensor: ``x``'s dtype, reduced shape.", "``g * softmax(x, dim)``; " + _ANY,
                          "logsumexp")
    d["cumsum"] = _doc("Cumulative sum along ``dim``.",
                       [_X, "dim (int): the dimension.", "dtype (dtype, optional): cast first."],
                       "Tensor: the shape of ``x``.", "a reversed cumulative sum of ``g``; " + _ANY,
                       "cumsum")
    shape = {
        "reshape": ("A tensor with ``x``'s elements in a new shape (a view when possible).",
                    ["shape (ints or a tuple): the new shape; one entry may be -1."]),
        "view": ("A view of ``x`` with a new shape (shares memory; ``x`` must be contiguous "
                 "enough, else use reshape).", ["shape (ints or a tuple): the new shape; one entry may be -1."]),
        "flatten": ("Flattens dimensions ``start_dim`` .. ``end_dim`` into one.",
                    ["start_dim (int): first dimension. Default 0.", "end_dim (int): last dimension. Default -1."]),
        "unsqueeze": ("Inserts a dimension of size 1 at ``dim``.", ["dim (int): where to insert."]),
        "squeeze": ("Removes dimensions of size 1 (all, or only ``dim``).",
                    ["dim (int or tuple, optional): the dimensions to remove if their size is 1."]),
        "permute": ("Reorders the dimensions (a view).", ["dims (ints or a tuple): the new order."]),
        "transpose": ("Swaps two dimensions (a view).", ["dim0 (int): one dimension.", "dim1 (int): the other."]),
        "swapaxes": ("Alias of :func:`gradkit.transpose`.", ["dim0 (int): one dimension.", "dim1 (int): the other."]),
        "t": ("Transposes a tensor of at most 2 dimensions (0-d and 1-d are returned as is).", []),
        "expand": ("Broadcasts ``x`` to a larger shape without copying (-1 keeps a size). "
                   "Writing into the result in place raises.", ["shape (ints or a tuple): the new shape."]),
        "broadcast_to": ("Broadcasts ``x`` to ``shape`` (as :func:`gradkit.expand`).",
                         ["shape (ints or a tuple): the new shape."]),
        "flip": ("Reverses the order of elements along ``dims``.", ["dims (int or tuple of ints): the dimensions."]),
        "repeat": ("Tiles ``x`` ``sizes`` times along each dimension (torch's ``repeat``, NumPy's ``tile``).",
                   ["sizes (ints or a tuple): repetitions per dimension."]),
        "clone": ("A copy of ``x`` with its own memory, still in the graph.", []),
    }
    for name, (what, extra) in shape.items():
        d[name] = _doc(what, [_X] + extra, "Tensor: ``x``'s dtype.",
                       "the gradient reshaped, permuted or summed back to ``x``; " + _ANY, name)
    d["detach"] = _doc("A tensor sharing ``x``'s memory, cut from the graph (no gradient flows "
                       "through it; in-place changes to either are seen by version counters).",
                       [_X], "Tensor: the same shape and dtype, ``requires_grad=False``.",
                       "none (that is its purpose).", "detach")
    for name in ("cat", "concat", "concatenate"):
        d[name] = _doc("Joins tensors along an existing dimension" +
                       ("" if name == "cat" else f" (alias of :func:`gradkit.cat`)") + ".",
                       ["tensors (sequence of Tensor): same shape except in ``dim``; one device.",
                        "dim (int): the dimension. Default 0."],
                       "Tensor: the promoted dtype.", "split back to each input; " + _ANY, name)
    d["stack"] = _doc("Joins tensors of one shape along a new dimension.",
                      ["tensors (sequence of Tensor): same shape, one device.", "dim (int): where the new dimension goes. Default 0."],
                      "Tensor: one more dimension than the inputs.", "split back to each input; " + _ANY, "stack")
    d["masked_fill"] = _doc("Copy of ``x`` with ``value`` where ``mask`` is true.",
                            [_X, "mask (Tensor): bool, broadcastable to ``x``.", "value (number or 0-d Tensor): the fill value."],
                            "Tensor: ``x``'s shape and dtype.", "``g`` where the mask is false, 0 elsewhere; " + _ANY,
                            "masked_fill")
    d["where"] = _doc("Elementwise choice ``a if cond else b``, broadcasting; with only ``cond``, "
                      "the indices of true elements (as ``nonzero(as_tuple=True)``).",
                      ["cond (Tensor): bool.", "a (Tensor or number): chosen where true.",
                       "b (Tensor or number): chosen where false."],
                      "Tensor: the broadcast shape and promoted dtype.", "``g`` routed to ``a`` or ``b`` by ``cond``; " + _ANY,
                      "where")
    for name in ("clamp", "clip"):
        d[name] = _doc("Limits each element to ``[min, max]`` (either may be None)" +
                       ("" if name == "clamp" else " (alias of :func:`gradkit.clamp`)") + ".",
                       [_X, "min (number or Tensor, optional): lower bound.", "max (number or Tensor, optional): upper bound."],
                       "Tensor: ``x``'s shape and dtype.", "``g`` where ``x`` is inside the bounds, 0 outside; " + _ANY, name)
    d["matmul"] = _doc("Matrix product with NumPy's and torch's rules: 1-d operands are vectors, "
                       "leading dimensions broadcast as batches.",
                       ["a (Tensor): left operand.", "b (Tensor): right operand; same dtype as ``a``."],
                       "Tensor: the matmul shape.", "``g @ b.mT`` and ``a.mT @ g`` (summed over broadcast batches); " + _ANY,
                       "matmul", example="""
>>> a = gk.ones(4, 2, 3)
>>> b = gk.ones(3, 5)
>>> tuple(gk.matmul(a, b).shape)
(4, 2, 5)
""")
    d["mm"] = _doc("Product of two matrices (2-d only; see :func:`gradkit.matmul` for the general case).",
                   ["a (Tensor): (n, m).", "b (Tensor): (m, p)."], "Tensor: (n, p).",
                   "``g @ b.T`` and ``a.T @ g``; " + _ANY, "mm")
    d["bmm"] = _doc("Batched product of 3-d tensors, one matrix product per batch entry.",
                    ["a (Tensor): (B, n, m).", "b (Tensor): (B, m, p)."], "Tensor: (B, n, p).",
                    "``g @ b.mT`` and ``a.mT @ g``; " + _ANY, "bmm")
    return d


DOCS = _table()


def _creation():
    kw = ["dtype (dtype, optional): default ``gk.get_default_dtype()`` for floats.",
          "device (str or Device, optional): ``'cpu'`` (default) or ``'cuda[:N]'``.",
          "requires_grad (bool): record operations on the result. Default False."]
    size = "size (ints or a tuple): the shape."
    like = "x (Tensor): the tensor whose shape (and, by default, dtype and device) to use."
    c = {
        "zeros": ("A tensor filled with 0.", [size] + kw, "zeros"),
        "ones": ("A tensor filled with 1.", [size] + kw, "ones"),
        "empty": ("A tensor with unspecified contents (no initialisation cost). "
                  "``size=`` may be given by keyword, as torch.", [size] + kw, "empty"),
        "rand": ("Uniform random numbers in ``[0, 1)`` from gradkit's generator (``gk.manual_seed``).",
                 [size] + kw, "rand"),
        "randn": ("Standard normal random numbers from gradkit's generator (``gk.manual_seed``).",
                  [size] + kw, "randn"),
        "full": ("A tensor filled with ``fill_value``.",
                 [size, "fill_value (number): the value; its type sets the dtype when none is given."] + kw, "full"),
        "arange": ("Evenly spaced values in ``[start, end)`` with ``step`` (``arange(n)`` counts from 0).",
                   ["start (number): first value (or the end when alone).", "end (number, optional): the bound, excluded.",
                    "step (number): spacing. Default 1."] + kw, "arange"),
        "linspace": ("``steps`` evenly spaced values from ``start`` to ``end`` inclusive.",
                     ["start (number): first value.", "end (number): last value.", "steps (int): how many."] + kw,
                     "linspace"),
        "eye": ("The ``n x m`` identity matrix.",
                ["n (int): rows.", "m (int, optional): columns; ``n`` when None."] + kw, "eye"),
        "randint": ("Random integers in ``[low, high)``; ``randint(high, size)`` as torch.",
                    ["low (int): lower bound (or ``high`` in the two-argument form).", "high (int): upper bound, excluded.",
                     "size (tuple): the shape.", "dtype (dtype, optional): default int64.",
                     "device (str or Device, optional): default cpu."], "randint"),
    }
    out = {}
    for name, (what, args, tn) in c.items():
        out[name] = _doc(what, args, "Tensor: a new leaf.", "the result is a leaf; it has a gradient "
                         "only when ``requires_grad=True``.", tn)
    for name, base in (("zeros_like", "zeros"), ("ones_like", "ones"), ("empty_like", "empty"),
                       ("rand_like", "rand"), ("randn_like", "randn")):
        out[name] = _doc(f"Like :func:`gradkit.{base}`, with the shape of ``x``.", [like] + kw,
                         "Tensor: a new leaf.", "a leaf; none unless ``requires_grad=True``.", name)
    out["full_like"] = _doc("Like :func:`gradkit.full`, with the shape of ``x``.",
                            [like, "fill_value (number): the value."] + kw,
                            "Tensor: a new leaf.", "a leaf; none unless ``requires_grad=True``.", "full_like")
    out["from_numpy"] = _doc("A cpu tensor sharing memory with a NumPy array (no copy). "
                             "Unsupported dtypes (object, complex, longdouble) raise TypeError.",
                             ["a (numpy.ndarray): the array."], "Tensor: on cpu, the array's dtype.",
                             "a leaf without gradient.", "from_numpy")
    out["get_default_dtype"] = _doc("The dtype Python floats become (float32 unless changed).", [],
                                    "DType.", "not applicable.", "get_default_dtype")
    out["set_default_dtype"] = _doc("Sets the dtype Python floats become (a floating dtype).",
                                    ["dt (DType): float16, float32 or float64."], "None.",
                                    "not applicable.", "set_default_dtype")
    out["is_grad_enabled"] = _doc("Whether operations record a graph on this thread now.", [],
                                  "bool.", "not applicable.", "is_grad_enabled")
    return out


DOCS.update(_creation())
DOCS["log_softmax"] = _doc(
    "``log(softmax(x, dim))``, computed stably in one pass.",
    [_X, "dim (int): the dimension that sums to one after exp.",
     "dtype (dtype, optional): cast the input to this dtype first."],
    "Tensor: ``x``'s shape.", "``g - exp(y) * sum(g, dim)``; " + _ANY, "log_softmax")
DOCS["std"] = _doc(
    "Standard deviation over ``dim``, ``sqrt(var)``.",
    [_X, _DIM, "unbiased (bool, optional): legacy switch for ``correction`` (True is 1, False is 0).",
     _KEEP, "correction (int, optional): the difference from ``n`` in the divisor. Default 1."],
    "Tensor: ``x``'s dtype, reduced shape.", "``g * (x - mean) / ((n - correction) * std)``; " + _ANY, "std")

CLASS_DOCS = {
    "Tensor": """A multi-dimensional array on one device that can record the operations made on it.

``Tensor(data, dtype=None, device=None, requires_grad=False)`` is ``gk.tensor(...)``.
Operations on a tensor with ``requires_grad=True`` (grad mode on) record a node of the
graph; ``backward()`` walks it back and fills the leaves' ``.grad``. The data is a
NumPy array on cpu and a CuPy array on cuda (``t.array``); ``t.data`` is a detached
Tensor sharing memory, as in torch.

Attributes:
    array: the backend's own array (``numpy.ndarray`` on cpu, ``cupy.ndarray`` on cuda),
        zero-copy, outside the graph.
    grad_fn: the node that produced this tensor, None for a leaf.

PyTorch: mirrors ``torch.Tensor``.
""",
    "Device": """A device: ``Device('cpu')`` or ``Device('cuda', 0)``; ``gk.device('cuda:0')`` parses one.

Attributes ``type`` (``'cpu'`` or ``'cuda'``) and ``index`` (None on cpu). A device
compares equal to its string, e.g. ``gk.device('cuda:0') == 'cuda:0'``.

PyTorch: mirrors ``torch.device``.
""",
}


def attach(namespace, tensor_cls):
    """Give each public op in ``namespace`` without a docstring its text from DOCS (and
    the Tensor method of the same name the same text), and the classes theirs."""
    for name, text in CLASS_DOCS.items():
        cls = getattr(namespace, name, None)
        if cls is not None and not (cls.__doc__ or "").strip():
            cls.__doc__ = text
    for name, text in DOCS.items():
        fn = getattr(namespace, name, None)
        inner = getattr(fn, "__wrapped__", None)  # the op behind a wrapper adding torch's out=
        if inner is not None:
            if not (inner.__doc__ or "").strip():
                inner.__doc__ = text
            stub = f"gradkit.{name}."
            if (fn.__doc__ or "").startswith(stub):
                fn.__doc__ = inner.__doc__ + fn.__doc__[len(stub):]
        if fn is not None and not (getattr(fn, "__doc__", None) or "").strip():
            try:
                fn.__doc__ = text
            except (AttributeError, TypeError):
                pass
        meth = tensor_cls.__dict__.get(name)
        if meth is not None and not isinstance(meth, (property, type)) and \
                not (getattr(meth, "__doc__", None) or "").strip():
            try:
                meth.__doc__ = text
            except (AttributeError, TypeError):
                pass


def _m(summary, detail="", torch_name=None):
    """A Tensor method's or property's docstring."""
    text = summary + ("\n\n" + detail if detail else "")
    if torch_name:
        text += f"\n\nPyTorch: mirrors ``torch.Tensor.{torch_name}``."
    return text + "\n"


# Tensor attributes that are not ops of the same name in ``gk``
TENSOR_DOCS = {
    "T": _m("The tensor with its dimensions reversed (a view; differentiable).", torch_name="T"),
    "mT": _m("The tensor with its last two dimensions swapped (a view; differentiable).", torch_name="mT"),
    "array": _m("The backend's own array (``numpy.ndarray`` on cpu, ``cupy.ndarray`` on cuda), "
                "zero-copy, outside the graph.",
                "gradkit's name (Chainer's) for what torch keeps internal; ``t.data`` is a Tensor, as in torch."),
    "shape": _m("The shape, a ``gk.Size`` (a tuple subclass).", torch_name="shape"),
    "ndim": _m("The number of dimensions.", torch_name="ndim"),
    "dim": _m("The number of dimensions (as ``ndim``).", torch_name="dim"),
    "dtype": _m("The element type, a ``gk.DType`` such as ``gk.float32``.", torch_name="dtype"),
    "dtype_name": _m("The element type's name, e.g. ``'float32'``."),
    "device": _m("The device holding the data, a ``gk.Device`` (``cpu`` or ``cuda:N``).", torch_name="device"),
    "is_cuda": _m("Whether the tensor lives on a CUDA device.", torch_name="is_cuda"),
    "is_leaf": _m("Whether the tensor is a leaf of the graph (made by the user, not by an op).",
                  "Only leaves get ``.grad`` filled by ``backward`` (others after ``retain_grad()``).",
                  "is_leaf"),
    "grad_fn": _m("The node that produced this tensor (None for leaves and for results made "
                  "without grad).", torch_name="grad_fn"),
    "requires_grad": _m("Whether operations on this tensor are recorded; settable on leaves, "
                        "floating dtypes only.", torch_name="requires_grad"),
    "retains_grad": _m("Whether a non-leaf keeps its ``.grad`` (see ``retain_grad``).", torch_name="retains_grad"),
    "size": _m("The shape as a ``gk.Size``, or one dimension's size with ``dim``.", torch_name="size"),
    "numel": _m("The number of elements.", torch_name="numel"),
    "item": _m("The value of a one-element tensor as a Python number.",
               "On cuda this waits for the device (a host sync).", "item"),
    "tolist": _m("The values as nested Python lists (a host copy on cuda).", torch_name="tolist"),
    "numpy": _m("The values as a NumPy array sharing memory (cpu only; on cuda call ``.cpu()`` "
                "first). Raises for a tensor that requires grad: use ``.detach().numpy()``.",
                torch_name="numpy"),
    "to": _m("The tensor on another device and/or with another dtype (``to('cuda')``, "
             "``to(gk.float64)``, ``to(other)``); itself when nothing changes. Differentiable.",
             torch_name="to"),
    "cpu": _m("The tensor on the cpu (itself when already there). Differentiable.", torch_name="cpu"),
    "cuda": _m("The tensor on a CUDA device (``cuda(1)`` for the second). Differentiable.", torch_name="cuda"),
    "float": _m("The tensor as float32 (differentiable).", torch_name="float"),
    "double": _m("The tensor as float64 (differentiable).", torch_name="double"),
    "half": _m("The tensor as float16 (differentiable).", torch_name="half"),
    "long": _m("The tensor as int64 (no gradient).", torch_name="long"),
    "int": _m("The tensor as int32 (no gradient).", torch_name="int"),
    "bool": _m("The tensor as bool (no gradient).", torch_name="bool"),
    "type_as": _m("The tensor cast to ``other``'s dtype.", torch_name="type_as"),
    "expand_as": _m("``self.expand(other.shape)``.", torch_name="expand_as"),
    "contiguous": _m("A C-contiguous tensor with the same values (itself when already contiguous).",
                     torch_name="contiguous"),
    "backward": _m("Computes the gradient of this tensor with respect to the graph's leaves and "
                   "accumulates it into their ``.grad``.",
                   "Args: ``gradient`` (required unless the tensor has one element), "
                   "``retain_graph`` (keep saved values for another backward), ``create_graph`` "
                   "(record the backward for higher derivatives), ``inputs`` (accumulate only "
                   "into these).", "backward"),
    "requires_grad_": _m("Sets ``requires_grad`` in place on a leaf and returns the tensor.",
                         torch_name="requires_grad_"),
    "retain_grad": _m("Makes a non-leaf keep its gradient in ``.grad`` after backward.",
                      torch_name="retain_grad"),
    "detach_": _m("Cuts this tensor from the graph in place.", torch_name="detach_"),
    "zero_": _m("Fills with 0 in place (bumps the version counter).", torch_name="zero_"),
    "fill_": _m("Fills with a value in place (bumps the version counter).", torch_name="fill_"),
    "copy_": _m("Copies ``src``'s values (broadcast, cast, moved across devices) into this "
                "tensor in place; differentiable with respect to ``src``.", torch_name="copy_"),
    "add_": _m("In-place ``self += alpha * other`` (bumps the version counter).", torch_name="add_"),
    "sub_": _m("In-place ``self -= alpha * other``.", torch_name="sub_"),
    "mul_": _m("In-place ``self *= other``.", torch_name="mul_"),
    "div_": _m("In-place ``self /= other``.", torch_name="div_"),
    "clamp_": _m("In-place clamp to ``[min, max]``.", torch_name="clamp_"),
}


def attach_tensor(namespace, tensor_cls):
    """Document Tensor attributes: ops get the text of the function of the same name,
    the rest theirs from TENSOR_DOCS. Own docstrings are kept."""
    for name, attr in list(vars(tensor_cls).items()):
        if name.startswith("_") or (getattr(attr, "__doc__", None) or "").strip():
            continue
        text = TENSOR_DOCS.get(name)
        if text is None:
            fn = getattr(namespace, name, None)
            text = getattr(fn, "__doc__", None) if callable(fn) else None
        if text:
            try:
                attr.__doc__ = text
            except (AttributeError, TypeError):
                pass


def _fn(summary, detail="", torch_name=None):
    text = summary + ("\n\n" + detail if detail else "")
    if torch_name:
        text += f"\n\nPyTorch: mirrors ``{torch_name}``."
    return text + "\n"


_ACT = ("Args:\n    input (Tensor): any shape.\n\nReturns:\n    Tensor: the input's shape "
        "and dtype.\n\nGradient: differentiable to any order. Devices: cpu and cuda.")
# other public names without a docstring of their own, by dotted path
EXTRA_DOCS = {
    "gradkit.autograd.is_anomaly_enabled": _fn(
        "Whether anomaly detection is on for this thread.", torch_name="torch.is_anomaly_enabled"),
    "gradkit.autograd.set_detect_anomaly": _fn(
        "Turns anomaly detection on or off (a context manager), as ``detect_anomaly``.",
        "In backward, a NaN or inf then raises naming the forward op that made the node.",
        "torch.autograd.set_detect_anomaly"),
    "gradkit.nn.Identity": _fn("A module that returns its input unchanged (any arguments to "
                               "the constructor are ignored).", torch_name="torch.nn.Identity"),
    "gradkit.nn.ReLU": _fn("Applies ``relu`` elementwise, ``max(x, 0)``.", _ACT, "torch.nn.ReLU"),
    "gradkit.nn.Tanh": _fn("Applies ``tanh`` elementwise.", _ACT, "torch.nn.Tanh"),
    "gradkit.nn.Sigmoid": _fn("Applies the logistic sigmoid elementwise.", _ACT, "torch.nn.Sigmoid"),
    "gradkit.nn.Softmax": _fn("Applies ``softmax`` along ``dim`` (``Softmax(dim=None)``).", _ACT,
                              "torch.nn.Softmax"),
    "gradkit.nn.LogSoftmax": _fn("Applies ``log_softmax`` along ``dim`` (``LogSoftmax(dim=None)``).",
                                 _ACT, "torch.nn.LogSoftmax"),
    "gradkit.nn.init.constant_": _fn("Fills a tensor with ``val`` in place (no gradient recorded); "
                                     "returns it.", torch_name="torch.nn.init.constant_"),
    "gradkit.nn.init.ones_": _fn("Fills a tensor with 1 in place (no gradient recorded); returns it.",
                                 torch_name="torch.nn.init.ones_"),
    "gradkit.nn.init.zeros_": _fn("Fills a tensor with 0 in place (no gradient recorded); returns it.",
                                  torch_name="torch.nn.init.zeros_"),
    "gradkit.cuda.device_count": _fn("The number of usable CUDA devices (0 without CuPy or a GPU; "
                                     "never raises).", torch_name="torch.cuda.device_count"),
    "gradkit.cuda.is_available": _fn("Whether CUDA is usable: CuPy imports, a device is present and "
                                     "a test kernel runs. Never raises; ``why_unavailable()`` says why not.",
                                     torch_name="torch.cuda.is_available"),
    "gradkit.Tensor.getitem": _fn("``t[index]`` as a method: basic and advanced indexing "
                                  "(ints, slices, None, Ellipsis, bool masks, integer tensors); "
                                  "differentiable.", torch_name="torch.Tensor.__getitem__"),
    "gradkit.nn.Module.add_module": _fn("Registers a child module under ``name``.",
                                        torch_name="torch.nn.Module.add_module"),
    "gradkit.nn.Module.register_module": _fn("Alias of ``add_module``.",
                                             torch_name="torch.nn.Module.register_module"),
    "gradkit.nn.Module.apply": _fn("Calls ``fn`` on every submodule (children first) and on this "
                                   "module; returns the module.", torch_name="torch.nn.Module.apply"),
    "gradkit.nn.Module.buffers": _fn("Iterator over the module's buffers (``recurse=True``: also "
                                     "the submodules').", torch_name="torch.nn.Module.buffers"),
    "gradkit.nn.Module.named_buffers": _fn("Iterator over ``(name, buffer)`` pairs.",
                                           torch_name="torch.nn.Module.named_buffers"),
    "gradkit.nn.Module.children": _fn("Iterator over the direct child modules.",
                                      torch_name="torch.nn.Module.children"),
    "gradkit.nn.Module.named_children": _fn("Iterator over ``(name, child)`` pairs.",
                                            torch_name="torch.nn.Module.named_children"),
    "gradkit.nn.Module.modules": _fn("Iterator over this module and all submodules.",
                                     torch_name="torch.nn.Module.modules"),
    "gradkit.nn.Module.named_modules": _fn("Iterator over ``(dotted name, module)`` for this module "
                                           "(name ``''``) and all submodules.",
                                           torch_name="torch.nn.Module.named_modules"),
    "gradkit.nn.Module.parameters": _fn("Iterator over the module's parameters (``recurse=True``: "
                                        "also the submodules'), each once.",
                                        torch_name="torch.nn.Module.parameters"),
    "gradkit.nn.Module.get_submodule": _fn("The submodule at a dotted path such as ``'0.linear'``.",
                                           torch_name="torch.nn.Module.get_submodule"),
    "gradkit.nn.Module.cpu": _fn("Moves parameters and buffers to the cpu; returns the module.",
                                 torch_name="torch.nn.Module.cpu"),
    "gradkit.nn.Module.cuda": _fn("Moves parameters and buffers to a CUDA device; returns the module.",
                                  torch_name="torch.nn.Module.cuda"),
    "gradkit.nn.Module.float": _fn("Casts floating parameters and buffers to float32.",
                                   torch_name="torch.nn.Module.float"),
    "gradkit.nn.Module.double": _fn("Casts floating parameters and buffers to float64.",
                                    torch_name="torch.nn.Module.double"),
    "gradkit.nn.Module.half": _fn("Casts floating parameters and buffers to float16.",
                                  torch_name="torch.nn.Module.half"),
    "gradkit.nn.Module.train": _fn("Sets training mode (``mode=True``) on this module and its "
                                   "submodules (dropout on, batch norm updates statistics).",
                                   torch_name="torch.nn.Module.train"),
    "gradkit.nn.Module.eval": _fn("Sets evaluation mode, ``train(False)``.", torch_name="torch.nn.Module.eval"),
    "gradkit.nn.Module.requires_grad_": _fn("Sets ``requires_grad`` on every parameter; returns the module.",
                                            torch_name="torch.nn.Module.requires_grad_"),
    "gradkit.nn.Module.forward": _fn("The computation of the module; subclasses define it. Call the "
                                     "module itself (``m(x)``), which runs hooks around ``forward``.",
                                     torch_name="torch.nn.Module.forward"),
    "gradkit.nn.Module.extra_repr": _fn("The text shown inside the module's repr; subclasses override it.",
                                        torch_name="torch.nn.Module.extra_repr"),
    "gradkit.optim.Optimizer.add_param_group": _fn("Adds a parameter group (a dict with ``params`` and "
                                                   "optional per-group options).",
                                                   torch_name="torch.optim.Optimizer.add_param_group"),
    "gradkit.optim.Optimizer.step": _fn("Performs one update of every parameter with a gradient "
                                        "(``closure`` re-evaluates the loss where the optimizer needs it); "
                                        "runs on the parameters' device, no host round trip.",
                                        torch_name="torch.optim.Optimizer.step"),
    "gradkit.optim.Optimizer.zero_grad": _fn("Clears the gradients of all parameters "
                                             "(``set_to_none=True``: sets ``.grad`` to None).",
                                             torch_name="torch.optim.Optimizer.zero_grad"),
}


def attach_extra():
    """Attach EXTRA_DOCS to the objects they name (those without their own text)."""
    for path, text in EXTRA_DOCS.items():
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for p in parts[i:]:
                obj = getattr(obj, p)
            break
        if (getattr(obj, "__doc__", None) or "").strip() and not isinstance(obj, type):
            continue
        if isinstance(obj, type) and obj.__doc__ and obj.__doc__.strip():
            continue
        try:
            obj.__doc__ = text
        except (AttributeError, TypeError):
            pass
