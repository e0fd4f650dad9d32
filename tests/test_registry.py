"""The op registry is checked, not write-only (docs/ARCHITECTURE.md).

- every primitive's forward kernel exists on every backend: NumPy, CuPy (the
  class is inspected: cupy need not be installed) and the fake accelerator;
- every ``F.<name>`` a VJP (or a helper taking ``F``) calls exists in both
  namespaces: the raw backends and the differentiable ``gradkit.ops.functional``;
- every primitive and every public op is exercised by the op table
  (tests/op_table.py), up to third-order derivatives;
- the method table matches the public API: a Tensor method and the function of
  the same name are one object, and nothing else is hand-written on Tensor.
"""
import ast
import inspect
import pkgutil
import sys

import numpy as np
import pytest

import gradkit as gk
import gradkit.ops
from gradkit.backends.cupy_backend import CupyBackend
from gradkit.backends.numpy_backend import NumpyBackend
try:
    from gradkit.backends.strict_backend import StrictBackend
except ImportError:   # no array_api_strict (the GPU machine): the fake's rows are skipped
    StrictBackend = None
from gradkit.graph import Node
from gradkit.ops import dispatch, functional
from gradkit.ops.core import METHODS, NAMESPACE, PRIMS, PUBLIC, RAW_ONLY, Prim

from op_table import OPS, draw

BACKENDS = {"numpy": NumpyBackend, "cupy": CupyBackend, "fake": StrictBackend}
if StrictBackend is None:
    del BACKENDS["fake"]


def test_fake_accelerator_is_checked_too():
    if StrictBackend is None:
        pytest.skip("array_api_strict is not installed: the fake accelerator's kernels "
                    "were not checked")
    assert "fake" in BACKENDS

# Public ops that are functions only, as in torch (Tensor.where exists, with
# torch's other signature: x.where(condition, y)); Tensor.numel/detach_ belong to
# the data floor (tensor.py).
FUNCTION_ONLY = {"cat", "concat", "concatenate", "stack", "einsum", "where", "detach",
                 "randperm", "numel", "detach_"}
METHOD_VARIANTS = {"where"}
# torch's public signature differs from the kernel-shaped F.<name> VJPs call
NAMESPACE_VARIANTS = {"where", "take_along_dim"}


def _gradkit_modules():
    mods = [gk]
    for info in pkgutil.walk_packages(gk.__path__, "gradkit."):
        if info.name in ("gradkit.__main__",):
            continue
        mods.append(sys.modules.get(info.name) or __import__(info.name, fromlist=["_"]))
    return mods


def test_every_primitive_has_its_kernel_on_every_backend():
    missing = []
    for p in PRIMS.values():
        if p.kernel is None:
            continue
        for bname, cls in BACKENDS.items():
            if p.kernel not in cls.kernel_names():
                missing.append(f"{p.name}: kernel {p.kernel!r} missing on {bname}")
    assert not missing, "\n".join(missing)


def _f_calls():
    """{name: [where]} for every ``F.<name>`` inside a function whose first
    parameter is ``F`` (VJPs and their helpers), over all of gradkit."""
    found = {}
    for mod in _gradkit_modules():
        try:
            src = inspect.getsource(mod)
        except (OSError, TypeError):
            continue
        for node in ast.walk(ast.parse(src)):
            if not isinstance(node, (ast.FunctionDef, ast.Lambda)):
                continue
            args = node.args.args
            if not args or args[0].arg != "F":
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) \
                        and sub.value.id == "F" and not sub.attr.startswith("__"):
                    found.setdefault(sub.attr, []).append(
                        f"{mod.__name__}.{getattr(node, 'name', '<lambda>')}")
    return found


def test_vjp_names_exist_in_both_namespaces():
    calls = _f_calls()
    assert len(calls) > 30  # the scan found the VJPs
    missing = []
    for name, where in sorted(calls.items()):
        if not hasattr(functional, name) and name not in RAW_ONLY:
            missing.append(f"F.{name} (used by {where[0]}) is not in gradkit.ops.functional")
        for bname, cls in BACKENDS.items():
            if name not in cls.kernel_names():
                missing.append(f"F.{name} (used by {where[0]}) is not a {bname} kernel")
    assert not missing, "\n".join(missing)


def test_fast_paths_get_only_flat_primitives():
    """``apply_unary``/``apply_binary`` handle save, save_for and out, not
    ``res`` or ``view``: check every primitive dispatched to them."""
    bad = []
    for mod in _gradkit_modules():
        try:
            tree = ast.parse(inspect.getsource(mod))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("_unary", "_float_unary", "_binary", "apply_unary") \
                    and node.args and isinstance(node.args[0], ast.Name):
                p = getattr(mod, node.args[0].id, None)
                if isinstance(p, Prim) and (p.res or p.view):
                    bad.append(f"{mod.__name__}: {p.name} via {node.func.id}")
    assert not bad, bad


def _graph_prims(t, into):
    """Add the primitive names of every node in ``t``'s graph to ``into``."""
    stack, seen = [t.grad_fn], set()
    while stack:
        n = stack.pop()
        if n is None or n.__class__ is not Node or n in seen:
            continue
        seen.add(n)
        into.add(n.p.name)
        stack.extend(e[0] for e in n.edges if e is not None)


def _run_record(op, rng, prims=None):
    arrays = [draw(rng, s, op.domain[i] if i < len(op.domain) else "any")
              for i, s in enumerate(op.shapes)]
    # float32: a cast to float64 (``.double()``) must run its primitive too
    xs = [gk.tensor(a.astype(np.float32) if a.dtype.kind == "f" else a,
                    requires_grad=a.dtype.kind == "f") for a in arrays]
    ins = [x for x in xs if x.requires_grad]
    out = op.fn(*xs)
    for _ in range(3):  # first, second and third order: each order's VJPs record nodes
        if prims is not None and out.__class__ is gk.Tensor:
            _graph_prims(out, prims)
        if not ins or not out.requires_grad:
            return
        # the output gradient requires grad too, so even a linear op's VJP records
        w = gk.tensor(rng.standard_normal(out.shape), dtype=out.dtype, requires_grad=True)
        ins.append(w)
        gs = gk.grad(out, ins, grad_outputs=w, create_graph=True, allow_unused=True)
        gs = [g for g in gs if g is not None and g.requires_grad]
        if prims is not None:
            for g in gs:
                _graph_prims(g, prims)
        if not gs:
            return
        out = gk.cat([g.reshape(-1) for g in gs])


@pytest.fixture(scope="module")
def coverage():
    """(primitive names that made nodes, public functions called) while the op
    table runs on cpu in float64."""
    prims, called = set(), set()
    codes = {}
    for name, f in PUBLIC.items():
        codes.setdefault(f.__code__, set()).add(name)
    def prof(frame, event, arg):
        if event == "call":
            names = codes.get(frame.f_code)
            if names:
                called.update(names)

    sys.setprofile(prof)
    try:
        for op in OPS:
            try:
                _run_record(op, np.random.default_rng(0), prims)
            except gk.GradkitError:
                pass  # a non-smooth op's higher order: what ran still counts
    finally:
        sys.setprofile(None)
    return prims, called


def test_op_table_exercises_every_primitive(coverage):
    prims, _ = coverage
    missing = sorted(set(PRIMS) - prims)
    assert not missing, f"primitives no op-table record reaches (add a record): {missing}"


def test_op_table_exercises_every_public_op(coverage):
    _, called = coverage
    missing = sorted(set(PUBLIC) - called)
    assert not missing, f"public ops no op-table record calls (add a record): {missing}"


def test_method_table_is_installed_and_matches_the_functions():
    wrong = []
    for name, f in METHODS.items():
        if Tensor_dict().get(name) is not f:
            wrong.append(f"Tensor.{name} is not the table's entry")
    for name, f in PUBLIC.items():
        g = getattr(gk, name)
        if g is not f and getattr(g, "__wrapped__", None) is not f:   # or its out= form
            wrong.append(f"gk.{name} is not the table's entry")
        if name in FUNCTION_ONLY:
            continue
        if name not in METHODS:
            wrong.append(f"gk.{name} has no method form (or add it to FUNCTION_ONLY)")
        elif METHODS[name] is not f and name not in METHOD_VARIANTS:
            wrong.append(f"Tensor.{name} is not the function gk.{name} itself")
    assert not wrong, "\n".join(wrong)


def Tensor_dict():
    return vars(gk.Tensor)


def test_no_hand_written_forwarders_on_tensor():
    """Everything on Tensor is either the data/autograd floor (tensor.py) or an
    entry of the method table."""
    stray = []
    for name, v in vars(gk.Tensor).items():
        f = v.fget if isinstance(v, property) else v
        if not callable(f) or name in METHODS:
            continue
        if getattr(f, "__module__", "gradkit.tensor") != "gradkit.tensor":
            stray.append(name)
    assert not stray, stray


def test_namespace_is_the_registry():
    assert all(getattr(functional, n) is f for n, f in NAMESPACE.items())
    assert set(PUBLIC) <= set(NAMESPACE)
    differ = {n for n, f in PUBLIC.items() if NAMESPACE[n] is not f}
    assert differ == NAMESPACE_VARIANTS, differ
    # the dispatch helpers are not ops
    assert not hasattr(functional, "_binary") and hasattr(dispatch, "_binary")
    assert gradkit.ops.functional is functional


def test_fast_paths_honour_the_flags_of_the_general_path():
    """apply_unary/apply_binary are specialisations of apply: same node, same
    saved values, every Tensor slot set. (apply_binary once dropped ``out``
    when ``save`` was empty.)"""
    from gradkit.ops.core import apply, apply_binary, apply_unary
    a = gk.tensor([1.0, 2.0], requires_grad=True)
    b = gk.tensor([3.0, 4.0])
    B = a._B
    p = Prim("mul", None, out=True)   # saves its output only
    fast = apply_binary(p, B, a, b, a.array, b.array)
    slow = apply(p, B, (a, b), (a.array, b.array))
    for t in (fast, slow):
        assert len(t.grad_fn.saved) == 1 and t.grad_fn.saved[0] is t.array
        assert t.grad_fn.needs == (True, False)
    q = Prim("neg", None, save=(0,), out=True)
    fast, slow = apply_unary(q, a), apply(q, B, (a,), (a.array,))
    assert [len(t.grad_fn.saved) for t in (fast, slow)] == [2, 2]
    v = Prim("neg", None, view=True)
    view = apply(v, B, (a,), (a.array,))
    assert view._vc is a._vc and view._view
    for t in (fast, slow, view, gk.tensor([1.0])):
        for s in gk.Tensor.__slots__[:-1]:
            if s != "_glock":   # made on first use
                getattr(t, s)   # every slot set, whichever path made the tensor
