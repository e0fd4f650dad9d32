"""Linear algebra: matmul (batched, as NumPy) and einsum.

einsum is a composition of differentiable ops (PyTorch's strategy). Each
operand first loses its repeated subscripts (diagonals, by advanced indexing
with aranges), the subscripts no one else needs (a sum) and the size-1 dims
that broadcast against a bigger one (a sum over one element). Operands are
then contracted left to right, two at a time, as one batched matrix product:
the pair is permuted to (batch, own, contracted) and (batch, contracted, own),
reshaped to 3-D (2-D without batch dims) and multiplied, so NumPy runs it on
BLAS, the fake accelerator on its namespace ``matmul``, and the gradient (of
any order) is the one of permute, reshape, sum, getitem and matmul: no einsum
kernel, no einsum VJP.
"""
from ..dtypes import common_dtype_name
from ..errors import GradkitError
from ..tensor import Tensor, const
from .core import apply, apply_binary, method, op, prim
from .dispatch import _as_tensor_like, _device_error, astype
from .indexing import getitem
from .reductions import reduce_sum
from .shape import permute, reshape


# ================================================================ matmul
@prim("matmul", save=(0, 1), save_for=(1, 0))
def _matmul_vjp(F, n, g, a, b, an=2, bn=2):
    ga = gb = None
    if an == 1 and bn == 1:
        return (F.mul(g, b) if n[0] else None), (F.mul(g, a) if n[1] else None)
    if an == 1:      # (k) @ (..., k, n) -> (..., n)
        if n[0]:
            ga = F.matmul(F.unsqueeze(g, -2), F.mT(b))
        if n[1]:
            gb = F.mul(F.unsqueeze(a, -1), F.unsqueeze(g, -2))
        return ga, gb
    if bn == 1:      # (..., m, k) @ (k) -> (..., m)
        if n[0]:
            ga = F.mul(F.unsqueeze(g, -1), b)
        if n[1]:
            gb = F.matmul(F.unsqueeze(g, -2), a)
        return ga, gb
    if n[0]:
        ga = F.matmul(g, F.mT(b))
    if n[1]:
        if bn == 2 and an > 2:
            # a batch against one matrix: fold the batch into one GEMM instead
            # of a batched product summed afterwards
            rows = 1
            for s in a.shape[:-1]:
                rows *= s   # not -1: a reshape can't infer it when a dim is 0
            gb = F.matmul(F.mT(F.reshape(a, (rows, a.shape[-1]))), F.reshape(g, (rows, g.shape[-1])))
        else:
            gb = F.matmul(F.mT(a), g)
    return ga, gb


@prim("mm", save=(0, 1), save_for=(1, 0), kernel="matmul")
def _mm_vjp(F, n, g, a, b):
    """matmul of two matrices, matmul's common case, recorded without
    parameters so that it takes the two-input fast path (apply_binary): a
    third of the recording cost of the general ``matmul`` primitive."""
    return (F.matmul(g, F.mT(b)) if n[0] else None), (F.matmul(F.mT(a), g) if n[1] else None)


@op
def matmul(a, b, *, name="matmul"):
    if a.__class__ is not Tensor or b.__class__ is not Tensor:
        if a.__class__ is Tensor:
            b = _as_tensor_like(b, a, name)
        elif b.__class__ is Tensor:
            a = _as_tensor_like(a, b, name)
        else:
            raise TypeError(f"gradkit.{name}: expected Tensor operands")
    B = a._B
    if b._B is not B:
        raise _device_error(name, a, b)
    ad, bd = a.array, b.array
    if ad.ndim == 0 or bd.ndim == 0:
        raise GradkitError(f"gradkit.{name}: both arguments need at least 1 dim, got shapes "
                           f"{tuple(ad.shape)} and {tuple(bd.shape)}")
    ka = ad.shape[-1]
    kb = bd.shape[-2] if bd.ndim > 1 else bd.shape[0]
    if ka != kb:
        raise GradkitError(
            f"gradkit.{name}: shapes {tuple(ad.shape)} and {tuple(bd.shape)} cannot be "
            f"multiplied ({ka} != {kb}: the last dim of the first must equal the "
            f"{'second-to-last' if bd.ndim > 1 else 'only'} dim of the second)")
    if ad.dtype != bd.dtype:   # as torch: no promotion in matrix products
        raise GradkitError(f"gradkit.{name}: expected both operands to have the same dtype, but "
                           f"got {a.dtype_name} and {b.dtype_name}; convert one, e.g. "
                           f"b.to(gk.{a.dtype_name})")
    if ad.ndim == 2 and bd.ndim == 2:
        return apply_binary(_mm_vjp, B, a, b, ad, bd)
    if ad.ndim > 2 and bd.ndim > 2 and ad.shape[:-2] != bd.shape[:-2]:
        for i, j in zip(ad.shape[-3::-1], bd.shape[-3::-1]):
            if i != j and i != 1 and j != 1:
                raise GradkitError(
                    f"gradkit.{name}: the batch dimensions of shapes {tuple(ad.shape)} and "
                    f"{tuple(bd.shape)} do not broadcast ({i} vs {j}); make them equal or 1")
    return apply(_matmul_vjp, B, (a, b), (ad, bd), None, {"an": ad.ndim, "bn": bd.ndim})


method("__matmul__", matmul)


@method("__rmatmul__")
def _rmatmul(self, o):
    return matmul(o, self)


# ================================================================ einsum
_LETTERS = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "abcdefghijklmnopqrstuvwxyz")}


def _err(eq, msg):
    return GradkitError(f"gradkit.einsum('{eq}'): {msg}")


def _parse_spec(eq, spec, ndim, where):
    """Subscripts -> integer labels; the dims under '...' get labels -k..-1
    (right-aligned, so ellipsis dims of different operands broadcast)."""
    if spec.count("...") > 1 or spec.replace("...", "").count(".") > 0:
        raise _err(eq, f"{where} has more than one ellipsis or a stray '.'")
    head, ell, tail = spec.partition("...")
    for c in head + tail:
        if c not in _LETTERS:
            raise _err(eq, f"invalid subscript '{c}' in {where}: use letters a-z, A-Z")
    if not ell:
        if len(head) != ndim:
            raise _err(eq, f"{where} has {len(head)} subscripts for a tensor with {ndim} dims")
        return [_LETTERS[c] for c in head], 0
    k = ndim - len(head) - len(tail)
    if k < 0:
        raise _err(eq, f"{where} has more subscripts than the tensor's {ndim} dims")
    return ([_LETTERS[c] for c in head] + list(range(-k, 0)) + [_LETTERS[c] for c in tail]), k


@op(method=False)
def einsum(equation, *operands):
    """``gk.einsum('ij,jk->ik', a, b)``, or with a list of operands, as torch."""
    if not isinstance(equation, str):
        raise TypeError(f"gradkit.einsum: the first argument must be the equation (a str), got "
                        f"{type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise _err(equation, "expected at least one operand")
    for i, t in enumerate(operands):
        if t.__class__ is not Tensor:
            raise TypeError(f"gradkit.einsum: operand {i} is a {type(t).__name__}, not a Tensor")
        if t._B is not operands[0]._B:
            raise _device_error("einsum", operands[0], t)
    names = {t.dtype_name for t in operands}
    if len(names) > 1:
        target = common_dtype_name(names)
        operands = tuple(astype(t, target) for t in operands)

    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    specs = lhs.split(",")
    if len(specs) != len(operands):
        raise _err(equation, f"{len(specs)} operand subscripts for {len(operands)} tensors")
    labels, nell = [], 0
    for i, (s, t) in enumerate(zip(specs, operands)):
        lab, k = _parse_spec(equation, s, t.array.ndim, f"operand {i}")
        labels.append(lab)
        nell = max(nell, k)
    if arrow:
        if rhs.count("...") > 1 or rhs.replace("...", "").count(".") > 0:
            raise _err(equation, "the output has more than one ellipsis or a stray '.'")
        head, ell, tail = rhs.partition("...")
        for c in head + tail:
            if c not in _LETTERS:
                raise _err(equation, f"invalid subscript '{c}' in the output")
        # ellipsis dims missing from the output are summed, as torch
        out = ([_LETTERS[c] for c in head] + (list(range(-nell, 0)) if ell else [])
               + [_LETTERS[c] for c in tail])
        if len(set(out)) != len(out):
            raise _err(equation, "a subscript appears more than once in the output")
    else:   # implicit output: ellipsis dims, then subscripts used once, sorted
        count = {}
        for lab in labels:
            for c in lab:
                count[c] = count.get(c, 0) + 1
        out = list(range(-nell, 0)) + sorted(c for c, n in count.items() if n == 1 and c >= 0)

    sizes = {}
    for i, (lab, t) in enumerate(zip(labels, operands)):
        for c, s in zip(lab, t.array.shape):
            old = sizes.get(c)
            if old is None or old == 1:
                sizes[c] = s
            elif s != old and s != 1:
                raise _err(equation, f"subscript sizes disagree: {old} vs {s} (operand {i}, "
                                     f"shape {t.shape})")
    for c in out:
        if c not in sizes:
            raise _err(equation, "an output subscript does not appear in any operand")

    # 1) per operand: diagonals, broadcast size-1 dims, subscripts nobody else needs
    ops = []
    for i, (t, lab) in enumerate(zip(operands, labels)):
        t, lab = _diagonals(t, lab)
        others = set(out)
        for j, lj in enumerate(labels):
            if j != i:
                others.update(lj)
        drop = [d for d, c in enumerate(lab) if c not in others
                or (t.array.shape[d] == 1 and sizes[c] != 1)]
        if drop:
            t = reduce_sum(t, tuple(drop))
            lab = [c for d, c in enumerate(lab) if d not in drop]
        ops.append((t, lab))

    # 2) contract left to right, two at a time
    t, lab = ops[0]
    for j in range(1, len(ops)):
        keep = set(out)
        for _, lk in ops[j + 1:]:
            keep.update(lk)
        t, lab = _contract(t, lab, ops[j][0], ops[j][1], keep)

    # 3) what remains beyond the output is summed; then the output order
    extra = [d for d, c in enumerate(lab) if c not in out]
    if extra:
        t = reduce_sum(t, tuple(extra))
        lab = [c for c in lab if c in out]
    if lab != out:
        t = permute(t, tuple(lab.index(c) for c in out))
    return t


def _diagonals(t, lab):
    """Replace each repeated subscript by the diagonal over its dims."""
    B = t._B
    while len(set(lab)) != len(lab):
        seen = {}
        for d, c in enumerate(lab):
            if c in seen:
                p, q = seen[c], d
                break
            seen[c] = d
        rest = [d for d in range(len(lab)) if d not in (p, q)]
        n = min(t.array.shape[p], t.array.shape[q])
        ar = const(B, B.arange(0, n, 1, B.dtypes["int64"]))
        t = getitem(permute(t, (p, q, *rest)), (ar, ar))
        lab = [lab[p]] + [lab[d] for d in rest]
    return t, lab


def _contract(a, la, b, lb, keep):
    sb = set(lb)
    sa = set(la)
    batch = [c for c in la if c in sb and c in keep]
    con = [c for c in la if c in sb and c not in keep]
    aown = [c for c in la if c not in sb]
    bown = [c for c in lb if c not in sa]
    size = {}
    for c, s in zip(la, a.array.shape):
        size[c] = s
    for c, s in zip(lb, b.array.shape):
        size[c] = s

    def prod(cs):
        n = 1
        for c in cs:
            n *= size[c]
        return n

    nb, na, nc, no = prod(batch), prod(aown), prod(con), prod(bown)
    a = permute(a, tuple(la.index(c) for c in batch + aown + con))
    b = permute(b, tuple(lb.index(c) for c in batch + con + bown))
    if batch:
        y = matmul(reshape(a, (nb, na, nc)), reshape(b, (nb, nc, no)))
    else:
        y = matmul(reshape(a, (na, nc)), reshape(b, (nc, no)))
    return (reshape(y, tuple(size[c] for c in batch + aown + bown)),
            batch + aown + bown)
