"""Layer, batch (training), instance and group normalization as ONE primitive.

``fused_norm(x, w, b, geom, eps)`` normalizes ``x`` over the sets the geometry
describes (``backends/norm_kernels.py``: a view ``xs`` of x, the reduced axes
``red``, the parameters' broadcast shape ``ws``) and applies ``* w + b``. The
forward kernel makes one statistics pass (two-pass mean and biased variance,
float32 for float16 input) and one fused normalize-and-affine pass; the node
saves x, w and the per-set mean and rstd. The VJP is the closed form

    xhat = (x - mean) * rstd,  gw = g * w
    gx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))     (over each set)
    dw = sum(g * xhat),  db = sum(g)                          (over the rest)

run as fused kernels on the raw path (``fused_norm_backward``). Under
``create_graph`` the saved statistics would be constants of the new graph,
so there the same formula is composed with gradkit ops from the attached x:
any order of derivatives follows with no more code (as ``attention.py``).
"""
from ..graph import mode
from ..tensor import Tensor, const
from .core import edges_of, op_error, prim, raw_only, record

raw_only("fused_norm_backward")


@prim("fused_norm", save=(0, 1), res=True)
def _norm_vjp(F, n, g, x, w, res, geom=None, eps=1e-5):
    if g.__class__ is Tensor:   # create_graph: differentiable in x, w and g
        return _composed_vjp(F, n, g, x, w, geom, eps)
    return F.fused_norm_backward(x, w, g, res[0], res[1], geom, n)


def _composed_vjp(F, n, g, x, w, geom, eps):
    xs, red, ws, pshape = geom[0], geom[1], geom[2], geom[4]
    inv = 1.0
    for a in red:
        inv /= xs[a]
    xv, gv = F.reshape(x, xs), F.reshape(g, xs)
    xc = F.sub(xv, F.mul(F.sum(xv, red, True), inv))
    rstd = F.rsqrt(F.add(F.mul(F.sum(F.mul(xc, xc), red, True), inv), eps))
    xhat = F.mul(xc, rstd)
    wa = tuple(a for a, s in enumerate(ws) if s == 1)
    gx = gw = gb = None
    if n[1]:
        gw = F.reshape(F.sum(F.mul(gv, xhat), wa, False), pshape)
    if n[2]:
        gb = F.reshape(F.sum(gv, wa, False), pshape)
    if n[0]:
        if w is not None:
            gv = F.mul(gv, F.reshape(w, ws))
        s1 = F.mul(F.sum(gv, red, True), inv)
        s2 = F.mul(F.sum(F.mul(gv, xhat), red, True), inv)
        gx = F.reshape(F.mul(F.sub(F.sub(gv, s1), F.mul(xhat, s2)), rstd), x.shape)
    return gx, gw, gb


def fused_norm(x, w, b, geom, eps):
    """Run the primitive; -> (y, mean, var): the statistics as raw arrays shaped
    like ``geom``'s view with the reduced axes kept as 1 (the running
    statistics' update reads them, on the device). The callers in
    ``gradkit.nn`` check the arguments; ``w``/``b`` (or None) share x's device
    and dtype."""
    B = x._B
    args = (x, w, b)
    arrays = (x.array, None if w is None else w.array, None if b is None else b.array)
    params = {"geom": geom, "eps": float(eps)}
    try:
        y, (mean, rstd, var) = B.fused_norm(*arrays, **params)
    except Exception as e:
        raise op_error(_caller(geom), args, e) from None
    t = const(B, y)
    if mode.enabled:
        edges = edges_of(args)
        if edges is not None:
            record(_norm_vjp, B, t, args, arrays, edges, params, (mean, rstd))
    return t, mean, var


def _caller(geom):
    return "nn.functional." + geom[5] if len(geom) > 5 else "nn.functional.normalization"
