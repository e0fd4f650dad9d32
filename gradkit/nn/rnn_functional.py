"""Recurrent layers as primitives over a whole sequence (one direction of one
layer per call).

The caller projects the inputs of all time steps with one GEMM; the
primitive runs the recurrence (one GEMM with the recurrent weight and the
fused gate math per step: backend kernels ``lstm_seq``, ``gru_seq``,
``rnn_seq`` in ``backends/seq_kernels.py``) and records ONE node. Its VJP
runs the backward recurrence on the saved activations (nothing recomputed)
and forms the recurrent weight's gradient as one GEMM over all steps.

Under ``create_graph`` the saved activations would be constants to the new
graph, so there (only) the VJP rebuilds the recurrence from gradkit ops on the
attached inputs and differentiates that composition with ``gk.grad``: second
and higher derivatives are composed, exact, and slower.

Shapes: ``xg`` (T, N, G*H) the projected inputs (LSTM G=4 with both biases,
GRU G=3 with ``b_ih`` only, RNN G=1 with both biases), ``w_hh`` (G*H, H),
``h0``/``c0`` (N, H). Outputs: ``hs`` (T, N, H), ``h_T`` and, for the LSTM,
``c_T`` (N, H): separate outputs, so their gradients enter the backward
recurrence directly instead of through a zero-padded full-size gradient.
"""
from ..autograd.engine import grad as _grad
from ..errors import GradkitError
from ..graph import mode
from ..ops import functional as _F
from ..ops.core import edges_of, op_error, prim, raw_only, record
from ..tensor import Tensor, const

__all__ = ["lstm_seq", "gru_seq", "rnn_seq"]

# the VJPs call these fused backward recurrences only on raw arrays (under
# create_graph they differentiate the composed recurrence instead)
raw_only("lstm_seq_backward", "gru_seq_backward", "rnn_seq_backward")


def _apply_seq(p, B, args, nout, params):
    """Run ``B.<p.name>`` on the raw arrays of ``args`` (Tensors or None) and
    record one node with ``nout`` outputs. The kernel returns (outs, residuals);
    the node saves the inputs (attached under create_graph), the outputs and
    the residuals."""
    ref = args[0]
    for a in args[1:]:
        if a is None:
            continue
        if a._B is not B:
            raise GradkitError(f"gradkit.nn.{p.name}: expected all tensors on one device, got "
                               f"{B.device_str} and {a._B.device_str}; move them with .to()")
        if a.array.dtype != ref.array.dtype:
            raise GradkitError(f"gradkit.nn.{p.name}: input and hidden tensors / weights must "
                               f"have one dtype, got {ref.dtype_name} and {a.dtype_name}; "
                               "convert with .to(dtype) (or the module with .double()/.float())")
    arrays = [None if a is None else a.array for a in args]
    try:
        outs, res = getattr(B, p.kernel)(*arrays, **params)
    except Exception as e:
        raise op_error(p.name, tuple(a for a in args if a is not None), e) from None
    ts = [const(B, o) for o in outs]
    if mode.enabled:
        edges = edges_of(args)
        if edges is not None:
            node = record(p, B, ts, args, arrays, edges, params, (tuple(outs), res))
            for t in ts:   # the outputs are saved too
                node.vers += (t._vc, 0)
    return ts


def _composed_vjp(composed, n, gs, ins, params):
    """create_graph: differentiate the recurrence rebuilt from gradkit ops."""
    outs = composed(*ins, **params)
    pairs = [(o, g) for o, g in zip(outs, gs) if g is not None]
    want = [x for x, need in zip(ins, n) if need]
    got = iter(_grad([o for o, _ in pairs], want, [g for _, g in pairs],
                     create_graph=True, allow_unused=True))
    return tuple(next(got) if need else None for need in n)


def _glist(gs, nout):
    return list(gs) if isinstance(gs, list) else [gs] + [None] * (nout - 1)


def _is_graph(gs):
    return any(g.__class__ is Tensor for g in gs)


# ====================================================================== LSTM
def _lstm_vjp(F, n, gs, xg, w, h0, c0, saved, **params):
    gs = _glist(gs, 3)
    if _is_graph(gs):
        return _composed_vjp(_lstm_composed, n, gs, (xg, w, h0, c0), params)
    (hs, _, _), (acts, cs, tcs) = saved
    dG, dw, dh, dc = F.lstm_seq_backward(gs[0], gs[1], gs[2], w, h0, c0, hs, acts, cs, tcs)
    return (dG if n[0] else None, dw if n[1] else None, dh if n[2] else None,
            dc if n[3] else None)


_LSTM = prim("lstm_seq", save=(0, 1, 2, 3))(_lstm_vjp)


def _lstm_composed(xg, w, h0, c0):
    H = h0.shape[-1]
    wt = _F.mT(w)
    h, c = h0, c0
    hs = []
    for t in range(xg.shape[0]):
        gates = _F.add(xg[t], _F.matmul(h, wt))
        i = _F.sigmoid(gates[:, :H])
        f = _F.sigmoid(gates[:, H:2 * H])
        g = _F.tanh(gates[:, 2 * H:3 * H])
        o = _F.sigmoid(gates[:, 3 * H:])
        c = _F.add(_F.mul(f, c), _F.mul(i, g))
        h = _F.mul(o, _F.tanh(c))
        hs.append(h)
    return _F.stack(hs, 0), h, c


def lstm_seq(xg, w_hh, h0, c0):
    """LSTM recurrence over xg (T, N, 4H) (both biases included), w_hh (4H, H),
    h0, c0 (N, H) -> (hs (T, N, H), h_T, c_T (N, H)). Differentiable (any
    order); every device."""
    return tuple(_apply_seq(_LSTM, xg._B, (xg, w_hh, h0, c0), 3, {}))


# ======================================================================= GRU
def _gru_vjp(F, n, gs, xg, w, b, h0, saved, **params):
    gs = _glist(gs, 2)
    if _is_graph(gs):
        return _composed_vjp(_gru_composed, n, gs, (xg, w, b, h0), params)
    (hs, _), (acts, ghn) = saved
    dX, dw, db, dh = F.gru_seq_backward(gs[0], gs[1], w, h0, hs, acts, ghn)
    return (dX if n[0] else None, dw if n[1] else None, db if n[2] else None,
            dh if n[3] else None)


_GRU = prim("gru_seq", save=(0, 1, 2, 3))(_gru_vjp)


def _gru_composed(xg, w, b, h0):
    H = h0.shape[-1]
    wt = _F.mT(w)
    h = h0
    hs = []
    for t in range(xg.shape[0]):
        x = xg[t]
        gh = _F.matmul(h, wt)
        if b is not None:
            gh = _F.add(gh, b)
        r = _F.sigmoid(_F.add(x[:, :H], gh[:, :H]))
        z = _F.sigmoid(_F.add(x[:, H:2 * H], gh[:, H:2 * H]))
        nn = _F.tanh(_F.add(x[:, 2 * H:], _F.mul(r, gh[:, 2 * H:])))
        h = _F.add(nn, _F.mul(z, _F.sub(h, nn)))
        hs.append(h)
    return _F.stack(hs, 0), h


def gru_seq(xg, w_hh, b_hh, h0):
    """GRU recurrence over xg (T, N, 3H) (b_ih included, b_hh separate, as
    torch: it sits inside ``r * (W_hn h + b_hn)``; None without bias), w_hh
    (3H, H), h0 (N, H) -> (hs (T, N, H), h_T (N, H))."""
    return tuple(_apply_seq(_GRU, xg._B, (xg, w_hh, b_hh, h0), 2, {}))


# ======================================================================= RNN
def _rnn_vjp(F, n, gs, xg, w, h0, saved, relu=False):
    gs = _glist(gs, 2)
    if _is_graph(gs):
        return _composed_vjp(_rnn_composed, n, gs, (xg, w, h0), {"relu": relu})
    (hs, _), _ = saved
    dA, dw, dh = F.rnn_seq_backward(gs[0], gs[1], w, h0, hs, relu)
    return dA if n[0] else None, dw if n[1] else None, dh if n[2] else None


_RNN = prim("rnn_seq", save=(0, 1, 2))(_rnn_vjp)


def _rnn_composed(xg, w, h0, relu=False):
    wt = _F.mT(w)
    h = h0
    hs = []
    act = _F.relu if relu else _F.tanh
    for t in range(xg.shape[0]):
        h = act(_F.add(xg[t], _F.matmul(h, wt)))
        hs.append(h)
    return _F.stack(hs, 0), h


def rnn_seq(xg, w_hh, h0, relu=False):
    """Elman recurrence ``h' = tanh(xg[t] + h @ w_hh^T)`` (or relu) over xg
    (T, N, H) (both biases included) -> (hs (T, N, H), h_T (N, H))."""
    return tuple(_apply_seq(_RNN, xg._B, (xg, w_hh, h0), 2, {"relu": relu}))
