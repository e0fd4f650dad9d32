"""Convolution and pooling kernels, written once against the namespace ``xp``.

``ConvKernels`` is a base of ``Backend``: every backend gets these reference
kernels; ``conv_numpy.py`` and ``conv_cupy.py`` override them for speed with
copy-free strided views (``as_strided``). The kernels are the forward functions
of six primitives in ``gradkit/ops/conv.py``, whose VJPs are again these
kernels, so first and second derivatives share one set of formulas:

- ``conv(x, w)``: cross-correlation, an im2col times the weight (a GEMM per group);
- ``conv_input_grad(g, w)``: its adjoint in ``x`` (the transposed convolution):
  the GEMM ``w^T g`` then col2im, a scatter-add of the columns into the input;
- ``conv_weight_grad(x, g)``: its adjoint in ``w``: ``g`` times the im2col^T;
- ``max_pool(x)``: (values, flat indices into each input plane), as torch's
  ``return_indices``; ``pool_scatter(g, idx)``: its VJP (a scatter-add);
  ``pool_gather(x, idx)``: the adjoint of ``pool_scatter`` (a gather).

Arguments, all pre-checked by gradkit: ``x`` (N, C, *S), ``w`` (O, C/groups, *K),
``stride``/``dilation``: one int per spatial dim; ``padding``: one ``(lo, hi)``
pair per spatial dim; ``in_shape``/``w_shape``: full shapes.
"""
import itertools


def out_size(n, lo, hi, k, s, d):
    """Output length of a window sweep over ``n`` padded by ``lo``/``hi``."""
    return (n + lo + hi - d * (k - 1) - 1) // s + 1


def _prod(t):
    r = 1
    for v in t:
        r *= v
    return r


class ConvKernels:
    # ------------------------------------------------- shared geometry
    @staticmethod
    def _out_spatial(sp, K, stride, padding, dilation):
        return tuple(out_size(n, lo, hi, k, s, d) for n, (lo, hi), k, s, d
                     in zip(sp, padding, K, stride, dilation))

    def _padded(self, x, padding, value=0.0):
        """``x`` with its spatial dims padded by ``value`` (``x`` itself if none)."""
        if not any(lo or hi for lo, hi in padding):
            return x
        lead = x.shape[:2]
        shape = lead + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
        out = self.full(shape, value, x.dtype)
        inner = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for n, (lo, hi)
                                                   in zip(x.shape[2:], padding))
        out[inner] = x
        return out

    @staticmethod
    def _offset_slices(K, stride, dilation, OS):
        """For each kernel offset (row-major), the slices of the padded input it
        reads at every output position."""
        return [(slice(None), slice(None)) + tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(off, dilation, stride, OS))
            for off in itertools.product(*[range(k) for k in K])]

    # ------------------------------------------------- reference kernels
    def im2col(self, x, K, stride, padding, dilation, value=0.0):
        """(N, C, prod(K), *OS): the padded input's windows (a copy here; a
        strided view in the fast backends)."""
        xp = self.xp
        xpad = self._padded(x, padding, value)
        OS = self._out_spatial(x.shape[2:], K, stride, padding, dilation)
        parts = [xpad[sl] for sl in self._offset_slices(K, stride, dilation, OS)]
        return xp.stack(parts, axis=2)

    def col2im(self, cols, in_shape, K, stride, padding, dilation):
        """Adjoint of ``im2col``: add the columns (N, C, prod(K), *OS) back into
        an input of ``in_shape`` (overlapping windows accumulate)."""
        xp = self.xp
        sp = in_shape[2:]
        pshape = tuple(in_shape[:2]) + tuple(n + lo + hi for n, (lo, hi) in zip(sp, padding))
        out = self.zeros(pshape, cols.dtype)
        OS = cols.shape[3:]
        for k, sl in enumerate(self._offset_slices(K, stride, dilation, OS)):
            out[sl] = out[sl] + cols[:, :, k, ...]
        inner = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for n, (lo, hi)
                                                   in zip(sp, padding))
        return out[inner]

    def conv(self, x, w, stride, padding, dilation, groups):
        return self.conv_fwd(x, w, stride, padding, dilation, groups)[0]

    def conv_fwd(self, x, w, stride, padding, dilation, groups, keep=False):
        """(conv's output, its im2col matrix (N, G, Cg*prod(K), P) when ``keep``
        else None): the weight's gradient reuses the matrix instead of
        rebuilding it."""
        xp = self.xp
        N, C = x.shape[:2]
        O, Cg = w.shape[:2]
        K = tuple(w.shape[2:])
        cols = self.im2col(x, K, stride, padding, dilation)
        OS = cols.shape[3:]
        cols = xp.reshape(cols, (N, groups, Cg * _prod(K), _prod(OS)))
        wm = xp.reshape(w, (groups, O // groups, Cg * _prod(K)))
        y = xp.matmul(wm, cols)                        # (N, G, O/G, P)
        return xp.reshape(y, (N, O) + tuple(OS)), (cols if keep else None)

    def conv_weight_grad(self, x, g, stride, padding, dilation, groups, w_shape, cols=None):
        xp = self.xp
        N = g.shape[0]
        O, Cg = w_shape[:2]
        K = tuple(w_shape[2:])
        if cols is None:
            cols = self.im2col(x, K, stride, padding, dilation)
            cols = xp.reshape(cols, (N, groups, Cg * _prod(K), _prod(cols.shape[3:])))
        P = cols.shape[3]
        gm = xp.reshape(g, (N, groups, O // groups, P))
        gw = xp.sum(xp.matmul(gm, self.mT(cols)), axis=0)
        return xp.reshape(gw, tuple(w_shape))

    def conv_input_grad(self, g, w, stride, padding, dilation, groups, in_shape):
        xp = self.xp
        N = g.shape[0]
        O, Cg = w.shape[:2]
        K = tuple(w.shape[2:])
        OS = g.shape[2:]
        wm = xp.reshape(w, (groups, O // groups, Cg * _prod(K)))
        gm = xp.reshape(g, (N, groups, O // groups, _prod(OS)))
        cols = xp.matmul(self.mT(wm), gm)  # (N, G, Cg*KK, P)
        cols = xp.reshape(cols, (N, groups * Cg, _prod(K)) + tuple(OS))
        return self.col2im(cols, tuple(in_shape), K, stride, padding, dilation)

    # ---------------------------------------------------------- pooling
    def max_pool(self, x, kernel, stride, padding, dilation):
        """(values, indices): the max of each window (padding never wins) and
        its flat index into the unpadded input plane (torch's indices)."""
        xp = self.xp
        sp = x.shape[2:]
        cols = self.im2col(x, kernel, stride, padding, dilation, value=-float("inf"))
        k = xp.argmax(cols, axis=2, keepdims=True)
        v = xp.squeeze(xp.take_along_axis(cols, k, axis=2), axis=2)
        k = xp.squeeze(k, axis=2)
        return v, self._flat_index(k, sp, kernel, stride, padding, dilation, cols.shape[3:])

    def _flat_index(self, k, sp, K, stride, padding, dilation, OS):
        """Flat plane index of window offset ``k`` (N, C, *OS) at every output."""
        xp = self.xp
        i64 = self.dtypes["int64"]
        k = self.astype(k, i64)
        idx = None
        rest = k
        nd = len(sp)
        for i in range(nd - 1, -1, -1):  # unravel k, last dim fastest
            ki = rest % K[i]
            rest = rest // K[i]
            shape = [1] * (nd + 2)
            shape[i + 2] = OS[i]
            o = xp.reshape(self.arange(0, OS[i], 1, i64), tuple(shape))
            pos = o * stride[i] - padding[i][0] + ki * dilation[i]
            term = pos * _prod(sp[i + 1:])
            idx = term if idx is None else idx + term
        return idx

    def pool_scatter(self, g, idx, in_shape, overlap=True):
        """Zeros of ``in_shape`` with ``g`` added at the flat plane indices
        ``idx`` (repeats accumulate): the VJP of max pooling. ``overlap=False``
        promises that no index repeats within a plane (windows never overlap)."""
        xp = self.xp
        N, C = in_shape[:2]
        HW = _prod(in_shape[2:])
        gi = xp.reshape(g, (N, C, -1, 1))
        ii = xp.reshape(idx, (N, C, -1, 1))
        pos = xp.reshape(self.arange(0, HW, 1, idx.dtype), (1, 1, 1, HW))
        zero = self.zeros((), g.dtype)
        out = xp.sum(xp.where(ii == pos, gi, zero), axis=2)
        return xp.reshape(out, tuple(in_shape))

    def pool_gather(self, x, idx):
        """``x``'s values at the flat plane indices ``idx`` (N, C, *OS)."""
        xp = self.xp
        N, C = x.shape[:2]
        v = xp.take_along_axis(xp.reshape(x, (N, C, -1)), xp.reshape(idx, (N, C, -1)), axis=2)
        return xp.reshape(v, tuple(idx.shape))
