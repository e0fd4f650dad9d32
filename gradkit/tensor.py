"""Tensor: a backend array + its backend (device) + version counter + grad + node.

Operators live in the class body and delegate to the differentiable functions
in ``gradkit.ops`` (reflected ones swap their arguments).
"""
import weakref

from .autograd.graph import mode
from .size import Size


class GradkitError(RuntimeError):
    """An error raised by gradkit for bad input; the message names the op."""


_new = object.__new__


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


class PostAccumulateGradHook:
    """A leaf's post-accumulate-grad hook, kept in the leaf's hook list beside
    its gradient hooks (the engine runs it after accumulating, not before)."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


#: how many post-accumulate-grad hooks were ever registered: the engine looks for
#: leaves that have one (a graph walk) only when this is not zero
POST_ACCUMULATE_HOOKS = [0]


class _RemovableHandle:
    __slots__ = ("_list", "_item")

    def __init__(self, lst, item):
        self._list = lst
        self._item = item

    def remove(self):
        try:
            self._list.remove(self._item)
        except ValueError:
            pass


class Tensor:
    __slots__ = ("array", "_B", "_rg", "_grad", "grad_fn", "_oi", "_hooks",
                 "_vc", "_view", "_glock", "__weakref__")
    __array_priority__ = 1000  # NumPy defers binary operators to us

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        from .creation import tensor
        t = tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
        for s in Tensor.__slots__[:-1]:
            setattr(self, s, getattr(t, s, None))  # _glock: made on first use

    # ------------------------------------------------------------ attributes
    @property
    def shape(self):
        return Size(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    def dim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return DTYPES[self.dtype_name]

    @property
    def dtype_name(self):
        return self._B.dtype_name(self.array.dtype)

    @property
    def device(self):
        from .device import device_of
        return device_of(self._B)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def is_cuda(self):
        return self._B.type == "cuda"

    @property
    def _version(self):
        return self._vc[0]

    @property
    def T(self):
        return _F.permute(self, tuple(range(self.array.ndim - 1, -1, -1)))

    @property
    def mT(self):
        return _F.transpose(self, -2, -1)

    def size(self, dim=None):
        s = tuple(self.array.shape)
        if dim is None:
            return Size(s)
        d = _F.norm_dim("size", dim, len(s))
        if not s:
            raise IndexError(f"gradkit.size: dimension specified as {dim} but the tensor has "
                             "no dimensions")
        return s[d]

    def numel(self):
        n = 1
        for s in self.array.shape:
            n *= s
        return n

    def __len__(self):
        if self.array.ndim == 0:
            raise TypeError("gradkit: len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("gradkit: iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from .tensor_repr import tensor_repr
        return tensor_repr(self)

    def __format__(self, spec):
        from .tensor_repr import tensor_format
        return tensor_format(self, spec)

    def __reduce_ex__(self, protocol):   # pickle: values, dtype, device name, requires_grad
        from .tensor_pickle import reduce_tensor
        return reduce_tensor(self)

    def __deepcopy__(self, memo):
        from .tensor_pickle import deepcopy_tensor
        return deepcopy_tensor(self, memo)

    # ----------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd.engine import backward
        backward(self, gradient, retain_graph, create_graph, inputs)

    def requires_grad_(self, requires_grad=True):
        if self.grad_fn is not None:
            if not requires_grad:
                raise GradkitError(
                    "gradkit: you can only change requires_grad flags of leaf tensors; "
                    "use .detach() to get a tensor that does not require grad")
            return self
        if requires_grad and not self._B.is_floating(self.array.dtype):
            raise GradkitError(
                f"gradkit: only floating point tensors can require gradients, got dtype "
                f"{self.dtype_name}; convert with .float() or .double() first")
        self._rg = bool(requires_grad)
        _mark_leaf_base(self._vc, self._rg)
        return self

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value):
        if self.grad_fn is not None:   # as torch, whatever the value
            raise GradkitError(
                "gradkit: you can only change requires_grad flags of leaf tensors; this one was "
                "computed by an op (grad_fn=" + self.grad_fn.p.name + "). Use .detach() for a "
                "tensor that does not require grad, or .requires_grad_() (a no-op here)")
        if value and self.grad_fn is None and not self._B.is_floating(self.array.dtype):
            raise GradkitError(
                f"gradkit: only floating point tensors can require gradients, got dtype "
                f"{self.dtype_name}; convert with .float() first")
        self._rg = bool(value)
        if self.grad_fn is None:
            _mark_leaf_base(self._vc, self._rg)

    @property
    def grad(self):
        """The accumulated gradient (a Tensor of this tensor's shape, dtype and device),
        or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            _check_grad(self, value)
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def data(self):
        """A Tensor sharing this tensor's memory, detached from the graph, as torch's
        ``.data``: changes made through it are not seen by autograd (it has its own
        version counter), so ``p.data.add_(...)`` updates a parameter without a record.
        The backend's own array is ``t.array``."""
        from .ops.core import const
        return const(self._B, self.array)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"gradkit: .data must be assigned a Tensor, not {type(value).__name__}"
                            " (to set the backend array, assign t.array)")
        if value.device != self.device:
            raise RuntimeError(f"gradkit: can't assign .data on {self.device} from a tensor on "
                               f"{value.device}; move it with .to({str(self.device)!r}) first")
        self.array = value.array

    def detach(self):
        from .ops.core import const
        t = const(self._B, self.array)
        t._vc = self._vc
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        if not self.requires_grad:
            raise GradkitError("gradkit.retain_grad: can't retain_grad on a tensor that has "
                               "requires_grad=False")
        if self.grad_fn is None:
            return
        node = self.grad_fn
        ref = weakref.ref(self)
        if node.hooks is None:
            node.hooks = []
        for oi, h in node.hooks:
            if getattr(h, "_retain", None) is not None and h._retain() is self:
                return

        def retain(g):
            t = ref()
            if t is not None:
                t.grad = g if t.grad is None else t.grad + g
        retain._retain = ref
        node.hooks.append((self._oi, retain))

    @property
    def retains_grad(self):
        node = self.grad_fn
        return bool(node is not None and node.hooks and any(
            getattr(h, "_retain", None) is not None and h._retain() is self
            for _, h in node.hooks))

    def register_hook(self, fn):
        """``fn(grad) -> Tensor or None``; called with this tensor's gradient
        during backward. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise GradkitError("gradkit: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if not callable(fn):
            raise TypeError(f"gradkit.register_hook: the hook must be callable, got "
                            f"{type(fn).__name__}")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(fn)
            return _RemovableHandle(self._hooks, fn)
        node = self.grad_fn
        if node.hooks is None:
            node.hooks = []
        item = (self._oi, fn)
        node.hooks.append(item)
        return _RemovableHandle(node.hooks, item)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor) -> None``, called on this leaf right after backward has
        accumulated its gradient into ``.grad`` (as torch's method of that name;
        not called by ``gk.grad``, which touches no ``.grad``). The engine calls
        it as soon as the leaf's gradient is complete, before the rest of
        backward, so data-parallel training can start communicating it early.
        Leaves only. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise GradkitError("gradkit: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self.grad_fn is not None:
            raise GradkitError("gradkit: post accumulate grad hooks cannot be registered on "
                               "non-leaf tensors")
        if not callable(hook):
            raise TypeError(f"gradkit.register_post_accumulate_grad_hook: the hook must be "
                            f"callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = []
        item = PostAccumulateGradHook(hook)
        self._hooks.append(item)
        POST_ACCUMULATE_HOOKS[0] += 1
        return _RemovableHandle(self._hooks, item)

    # --------------------------------------------------------- conversion
    def numpy(self, *, force=False):
        _host_check(self, "numpy()")
        if self._B.type == "cuda":
            if not force:
                raise TypeError(
                    "gradkit: can't convert a cuda tensor to numpy; call .cpu() first "
                    "to copy it to host memory (e.g. t.cpu().numpy())")
        if self.requires_grad and not force:
            raise GradkitError("gradkit: can't call numpy() on a tensor that requires grad; "
                               "use t.detach().numpy()")
        return self._B.to_host(self.array)

    def __array__(self, dtype=None, copy=None):
        _host_check(self, "__array__ (np.asarray)")
        if self._B.type == "cuda":
            raise TypeError("gradkit: can't convert a cuda tensor to a NumPy array implicitly; "
                            "call .cpu() first")
        a = self._B.to_host(self.array)
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self.numel() != 1:
            raise GradkitError(f"gradkit: a Tensor with {self.numel()} elements cannot be "
                               "converted to a Python scalar")
        _host_check(self, "item()")
        return self._B.item(self.array)

    def tolist(self):
        _host_check(self, "tolist()")
        return self._B.to_host(self.array).tolist()

    def __float__(self):
        _host_check(self, "float()")
        return float(self.item())

    def __int__(self):
        _host_check(self, "int()")
        return int(self.item())

    def __index__(self):
        _host_check(self, "__index__ (use as a Python int)")
        if self._B.is_floating(self.array.dtype) or self.numel() != 1:
            raise TypeError("gradkit: only integer tensors of a single element can be "
                            "converted to an index")
        return int(self.item())

    def __bool__(self):
        _host_check(self, "bool() (e.g. `if tensor:`)")
        if self.numel() != 1:
            raise GradkitError(
                f"gradkit: the truth value of a tensor with {self.numel()} elements is "
                "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def to(self, *args, dtype=None, device=None, copy=False, non_blocking=False):
        from .device import Device
        for a in args:
            if isinstance(a, (Device,)) or (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "fake")):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        t = self
        if device is not None:
            t = _F.to_device(t, device)
        if dtype is not None:
            t = _F.astype(t, dtype)
        if copy and t is self:
            t = self.clone()
        return t

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def float(self):
        return _F.astype(self, float32)

    def double(self):
        return _F.astype(self, float64)

    def half(self):
        return _F.astype(self, float16)

    def long(self):
        return _F.astype(self, int64)

    def int(self):
        return _F.astype(self, int32)

    def bool(self):
        return _F.astype(self, bool_)

    def type_as(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"gradkit.type_as: expected a Tensor, got {type(other).__name__}")
        return _F.astype(self, other.dtype)

    def clone(self):
        return _F.clone(self)

    def contiguous(self):
        return _F.contiguous(self)

    # ----------------------------------------------------------- operators
    def __add__(self, o):
        return _binary(_F._add_vjp, self, o)

    def __radd__(self, o):
        return _binary(_F._add_vjp, o, self)

    def __sub__(self, o):
        return _binary(_F._sub_vjp, self, o)

    def __rsub__(self, o):
        return _binary(_F._sub_vjp, o, self)

    def __mul__(self, o):
        return _binary(_F._mul_vjp, self, o)

    def __rmul__(self, o):
        return _binary(_F._mul_vjp, o, self)

    def __truediv__(self, o):
        return _F.div(self, o)

    def __rtruediv__(self, o):
        return _F.div(o, self)

    def __pow__(self, o):
        return _F.pow(self, o)

    def __rpow__(self, o):
        return _F.pow(o, self)

    def __matmul__(self, o):
        return _F.matmul(self, o)

    def __rmatmul__(self, o):
        return _F.matmul(o, self)

    def __neg__(self):
        return _F.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _F.abs(self)

    def __eq__(self, o):
        if o is None:  # as torch: a tensor is never None
            return False
        return _F.eq(self, o)

    def __ne__(self, o):
        if o is None:
            return True
        return _F.ne(self, o)

    def __lt__(self, o):
        return _F.lt(self, o)

    def __le__(self, o):
        return _F.le(self, o)

    def __gt__(self, o):
        return _F.gt(self, o)

    def __ge__(self, o):
        return _F.ge(self, o)

    def __invert__(self):
        # torch: logical not for bool, bitwise not (two's complement: -x - 1) for integers
        B = self._B
        if self.array.dtype == B.bool_dtype:
            return _F.logical_not(self)
        if B.is_floating(self.array.dtype):
            raise TypeError(f"gradkit: ~ (bitwise_not) is only defined for bool and integer "
                            f"tensors, got {self.dtype_name}")
        return _F.sub(_F.neg(self), 1)

    def __and__(self, o):  # as torch: logical on bools, bitwise on integers
        return (_F.logical_and if _bools(self, o) else _F.bitwise_and)(self, o)

    def __or__(self, o):
        return (_F.logical_or if _bools(self, o) else _F.bitwise_or)(self, o)

    def __getitem__(self, idx):
        return _F.getitem(self, idx)

    def __setitem__(self, idx, value):
        _F.setitem_(self, idx, value)

    def __iadd__(self, o):
        return _F.add_(self, o)

    def __isub__(self, o):
        return _F.sub_(self, o)

    def __imul__(self, o):
        return _F.mul_(self, o)

    def __itruediv__(self, o):
        return _F.div_(self, o)

    # --------------------------------------------------- method forms
    # Every function of the differentiable namespace is also a method.
    def exp(self):
        return _float_unary(_F._exp_vjp, self)

    def log(self):
        return _float_unary(_F._log_vjp, self)

    def sqrt(self):
        return _float_unary(_F._sqrt_vjp, self)

    def abs(self):
        return _F.abs(self)

    def neg(self):
        return _F.neg(self)

    def sin(self):
        return _float_unary(_F._sin_vjp, self)

    def cos(self):
        return _float_unary(_F._cos_vjp, self)

    def tanh(self):
        return _float_unary(_F._tanh_vjp, self)

    def sigmoid(self):
        return _float_unary(_F._sigmoid_vjp, self)

    def relu(self):
        return _F.relu(self)

    def sign(self):
        return _F.sign(self)

    def clamp(self, *args, **kwargs):
        return _F.clamp(self, *args, **kwargs)

    def pow(self, *args, **kwargs):
        return _F.pow(self, *args, **kwargs)

    def maximum(self, *args, **kwargs):
        return _F.maximum(self, *args, **kwargs)

    def minimum(self, *args, **kwargs):
        return _F.minimum(self, *args, **kwargs)

    def add(self, *args, **kwargs):
        return _F.add(self, *args, **kwargs)

    def sub(self, *args, **kwargs):
        return _F.sub(self, *args, **kwargs)

    def mul(self, *args, **kwargs):
        return _F.mul(self, *args, **kwargs)

    def div(self, *args, **kwargs):
        return _F.div(self, *args, **kwargs)

    def matmul(self, *args, **kwargs):
        return _F.matmul(self, *args, **kwargs)

    def sum(self, *args, **kwargs):
        return _F.sum(self, *args, **kwargs)

    def mean(self, *args, **kwargs):
        return _F.mean(self, *args, **kwargs)

    def max(self, *args, **kwargs):
        return _F.max(self, *args, **kwargs)

    def min(self, *args, **kwargs):
        return _F.min(self, *args, **kwargs)

    def amax(self, *args, **kwargs):
        return _F.amax(self, *args, **kwargs)

    def amin(self, *args, **kwargs):
        return _F.amin(self, *args, **kwargs)

    def argmax(self, *args, **kwargs):
        return _F.argmax(self, *args, **kwargs)

    def argmin(self, *args, **kwargs):
        return _F.argmin(self, *args, **kwargs)

    def all(self, *args, **kwargs):
        return _F.all(self, *args, **kwargs)

    def any(self, *args, **kwargs):
        return _F.any(self, *args, **kwargs)

    def reshape(self, *args, **kwargs):
        return _F.reshape(self, *args, **kwargs)

    def view(self, *args, **kwargs):
        return _F.view(self, *args, **kwargs)

    def flatten(self, *args, **kwargs):
        return _F.flatten(self, *args, **kwargs)

    def transpose(self, *args, **kwargs):
        return _F.transpose(self, *args, **kwargs)

    def permute(self, *args, **kwargs):
        return _F.permute(self, *args, **kwargs)

    def expand(self, *args, **kwargs):
        return _F.expand(self, *args, **kwargs)

    def expand_as(self, *args, **kwargs):
        return _F.expand_as(self, *args, **kwargs)

    def broadcast_to(self, *args, **kwargs):
        return _F.broadcast_to(self, *args, **kwargs)

    def squeeze(self, *args, **kwargs):
        return _F.squeeze(self, *args, **kwargs)

    def unsqueeze(self, *args, **kwargs):
        return _F.unsqueeze(self, *args, **kwargs)

    def where(self, condition, y):  # torch: self where condition, else y
        return _F.where(condition, self, y)

    def add_(self, *args, **kwargs):
        return _F.add_(self, *args, **kwargs)

    def sub_(self, *args, **kwargs):
        return _F.sub_(self, *args, **kwargs)

    def mul_(self, *args, **kwargs):
        return _F.mul_(self, *args, **kwargs)

    def div_(self, *args, **kwargs):
        return _F.div_(self, *args, **kwargs)

    def zero_(self, *args, **kwargs):
        return _F.zero_(self, *args, **kwargs)

    def fill_(self, *args, **kwargs):
        return _F.fill_(self, *args, **kwargs)

    def copy_(self, *args, **kwargs):
        return _F.copy_(self, *args, **kwargs)

    def clamp_(self, *args, **kwargs):
        return _F.clamp_(self, *args, **kwargs)

    def masked_fill(self, *args, **kwargs):
        return _F.masked_fill(self, *args, **kwargs)

    def log1p(self):
        return _F.log1p(self)

    def expm1(self):
        return _F.expm1(self)

    def rsqrt(self):
        return _F.rsqrt(self)

    def reciprocal(self):
        return _F.reciprocal(self)

    def square(self):
        return _F.square(self)

    def tan(self):
        return _F.tan(self)

    def erf(self):
        return _F.erf(self)

    def gelu(self, *args, **kwargs):
        return _F.gelu(self, *args, **kwargs)

    def silu(self):
        return _F.silu(self)

    def softplus(self, *args, **kwargs):
        return _F.softplus(self, *args, **kwargs)

    def prod(self, *args, **kwargs):
        return _F.prod(self, *args, **kwargs)

    def var(self, *args, **kwargs):
        return _F.var(self, *args, **kwargs)

    def std(self, *args, **kwargs):
        return _F.std(self, *args, **kwargs)

    def logsumexp(self, *args, **kwargs):
        return _F.logsumexp(self, *args, **kwargs)

    def norm(self, *args, **kwargs):
        return _F.norm(self, *args, **kwargs)

    def cumsum(self, *args, **kwargs):
        return _F.cumsum(self, *args, **kwargs)

    def softmax(self, *args, **kwargs):
        return _F.softmax(self, *args, **kwargs)

    def log_softmax(self, *args, **kwargs):
        return _F.log_softmax(self, *args, **kwargs)

    def flip(self, *args, **kwargs):
        return _F.flip(self, *args, **kwargs)

    def repeat(self, *args, **kwargs):
        return _F.repeat(self, *args, **kwargs)

    def split(self, *args, **kwargs):
        return _F.split(self, *args, **kwargs)

    def chunk(self, *args, **kwargs):
        return _F.chunk(self, *args, **kwargs)

    def gather(self, *args, **kwargs):
        return _F.gather(self, *args, **kwargs)

    def index_add(self, *args, **kwargs):
        return _F.index_add(self, *args, **kwargs)


def _mark_leaf_base(vc, requires_grad):
    """A leaf's version counter, shared with every view of it, carries a second
    entry while the leaf requires grad: an in-place op through a view taken before
    (``b = a[:]; a.requires_grad = True; b.add_(1)``) can then refuse, as torch."""
    if requires_grad:
        if len(vc) == 1:
            vc.append(True)
    else:
        del vc[1:]


def _bools(a, b):
    return a.array.dtype == a._B.bool_dtype and (
        b.__class__ is bool or (b.__class__ is Tensor and b.array.dtype == b._B.bool_dtype))


def _check_grad(t, g):
    """``t.grad = g``: refuse what torch refuses (type, itself, device, dtype, size)."""
    if not isinstance(g, Tensor):
        raise TypeError(f"gradkit: assigned grad expected to be a Tensor or None but got grad "
                        f"of type {type(g).__name__}; wrap it with gk.tensor(...) on the "
                        f"tensor's device ({t._B.device_str})")
    if g is t:
        raise GradkitError("gradkit: can't assign a tensor as its own grad; assign a clone()")
    if g._B is not t._B:
        raise GradkitError(f"gradkit: assigned grad has data located on a different device: the "
                           f"grad is on {g._B.device_str}, the tensor on {t._B.device_str}; "
                           f"move it with .to({t._B.device_str!r})")
    if g.array.dtype != t.array.dtype:
        raise GradkitError(f"gradkit: assigned grad has data of a different type: the grad is "
                           f"{g.dtype_name}, the tensor {t.dtype_name}; cast it with "
                           f".to(gk.{t.dtype_name})")
    if g.array.shape != t.array.shape:
        raise GradkitError(f"gradkit: assigned grad has data of a different size: the grad has "
                           f"shape {tuple(g.array.shape)}, the tensor {tuple(t.array.shape)}")


def _host_check(t, what):
    if mode.host_sync_guard and t._B.type != "cpu":
        from .reliability import host_sync_violation
        host_sync_violation(what)


from .ops import functional as _F  # noqa: E402  (circular: functional needs Tensor)
from .ops.functional import _binary, _float_unary  # noqa: E402
