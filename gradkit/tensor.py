"""Tensor: a backend array + its backend (device) + version counter + grad + node.

This floor holds the data and the autograd bookkeeping; the ops (and every
method that is an op: arithmetic, operators, shape, reductions, conversions)
are installed on the class from the one method table beside the ops
(``gradkit.ops.core.METHODS``, see docs/ARCHITECTURE.md).
"""
import weakref

from .device import device_of
from .dtypes import (DType, DTYPES, dtype_name, to_dtype, float16, float32, float64,  # noqa: F401
                     int8, int16, int32, int64, uint8, bool_)
from .errors import GradkitError
from .graph import mode
from .reliability import host_sync_violation
from .size import Size
from .tensor_repr import tensor_format, tensor_repr

_new = object.__new__


def const(B, arr, vc=None, view=False):
    """The one Tensor constructor: a tensor of backend ``B`` wrapping the raw
    array ``arr``, needing no grad. ``vc``: the version counter to share (a
    view shares its base's), a new one by default."""
    t = _new(Tensor)
    t.array = arr
    t._B = B
    t._grad = None
    t.grad_fn = None
    t._rg = False
    t._oi = 0
    t._hooks = None
    t._vc = [0] if vc is None else vc
    t._view = view
    return t


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
        return tensor_repr(self)

    def __format__(self, spec):
        return tensor_format(self, spec)

    # ----------------------------------------------------------- autograd
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
        return const(self._B, self.array)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"gradkit: .data must be assigned a Tensor, not {type(value).__name__}"
                            " (to set the backend array, assign t.array)")
        if value.device != self.device:
            raise RuntimeError(f"gradkit: can't assign .data on {self.device} from a tensor on "
                               f"{value.device}; move it with .to({str(self.device)!r}) first")
        if self._rg and not self._B.is_floating(value.array.dtype):
            raise RuntimeError(f"gradkit: data set to a tensor that requires gradients must be "
                               f"floating point (as torch), got {value.dtype_name}; convert it "
                               "with .float() first, or set requires_grad=False")
        self.array = value.array

    def detach(self):
        return const(self._B, self.array, self._vc)

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

    def __pos__(self):
        return self


def _mark_leaf_base(vc, requires_grad):
    """A leaf's version counter, shared with every view of it, carries a second
    entry while the leaf requires grad: an in-place op through a view taken before
    (``b = a[:]; a.requires_grad = True; b.add_(1)``) can then refuse, as torch."""
    if requires_grad:
        if len(vc) == 1:
            vc.append(True)
    else:
        del vc[1:]


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
        host_sync_violation(what)
