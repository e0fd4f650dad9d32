"""Attention layers as torch has them: ``MultiheadAttention``,
``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder``,
``TransformerDecoder``, ``Transformer``: torch's arguments, defaults,
parameter names (``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``,
``linear1``, ``norm1``, ``self_attn``, ``multihead_attn`` ...) and
initialisation, so a torch ``state_dict`` loads by name.

Attention runs through ``F.scaled_dot_product_attention`` (one primitive)
unless ``need_weights=True`` asks for the weights, where it is composed as in
torch (softmax, dropout, batched matmul) so the weights can be returned.
"""
import math

from ..creation import arange, empty, full, zeros
from ..ops import functional as _F
from ..ops.attention import scaled_dot_product_attention
from ..ops.core import const
from ..ops.nnfused import softmax as _softmax
from ..ops.shape import split as _split
from ..tensor import Tensor, GradkitError
from . import functional as F
from . import init
from .layers import Linear, LayerNorm, Dropout, ModuleList
from .module import Module, Parameter

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
           "TransformerEncoder", "TransformerDecoder", "Transformer"]


def _mask_to_float(name, mask, dtype, B, what):
    """torch's canonical mask: bool (True = masked out) -> 0 / -inf in ``dtype``;
    float masks are added as they are (no gradient flows into a mask)."""
    if mask is None:
        return None
    if mask.__class__ is not Tensor:
        raise TypeError(f"gradkit.nn.{name}: {what} must be a Tensor, got {type(mask).__name__}")
    if mask._B is not B:
        raise GradkitError(f"gradkit.nn.{name}: {what} is on {mask._B.device_str} but the "
                           f"inputs are on {B.device_str}")
    m = mask.array
    if m.dtype == B.bool_dtype:
        return const(B, B.where(m, B.full((), -math.inf, dtype), B.zeros((), dtype)))
    if not B.is_floating(m.dtype):
        raise GradkitError(f"gradkit.nn.{name}: only bool and floating types of {what} are "
                           f"supported, got {mask.dtype_name}")
    return const(B, m if m.dtype == dtype else B.astype(m, dtype))


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under torch's name for MultiheadAttention's ``out_proj`` (so the
    module prints as torch's; torch uses the class to keep quantization away)."""


class MultiheadAttention(Module):
    """Multi-head attention as torch.nn.MultiheadAttention.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` with query
    (L, N, E) (``batch_first``: (N, L, E); unbatched (L, E)), key/value (S, N,
    kdim/vdim) -> (output (L, N, E), weights (N, L, S) averaged over heads, or
    (N, num_heads, L, S), or None when ``need_weights=False``). Masks: bool
    (True = not allowed) or float (added); ``attn_mask`` (L, S) or
    (N*num_heads, L, S), ``key_padding_mask`` (N, S). Dropout on the weights in
    training only. ``is_causal`` is a hint as in torch: ``attn_mask`` must be
    given and is what is applied. Differentiable; every device.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"gradkit.nn.MultiheadAttention: embed_dim and num_heads must be "
                             f"greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise ValueError(f"gradkit.nn.MultiheadAttention: embed_dim ({embed_dim}) must be "
                             f"divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        kw = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = _split(b, E, 0)
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:      # self-attention: one GEMM
                return _split(F.linear(query, w, b), E, -1)
            wq, wk, wv = _split(w, E, 0)
            q = F.linear(query, wq, bq)
            if key is value:
                k, v = _split(F.linear(key, _F.cat([wk, wv], 0),
                                       None if b is None else _F.cat([bk, bv], 0)), E, -1)
                return q, k, v
            return q, F.linear(key, wk, bk), F.linear(value, wv, bv)
        return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                F.linear(value, self.v_proj_weight, bv))

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        name = "MultiheadAttention"
        for what, t in (("query", query), ("key", key), ("value", value)):
            if t.__class__ is not Tensor:
                raise TypeError(f"gradkit.nn.{name}: {what} must be a Tensor, got "
                                f"{type(t).__name__}")
        if query.ndim not in (2, 3):
            raise GradkitError(f"gradkit.nn.{name}: query should be unbatched 2D or batched 3D "
                               f"tensor but received {query.ndim}-D query tensor")
        if is_causal and attn_mask is None:
            raise GradkitError(f"gradkit.nn.{name}: Need attn_mask if specifying the is_causal "
                               "hint (pass the causal mask, e.g. "
                               "nn.Transformer.generate_square_subsequent_mask(L))")
        batched = query.ndim == 3
        if not batched:
            query, key, value = (_F.unsqueeze(t, 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = _F.unsqueeze(key_padding_mask, 0)
        elif self.batch_first:
            same_kv = key is value
            same = query is key and same_kv
            query = _F.transpose(query, 0, 1)
            key = query if same else _F.transpose(key, 0, 1)
            value = key if same_kv else _F.transpose(value, 0, 1)
        L, N, E = query.shape
        if E != self.embed_dim:
            raise GradkitError(f"gradkit.nn.{name}: was expecting embedding dimension of "
                               f"{self.embed_dim}, but got {E}")
        if key.shape[:2] != value.shape[:2]:
            raise GradkitError(f"gradkit.nn.{name}: key shape {key.shape} does not match value "
                               f"shape {value.shape}")
        B = query._B
        dt = query.array.dtype
        H, hd = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        mask = _mask_to_float(name, attn_mask, dt, B, "attn_mask")
        kpm = _mask_to_float(name, key_padding_mask, dt, B, "key_padding_mask")
        if self.bias_k is not None:
            k = _F.cat([k, _F.expand(self.bias_k, (1, N, E))], 0)
            v = _F.cat([v, _F.expand(self.bias_v, (1, N, E))], 0)
            mask = None if mask is None else _pad_last(mask)
            kpm = None if kpm is None else _pad_last(kpm)
        S = k.shape[0]
        if mask is not None:
            if mask.ndim == 2:
                if tuple(mask.shape) != (L, S):
                    raise GradkitError(f"gradkit.nn.{name}: The shape of the 2D attn_mask is "
                                       f"{tuple(mask.shape)}, but should be {(L, S)}.")
            elif mask.ndim != 3 or tuple(mask.shape) != (N * H, L, S):
                raise GradkitError(f"gradkit.nn.{name}: attn_mask of shape {tuple(mask.shape)}; "
                                   f"expected (L, S) = {(L, S)} or (N*num_heads, L, S) = "
                                   f"{(N * H, L, S)}")
        # (L, N, E) -> (N*H, L, hd), as torch lays the heads out
        q = _F.transpose(_F.reshape(q, (L, N * H, hd)), 0, 1)
        k = _F.transpose(_F.reshape(k, (S, N * H, hd)), 0, 1)
        v = _F.transpose(_F.reshape(v, (S, N * H, hd)), 0, 1)
        if self.add_zero_attn:
            z = const(B, B.zeros((N * H, 1, hd), dt))
            k, v = _F.cat([k, z], 1), _F.cat([v, z], 1)
            S += 1
            mask = None if mask is None else _pad_last(mask)
            kpm = None if kpm is None else _pad_last(kpm)
        if kpm is not None:
            if tuple(kpm.shape) != (N, S):
                raise GradkitError(f"gradkit.nn.{name}: expected key_padding_mask of shape "
                                   f"{(N, S)}, got {tuple(kpm.shape)}")
            kpm = _F.reshape(_F.expand(_F.reshape(kpm, (N, 1, 1, S)), (N, H, 1, S)),
                             (N * H, 1, S))
            mask = kpm if mask is None else _F.add(mask, kpm)
        p = self.dropout if self.training else 0.0
        if need_weights:
            s = _F.matmul(_F.mul(q, 1.0 / math.sqrt(hd)), _F.transpose(k, 1, 2))
            if mask is not None:
                s = _F.add(s, mask)
            w = _softmax(s, -1)
            wd = F.dropout(w, p) if p > 0.0 else w
            o = _F.matmul(wd, v)
        else:
            if mask is not None and mask.ndim == 3:
                mask = _F.reshape(mask, (N, H, L, S)) if mask.shape[0] == N * H else mask
            o = scaled_dot_product_attention(_F.reshape(q, (N, H, L, hd)),
                                             _F.reshape(k, (N, H, S, hd)),
                                             _F.reshape(v, (N, H, S, hd)), attn_mask=mask,
                                             dropout_p=p)
            o = _F.reshape(o, (N * H, L, hd))
            w = None
        o = _F.reshape(_F.transpose(o, 0, 1), (L * N, E))
        o = _F.reshape(self.out_proj(o), (L, N, E))
        if w is not None:
            w = _F.reshape(wd, (N, H, L, S))   # torch returns the weights after dropout
            if average_attn_weights:
                w = _F.mean(w, 1)
            if not batched:
                w = _F.squeeze(w, 0)
        if not batched:
            o = _F.squeeze(o, 1)
        elif self.batch_first:
            o = _F.transpose(o, 0, 1)
        return o, w



def _pad_last(m):
    """Append one zero column (torch pads masks for bias_k/add_zero_attn)."""
    B = m._B
    z = const(B, B.zeros(tuple(m.shape[:-1]) + (1,), m.array.dtype))
    return _F.cat([m, z], -1)


def _activation(name, activation):
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"gradkit.nn.{name}: activation should be relu/gelu, not "
                           f"{activation}")
    if not callable(activation):
        raise TypeError(f"gradkit.nn.{name}: activation must be 'relu', 'gelu' or a callable")
    return activation


def _clone(module, n):
    """``n`` independent copies of ``module`` with equal parameters (torch's
    ``_get_clones``): rebuilt from the constructor arguments, then loaded."""
    args = getattr(module, "_init_args", None)
    if args is None:
        raise GradkitError(f"gradkit.nn: can't clone a {type(module).__name__}: pass a "
                           "TransformerEncoderLayer/TransformerDecoderLayer (or a module "
                           "with _init_args = (args, kwargs))")
    out = []
    sd = module.state_dict()
    ref = next(iter(module.parameters()), None)
    for _ in range(n):
        m = type(module)(*args[0], **args[1])
        if ref is not None:     # the layer may have moved or changed dtype since it was made
            m.to(ref.device).to(ref.dtype)   # two calls: to(device, dtype) trips on 'fake'
        m.load_state_dict(sd)
        m.train(module.training)
        out.append(m)
    return out


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and a
    LayerNorm (after, or before with ``norm_first``), as
    torch.nn.TransformerEncoderLayer. ``forward(src, src_mask=None,
    src_key_padding_mask=None, is_causal=False)``: src (S, N, E) (or
    ``batch_first``) -> same shape. ``activation``: 'relu', 'gelu' or a callable."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self._init_args = ((d_model, nhead), dict(
            dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
            layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first,
            bias=bias, device=device, dtype=dtype))
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation("TransformerEncoderLayer", activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal and attn_mask is not None)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    """Self-attention, attention over ``memory``, then a feed-forward block, each
    with a residual and a LayerNorm, as torch.nn.TransformerDecoderLayer.
    ``forward(tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False,
    memory_is_causal=False)`` -> tgt's shape."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self._init_args = ((d_model, nhead), dict(
            dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
            layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first,
            bias=bias, device=device, dtype=dtype))
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation("TransformerDecoderLayer", activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (equal initial parameters, as
    torch's deep copies), then ``norm`` if given. ``forward(src, mask=None,
    src_key_padding_mask=None, is_causal=None)``. torch's nested-tensor fast
    path is not used (``enable_nested_tensor`` is accepted and ignored)."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        self.layers = ModuleList(_clone(encoder_layer, num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer``, then ``norm`` if given.
    ``forward(tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None,
    memory_is_causal=False)``."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = ModuleList(_clone(decoder_layer, num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """Encoder-decoder transformer as torch.nn.Transformer (final LayerNorms on
    both stacks; every weight matrix re-initialised ``xavier_uniform_``).
    ``forward(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, ...)``: src (S, N, E), tgt (T, N, E) (or
    ``batch_first``) -> (T, N, E)."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                  layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first,
                  bias=bias, device=device, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(d_model, nhead, **kw), num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(d_model, nhead, **kw), num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, device=device, dtype=dtype))
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        bdim = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[bdim] != tgt.shape[bdim]:
            raise GradkitError("gradkit.nn.Transformer: the batch number of src and tgt must "
                               f"be equal, got {src.shape[bdim]} and {tgt.shape[bdim]}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise GradkitError("gradkit.nn.Transformer: the feature number of src and tgt must "
                               f"be equal to d_model ({self.d_model}), got {src.shape[-1]} and "
                               f"{tgt.shape[-1]}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """A float (sz, sz) mask: 0 on and below the diagonal, -inf above (so
        position i attends to positions <= i)."""
        i = _F.reshape(arange(sz, device=device), (sz, 1))
        j = _F.reshape(arange(sz, device=device), (1, sz))
        return _F.where(_F.gt(j, i), full((sz, sz), -math.inf, dtype=dtype, device=device),
                        zeros(sz, sz, dtype=dtype, device=device))
