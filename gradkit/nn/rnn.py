"""Recurrent layers as torch has them: ``RNN LSTM GRU`` and ``RNNCell LSTMCell
GRUCell``, with torch's arguments, gate order, parameter names
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``)
and initialisation (every parameter uniform in +-1/sqrt(hidden_size)), so a
torch ``state_dict`` loads by name.

Per layer and direction: the input projection of all time steps is one GEMM
(``F.linear`` over (T, N, I)); the recurrence is one primitive
(``rnn_functional.lstm_seq``/``gru_seq``/``rnn_seq``). A reverse direction runs
the same primitive on the time-flipped projections (a view).
"""
import math

from ..creation import empty, zeros
from ..ops import functional as _F
from ..ops.shape import flip as _flip
from ..tensor import Tensor, GradkitError
from . import functional as F
from . import init
from .module import Module, Parameter
from .rnn_functional import lstm_seq, gru_seq, rnn_seq

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _projected_lstm(xg, w_hh, w_hr, h, c):
    """LSTM with projections (torch's ``proj_size``): per step ``h = (o * tanh(c))
    @ w_hr^T``, so the recurrence runs on (N, P) states. Composed of
    differentiable ops step by step (any order; slower than the fused
    primitive, which has no projection)."""
    H = c.shape[-1]
    hs = []
    for t in range(xg.shape[0]):
        a = _F.add(xg[t], _F.linear(h, w_hh))
        i, f, g, o = (_F.sigmoid(a[:, :H]), _F.sigmoid(a[:, H:2 * H]), _F.tanh(a[:, 2 * H:3 * H]),
                      _F.sigmoid(a[:, 3 * H:]))
        c = _F.add(_F.mul(f, c), _F.mul(i, g))
        h = _F.linear(_F.mul(o, _F.tanh(c)), w_hr)
        hs.append(h)
    return _F.stack(hs, 0), h, c


def _run(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, reverse=False, w_hr=None):
    """One layer, one direction over x (T, N, I) -> (hs (T, N, H), h_T, c_T or None)."""
    if x.array.dtype != w_ih.array.dtype:   # before linear's matmul names itself
        raise GradkitError(f"gradkit.nn.{mode.split('_')[0]}: input and hidden tensors / weights "
                           f"must have one dtype, got {x.dtype_name} and {w_ih.dtype_name}; "
                           "convert with .to(dtype) (or the module with .double()/.float())")
    xg = F.linear(x, w_ih)
    if mode == "GRU":
        if b_ih is not None:
            xg = _F.add(xg, b_ih)
    elif b_ih is not None:
        xg = _F.add(xg, _F.add(b_ih, b_hh))
    if reverse:
        xg = _flip(xg, (0,))
    c = None
    if w_hr is not None:
        hs, h, c = _projected_lstm(xg, w_hh, w_hr, h0, c0)
    elif mode == "LSTM":
        hs, h, c = lstm_seq(xg, w_hh, h0, c0)
    elif mode == "GRU":
        hs, h = gru_seq(xg, w_hh, b_hh, h0)
    else:
        hs, h = rnn_seq(xg, w_hh, h0, relu=mode == "RNN_RELU")
    if reverse:
        hs = _flip(hs, (0,))
    return hs, h, c


class RNNBase(Module):
    """Shared by RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if mode not in _GATES:
            raise ValueError(f"gradkit.nn.{name}: unknown mode {mode!r}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"gradkit.nn.{name}: hidden_size must be a positive int, got "
                             f"{hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"gradkit.nn.{name}: num_layers must be a positive int, got "
                             f"{num_layers!r}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"gradkit.nn.{name}: dropout should be a number in range [0, 1] "
                             f"representing the probability of an element being zeroed, got "
                             f"{dropout!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"gradkit.nn.{name}: proj_size should be a positive integer or zero "
                             f"to disable projections, got {proj_size!r}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"gradkit.nn.{name}: proj_size argument is only supported for LSTM, "
                             "not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"gradkit.nn.{name}: proj_size has to be smaller than hidden_size, "
                             f"got proj_size={proj_size} and hidden_size={hidden_size}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        G = _GATES[mode] * hidden_size
        D = 2 if bidirectional else 1
        R = proj_size or hidden_size     # the recurrent state's size
        self._flat_weights_names = []
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else R * D
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names = [("weight_ih" + sfx, (G, in_size)), ("weight_hh" + sfx, (G, R))]
                if bias:
                    names += [("bias_ih" + sfx, (G,)), ("bias_hh" + sfx, (G,))]
                if proj_size:
                    names.append(("weight_hr" + sfx, (proj_size, hidden_size)))
                for n, shape in names:
                    setattr(self, n, Parameter(empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(n)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def flatten_parameters(self):
        """A no-op (torch compacts cuDNN weights here)."""

    @property
    def all_weights(self):
        per = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        ws = [getattr(self, n) for n in self._flat_weights_names]
        return [ws[i:i + per] for i in range(0, len(ws), per)]

    def _weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        g = getattr
        return (g(self, "weight_ih" + sfx), g(self, "weight_hh" + sfx),
                g(self, "bias_ih" + sfx) if self.bias else None,
                g(self, "bias_hh" + sfx) if self.bias else None)

    def _proj(self, layer, d):
        if not self.proj_size:
            return None
        return getattr(self, f"weight_hr_l{layer}" + ("_reverse" if d else ""))

    def _check_input(self, x):
        name = type(self).__name__
        if x.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn.{name}: input must be a Tensor, got {type(x).__name__}")
        if x.ndim not in (2, 3):
            raise ValueError(f"gradkit.nn.{name}: expected input to be 2D or 3D, got {x.ndim}D "
                             f"tensor of shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise GradkitError(f"gradkit.nn.{name}: input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {x.shape[-1]}")

    def _hidden(self, h, N, batched, x, what, size=None):
        D = 2 if self.bidirectional else 1
        want = (self.num_layers * D, N, size or self.hidden_size)
        if h is None:
            return zeros(*want, dtype=x.dtype, device=x.device)
        if h.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn.{type(self).__name__}: {what} must be a Tensor, got "
                            f"{type(h).__name__}")
        if not batched:
            if h.ndim != 2:
                raise GradkitError(f"gradkit.nn.{type(self).__name__}: for unbatched 2-D input, "
                                   f"{what} should also be 2-D but got {h.ndim}-D tensor")
            h = _F.unsqueeze(h, 1)
        if tuple(h.shape) != want:
            raise GradkitError(f"gradkit.nn.{type(self).__name__}: Expected hidden size {want}, "
                               f"got {tuple(h.shape)} ({what})")
        return h

    def forward(self, input, hx=None):
        self._check_input(input)
        batched = input.ndim == 3
        x = input
        if not batched:
            x = _F.unsqueeze(x, 1)
        elif self.batch_first:
            x = _F.transpose(x, 0, 1)
        N = x.shape[1]
        if self.mode == "LSTM":
            if hx is None:
                h0 = c0 = None
            elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("gradkit.nn.LSTM: hx must be a tuple (h_0, c_0)")
            else:
                h0, c0 = hx
            h0 = self._hidden(h0, N, batched, x, "h_0", self.proj_size)
            c0 = self._hidden(c0, N, batched, x, "c_0")
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"gradkit.nn.{type(self).__name__}: hx must be a Tensor, "
                                "not a tuple (only LSTM takes (h_0, c_0))")
            h0 = self._hidden(hx, N, batched, x, "hx")
            c0 = None
        D = 2 if self.bidirectional else 1
        hn, cn = [], []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for d in range(D):
                k = layer * D + d
                hs, h, c = _run(self.mode, x, *self._weights(layer, d), h0[k],
                                None if c0 is None else c0[k], reverse=d == 1,
                                w_hr=self._proj(layer, d))
                outs.append(hs)
                hn.append(h)
                cn.append(c)
            x = outs[0] if D == 1 else _F.cat(outs, 2)
        out = x
        h_n = _F.stack(hn, 0)
        c_n = _F.stack(cn, 0) if self.mode == "LSTM" else None
        if not batched:
            out = _F.squeeze(out, 1)
            h_n = _F.squeeze(h_n, 1)
            c_n = None if c_n is None else _F.squeeze(c_n, 1)
        elif self.batch_first:
            out = _F.transpose(out, 0, 1)
        return (out, (h_n, c_n)) if self.mode == "LSTM" else (out, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu),
    as torch.nn.RNN: input (T, N, I) (``batch_first``: (N, T, I); unbatched
    (T, I)), optional ``hx`` (L*D, N, H) -> (output (T, N, D*H), h_n (L*D, N, H)).
    Differentiable; cpu, cuda and the fake accelerator."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"gradkit.nn.RNN: Unknown nonlinearity '{nonlinearity}'. Select "
                             "from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory as torch.nn.LSTM (gates i, f, g, o): input (T, N, I),
    optional ``(h_0, c_0)`` each (L*D, N, H) -> (output (T, N, D*H), (h_n, c_n)).
    ``proj_size`` P > 0 (as torch): each step's hidden state is projected,
    ``h_t = W_hr (o_t * tanh(c_t))`` with ``weight_hr_l{k}`` (P, H), so h_0/h_n
    and the output carry P features (c_0/c_n keep H); that path runs step by step
    through composed ops instead of the fused recurrence."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit as torch.nn.GRU (gates r, z, n; ``b_hn`` inside
    ``r * (W_hn h + b_hn)``): input (T, N, I), optional ``hx`` (L*D, N, H) ->
    (output (T, N, D*H), h_n (L*D, N, H))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


# ==================================================================== cells
class RNNCellBase(Module):
    """Shared by RNNCell, LSTMCell and GRUCell (torch.nn.RNNCellBase): weight_ih
    (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh (G*H), all U(+-1/sqrt(H)).
    A step runs the same primitive as the sequence layers, with T = 1."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        G = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(G, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(empty(G, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(G, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(G, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _prep(self, x, hx, what="hx"):
        name = type(self).__name__
        if x.__class__ is not Tensor:
            raise TypeError(f"gradkit.nn.{name}: input must be a Tensor, got {type(x).__name__}")
        if x.ndim not in (1, 2):
            raise ValueError(f"gradkit.nn.{name}: Expected input to be 1D or 2D, got {x.ndim}D "
                             "instead")
        if x.shape[-1] != self.input_size:
            raise GradkitError(f"gradkit.nn.{name}: input has inconsistent input_size: got "
                               f"{x.shape[-1]} expected {self.input_size}")
        batched = x.ndim == 2
        if not batched:
            x = _F.unsqueeze(x, 0)
        N = x.shape[0]
        if hx is None:
            hx = zeros(N, self.hidden_size, dtype=x.dtype, device=x.device)
        else:
            if not batched:
                hx = _F.unsqueeze(hx, 0)
            if tuple(hx.shape) != (N, self.hidden_size):
                raise GradkitError(f"gradkit.nn.{name}: {what} has shape {tuple(hx.shape)}, "
                                   f"expected {(N, self.hidden_size)}")
        return _F.unsqueeze(x, 0), hx, batched

    def _out(self, h, batched):
        return h if batched else _F.squeeze(h, 0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman step ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu):
    input (N, I) or (I,), hx (N, H) (zeros when None) -> h' (N, H). As torch."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"gradkit.nn.RNNCell: Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, h, batched = self._prep(input, hx)
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        _, h, _ = _run(mode, x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, h, None)
        return self._out(h, batched)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o): input (N, I) or (I,), hx = (h, c) each
    (N, H) (zeros when None) -> (h', c'). As torch.nn.LSTMCell."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is None:
            h0 = c0 = None
        else:
            h0, c0 = hx
        x, h, batched = self._prep(input, h0, "h_0")
        _, c, _ = self._prep(input, c0, "c_0")
        _, h, c = _run("LSTM", x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                       h, c)
        return self._out(h, batched), self._out(c, batched)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n): input (N, I) or (I,), hx (N, H) -> h'.
    As torch.nn.GRUCell."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        x, h, batched = self._prep(input, hx)
        _, h, _ = _run("GRU", x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, h,
                       None)
        return self._out(h, batched)
