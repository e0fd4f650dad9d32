"""CuPy fast path of the convolution and pooling kernels (see ``conv.py``).

As on NumPy: im2col is a ``cupy.lib.stride_tricks.as_strided`` view of the padded
input, the GEMMs are cuBLAS batched matmuls; col2im is ONE scatter-add
(``cupyx.scatter_add``) of all columns at once, through a strided view of the
padded input's flat positions (no Python loop over positions or offsets).
Written without a GPU at hand: the reference kernels (``conv.py``) are what CI
checks; this file runs only on CUDA.
"""
from .conv import ConvKernels, _prod


class CupyConvKernels(ConvKernels):
    def _padded(self, x, padding, value=0.0):
        if not any(lo or hi for lo, hi in padding):
            return x
        cp = self.cp
        shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
        with self.cuda_device:
            out = cp.full(shape, value, dtype=x.dtype)
        out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, hi)
                                in zip(x.shape[2:], padding))] = x
        return out

    def _window_view(self, xpad, K, stride, dilation, OS):
        st = xpad.strides
        sp = st[2:]
        shape = xpad.shape[:2] + tuple(K) + tuple(OS)
        strides = st[:2] + tuple(s * d for s, d in zip(sp, dilation)) \
            + tuple(s * t for s, t in zip(sp, stride))
        return self.cp.lib.stride_tricks.as_strided(xpad, shape, strides)

    def im2col(self, x, K, stride, padding, dilation, value=0.0):
        OS = self._out_spatial(x.shape[2:], K, stride, padding, dilation)
        with self.cuda_device:
            xpad = self._padded(self.cp.ascontiguousarray(x), padding, value)
            return self._window_view(xpad, K, stride, dilation, OS).reshape(
                x.shape[:2] + (_prod(K),) + OS)

    def col2im(self, cols, in_shape, K, stride, padding, dilation):
        cp = self.cp
        sp = in_shape[2:]
        pshape = tuple(in_shape[:2]) + tuple(n + lo + hi for n, (lo, hi) in zip(sp, padding))
        OS = cols.shape[3:]
        with self.cuda_device:
            out = cp.zeros(pshape, dtype=cols.dtype)
            size = _prod(pshape)
            pos = cp.arange(size, dtype=cp.int32 if size < 2 ** 31 else cp.int64).reshape(pshape)
            idx = self._window_view(pos, K, stride, dilation, OS)
            self._scatter_add(out.reshape(-1), idx.reshape(-1),
                              cols.reshape(cols.shape[:2] + tuple(K) + OS).reshape(-1))
        if not any(lo or hi for lo, hi in padding):
            return out
        return out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, hi) in zip(sp, padding))]

    def conv_fwd(self, x, w, stride, padding, dilation, groups, keep=False):
        cp = self.cp
        N = x.shape[0]
        O = w.shape[0]
        K = tuple(w.shape[2:])
        cols = self.im2col(x, K, stride, padding, dilation)
        OS = cols.shape[3:]
        with self.cuda_device:
            cols = cols.reshape(N, groups, -1, _prod(OS))
            y = self.matmul(cp.ascontiguousarray(w).reshape(groups, O // groups, -1), cols)
            return y.reshape((N, O) + tuple(OS)), (cols if keep else None)

    def conv_weight_grad(self, x, g, stride, padding, dilation, groups, w_shape, cols=None):
        cp = self.cp
        N = g.shape[0]
        O = w_shape[0]
        K = tuple(w_shape[2:])
        with self.cuda_device:
            if cols is None:
                cols = self.im2col(x, K, stride, padding, dilation)
                cols = cols.reshape(N, groups, -1, _prod(cols.shape[3:]))
            gm = cp.ascontiguousarray(g).reshape(N, groups, O // groups, -1)
            return self.matmul(gm, cols.transpose(0, 1, 3, 2)).sum(0).reshape(w_shape)

    def conv_input_grad(self, g, w, stride, padding, dilation, groups, in_shape):
        cp = self.cp
        N = g.shape[0]
        O, Cg = w.shape[:2]
        K = tuple(w.shape[2:])
        OS = g.shape[2:]
        with self.cuda_device:
            gm = cp.ascontiguousarray(g).reshape(N, groups, O // groups, -1)
            wm = cp.ascontiguousarray(w).reshape(groups, O // groups, -1)
            cols = self.matmul(wm.transpose(0, 2, 1), gm)
            cols = cols.reshape((N, groups * Cg, _prod(K)) + tuple(OS))
        return self.col2im(cols, tuple(in_shape), K, stride, padding, dilation)

    def max_pool(self, x, kernel, stride, padding, dilation):
        with self.cuda_device:
            return ConvKernels.max_pool(self, x, kernel, stride, padding, dilation)

    def pool_scatter(self, g, idx, in_shape, overlap=True):
        cp = self.cp
        N, C = in_shape[:2]
        HW = _prod(in_shape[2:])
        with self.cuda_device:
            out = cp.zeros((N * C, HW), dtype=g.dtype)
            rows = cp.arange(N * C, dtype=cp.int64)[:, None] * HW
            flat = (idx.reshape(N * C, -1) + rows).reshape(-1)
            self._scatter_add(out.reshape(-1), flat, cp.ascontiguousarray(g).reshape(-1))
            return out.reshape(in_shape)

    def pool_gather(self, x, idx):
        cp = self.cp
        N, C = x.shape[:2]
        with self.cuda_device:
            v = cp.take_along_axis(x.reshape(N, C, -1), idx.reshape(N, C, -1), axis=2)
            return v.reshape(idx.shape)
