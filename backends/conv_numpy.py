"""NumPy fast path of the convolution and pooling kernels (see ``conv.py``).

im2col is an ``as_strided`` view of the (padded) input: no copy until the GEMM
needs one contiguous operand. col2im adds the columns back through the same kind
of view, one vectorized add per kernel offset (9 for a 3x3 kernel, each over all
positions at once): measured on W6's second layer (64x32x26x26 input, 3x3),
48 ms against 106 ms for one ``np.bincount`` scatter and 275 ms for ``np.add.at``.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .conv import ConvKernels, _prod


class NumpyConvKernels(ConvKernels):
    def _padded(self, x, padding, value=0.0):
        if not any(lo or hi for lo, hi in padding):
            return x
        shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
        out = np.full(shape, value, dtype=x.dtype)
        out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, hi)
                                in zip(x.shape[2:], padding))] = x
        return out

    @staticmethod
    def _window_view(xpad, K, stride, dilation, OS, writeable=False):
        """(N, C, *K, *OS) strided view of the padded input: no copy."""
        st = xpad.strides
        sp = st[2:]
        shape = xpad.shape[:2] + tuple(K) + tuple(OS)
        strides = st[:2] + tuple(s * d for s, d in zip(sp, dilation)) \
            + tuple(s * t for s, t in zip(sp, stride))
        return as_strided(xpad, shape, strides, writeable=writeable)

    def im2col(self, x, K, stride, padding, dilation, value=0.0):
        xpad = self._padded(x, padding, value)
        OS = self._out_spatial(x.shape[2:], K, stride, padding, dilation)
        v = self._window_view(xpad, K, stride, dilation, OS)
        return v.reshape(x.shape[:2] + (_prod(K),) + OS)

    def col2im(self, cols, in_shape, K, stride, padding, dilation):
        sp = in_shape[2:]
        pshape = tuple(in_shape[:2]) + tuple(n + lo + hi for n, (lo, hi) in zip(sp, padding))
        out = np.zeros(pshape, dtype=cols.dtype)
        OS = cols.shape[3:]
        view = self._window_view(out, K, stride, dilation, OS, writeable=True)
        cols = cols.reshape(cols.shape[:2] + tuple(K) + OS)
        for off in np.ndindex(*K):
            sel = (slice(None), slice(None)) + off
            view[sel] += cols[sel]   # offsets never overlap themselves: a plain add
        if not any(lo or hi for lo, hi in padding):
            return out
        return out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, hi) in zip(sp, padding))]

    def _cols(self, x, K, stride, padding, dilation, groups):
        """The im2col as a (N, G, Cg*prod(K), P) contiguous matrix (the one copy)."""
        N, C = x.shape[:2]
        xpad = self._padded(x, padding)
        OS = self._out_spatial(x.shape[2:], K, stride, padding, dilation)
        v = self._window_view(xpad, K, stride, dilation, OS)
        return v.reshape(N, groups, (C // groups) * _prod(K), _prod(OS)), OS

    def conv_fwd(self, x, w, stride, padding, dilation, groups, keep=False):
        N = x.shape[0]
        O = w.shape[0]
        K = w.shape[2:]
        cols, OS = self._cols(x, K, stride, padding, dilation, groups)
        if groups == 1:
            y = np.matmul(w.reshape(O, -1), cols[:, 0])          # (N, O, P): NCHW as is
        else:
            y = np.matmul(w.reshape(groups, O // groups, -1), cols)
        return y.reshape((N, O) + OS), (cols if keep else None)

    def conv_weight_grad(self, x, g, stride, padding, dilation, groups, w_shape, cols=None):
        N = g.shape[0]
        O = w_shape[0]
        K = tuple(w_shape[2:])
        if cols is None:
            cols, _ = self._cols(x, K, stride, padding, dilation, groups)
        gm = np.ascontiguousarray(g).reshape(N, groups, O // groups, -1)
        # per sample g_n @ cols_n^T (BLAS reads the transposed view; no copy), summed
        gw = np.matmul(gm, cols.transpose(0, 1, 3, 2)).sum(0)
        return gw.reshape(w_shape)

    def conv_input_grad(self, g, w, stride, padding, dilation, groups, in_shape):
        N = g.shape[0]
        O, Cg = w.shape[:2]
        K = tuple(w.shape[2:])
        OS = tuple(g.shape[2:])
        gm = np.ascontiguousarray(g).reshape(N, groups, O // groups, -1)
        if groups == 1:
            # offset-major columns (N, *K, C, *OS): each offset's block is contiguous,
            # so the col2im adds read memory in order (measured 20% faster on W6)
            nd = len(K)
            wt = w.transpose(tuple(range(2, 2 + nd)) + (1, 0)).reshape(-1, O)
            cols = np.matmul(wt, gm[:, 0]).reshape((N,) + K + (Cg,) + OS)
            return self._col2im_offset_major(cols, tuple(in_shape), K, stride, padding, dilation)
        wm = w.reshape(groups, O // groups, -1)
        cols = np.matmul(wm.transpose(0, 2, 1), gm)
        cols = cols.reshape((N, groups * Cg, _prod(K)) + OS)
        return self.col2im(cols, tuple(in_shape), K, stride, padding, dilation)

    def _col2im_offset_major(self, cols, in_shape, K, stride, padding, dilation):
        sp = in_shape[2:]
        pshape = tuple(in_shape[:2]) + tuple(n + lo + hi for n, (lo, hi) in zip(sp, padding))
        out = np.zeros(pshape, dtype=cols.dtype)
        OS = cols.shape[2 + len(K):]
        view = self._window_view(out, K, stride, dilation, OS, writeable=True)
        for off in np.ndindex(*K):
            view[(slice(None), slice(None)) + off] += cols[(slice(None),) + off]
        if not any(lo or hi for lo, hi in padding):
            return out
        return out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, hi) in zip(sp, padding))]

    def max_pool(self, x, kernel, stride, padding, dilation):
        sp = x.shape[2:]
        xpad = self._padded(x, padding, -np.inf)
        OS = self._out_spatial(sp, kernel, stride, padding, dilation)
        v = self._window_view(xpad, kernel, stride, dilation, OS)
        # a running max over the window's offsets, each a strided view: no copy of
        # the windows; the first max wins ties, a NaN wins always (as torch: NaN
        # windows are rare, so they are looked for once, after the loop)
        offs = list(np.ndindex(*kernel))
        vals, k = self._running_max(v, offs, nan=False)
        if x.dtype.kind == "f" and np.isnan(vals).any():
            vals, k = self._running_max(v, offs, nan=True)
        return vals, self._flat_index_np(k, sp, kernel, stride, padding, dilation, OS)

    @staticmethod
    def _running_max(v, offs, nan):
        """(max, int offset of the winner) over ``v[:, :, *off]`` for off in offs."""
        sel = (slice(None), slice(None))
        vals = v[sel + offs[0]].copy()
        kd = np.int8 if len(offs) < 128 else (np.int16 if len(offs) < 32768 else np.int32)
        k = np.zeros(vals.shape, kd)
        upd = np.empty(vals.shape, bool)
        tmp = np.empty(vals.shape, kd)
        for n, off in enumerate(offs[1:], 1):
            q = v[sel + off]
            np.greater(q, vals, out=upd)
            if nan:
                upd |= np.isnan(q)
            np.maximum(vals, q, out=vals)          # NaN propagates, as torch
            np.subtract(kd(n), k, out=tmp)         # k = n where updated (masked
            np.multiply(tmp, upd, out=tmp)         # copies are 10x slower than
            np.add(k, tmp, out=k)                  # this arithmetic)
        return vals, k

    @staticmethod
    def _flat_index_np(k, sp, K, stride, padding, dilation, OS):
        """Flat plane index of window slot ``k`` at each output: the slot's offset
        (a table over the window) plus the window's origin (a table over outputs)."""
        plane = [int(np.prod(sp[i + 1:], dtype=np.int64)) for i in range(len(sp))]
        off = np.zeros(K, np.int64)
        base = np.zeros(OS, np.int64)
        for i in range(len(sp)):
            shape = [1] * len(sp)
            shape[i] = -1
            off += (np.arange(K[i]) * dilation[i] * plane[i]).reshape(shape)
            base += ((np.arange(OS[i]) * stride[i] - padding[i][0]) * plane[i]).reshape(shape)
        return off.reshape(-1).take(k) + base

    def pool_scatter(self, g, idx, in_shape, overlap=True):
        N, C = in_shape[:2]
        HW = _prod(in_shape[2:])
        out = np.zeros((N * C, HW), dtype=g.dtype)
        ii = idx.reshape(N * C, -1)
        gg = g.reshape(N * C, -1)
        if overlap:  # one index may win several windows: accumulate
            np.add.at(out, (np.arange(N * C)[:, None], ii), gg)
        else:
            np.put_along_axis(out, ii, gg, axis=1)
        return out.reshape(in_shape)

    def pool_gather(self, x, idx):
        N, C = x.shape[:2]
        v = np.take_along_axis(x.reshape(N, C, -1), idx.reshape(N, C, -1), axis=2)
        return v.reshape(idx.shape)

