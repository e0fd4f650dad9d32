"""Normalization kernels (layer, batch, instance and group norm), mixed into
every backend.

One layout serves the four layers. ``geom = (xs, red, ws, lay, pshape)``:
- ``xs``: a shape the contiguous input is viewed as, ``red``: the axes of
  ``xs`` each statistic reduces over (one mean and variance per index of
  the other axes), ``ws``: the affine parameters' shape broadcast against
  ``xs``, ``pshape``: the parameters' own shape;
- ``lay = (A, R, Bd, G, cpg, S)`` says the same for a flat kernel: element
  ``(a, r, i)`` of statistic ``r`` sits at ``(a * R + r) * Bd + i`` and uses
  the parameter ``(r % G) * cpg + i // S``.

The statistics (mean, biased variance, ``rstd = 1 / sqrt(var + eps)``) are
computed in float32 for float16 input (float64 for float64), two-pass
(mean, then the centred squares), shaped as ``xs`` with ``red`` kept as 1.

``NormKernels`` is the reference, written once with the backend's own kernels
(it runs on NumPy, CuPy and the fake accelerator); ``NumpyNormKernels``
overrides it with few temporaries, in place where the buffer is ours. The CUDA
kernels are in ``norm_cupy.py``.
"""
import numpy as np


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def waxes(geom):
    """The axes of ``xs`` a parameter's gradient sums over."""
    return tuple(a for a, s in enumerate(geom[2]) if s == 1)


def count(geom):
    """How many elements each statistic reduces."""
    return _prod(geom[0][a] for a in geom[1])


class NormKernels:
    def _stat_dtype(self, dt):
        f16 = self.dtypes.get("float16")
        return self.dtypes["float32"] if f16 is not None and dt == f16 else dt

    def fused_norm(self, x, w, b, geom=None, eps=1e-5):
        """``(x - mean) * rstd * w + b`` over the sets ``geom`` describes ->
        ``(y, (mean, rstd, var))``: y like x, the statistics in the stat dtype."""
        xs, red, ws = geom[0], geom[1], geom[2]
        dt = x.dtype
        st = self._stat_dtype(dt)
        xv = self.reshape(x, xs)
        if st != dt:
            xv = self.astype(xv, st)
        inv = 1.0 / count(geom)
        mean = self.mul(self.sum(xv, red, True), inv)
        xc = self.sub(xv, mean)
        var = self.mul(self.sum(self.mul(xc, xc), red, True), inv)
        rstd = self.rsqrt(self.add(var, eps))
        y = self.mul(xc, rstd)
        if w is not None:
            y = self.mul(y, self.astype(self.reshape(w, ws), st))
        if b is not None:
            y = self.add(y, self.astype(self.reshape(b, ws), st))
        if st != dt:
            y = self.astype(y, dt)
        return self.reshape(y, x.shape), (mean, rstd, var)

    def fused_norm_backward(self, x, w, g, mean, rstd, geom, needs):
        """The closed-form VJP: ``gx = rstd * (gw - mean(gw) - xhat * mean(gw *
        xhat))`` with ``gw = g * w`` over each set, the weight's gradient
        ``sum(g * xhat)`` and the bias's ``sum(g)`` over ``waxes``."""
        xs, red, ws, pshape = geom[0], geom[1], geom[2], geom[4]
        dt = x.dtype
        st = mean.dtype
        xv, gv = self.reshape(x, xs), self.reshape(g, xs)
        if st != dt:
            xv, gv = self.astype(xv, st), self.astype(gv, st)
        xhat = self.mul(self.sub(xv, mean), rstd)
        wa = waxes(geom)
        gx = gw = gb = None
        if needs[1]:
            gw = self.astype(self.reshape(self.sum(self.mul(gv, xhat), wa), pshape), w.dtype)
        if needs[2]:
            gb = self.astype(self.reshape(self.sum(gv, wa), pshape), dt)
        if needs[0]:
            if w is not None:
                gv = self.mul(gv, self.astype(self.reshape(w, ws), st))
            inv = 1.0 / count(geom)
            s1 = self.mul(self.sum(gv, red, True), inv)
            s2 = self.mul(self.sum(self.mul(gv, xhat), red, True), inv)
            gx = self.mul(self.sub(self.sub(gv, s1), self.mul(xhat, s2)), rstd)
            if st != dt:
                gx = self.astype(gx, dt)
            gx = self.reshape(gx, x.shape)
        return gx, gw, gb

    def norm_running_update(self, running, value, momentum):
        """``running = (1 - momentum) * running + momentum * value`` in place."""
        if value.dtype != running.dtype:
            value = self.astype(value, running.dtype)
        self.imul(running, 1.0 - momentum)
        self.iadd(running, self.mul(value, momentum))
        return running


def _subscripts(nd, keep):
    """einsum subscripts that multiply two arrays of ``nd`` dims and keep ``keep``."""
    s = "abcdefgh"[:nd]
    return f"{s},{s}->" + "".join(s[a] for a in range(nd) if a in keep)


class NumpyNormKernels(NormKernels):
    """Few temporaries: the centred input becomes the output in place, and the
    sums of products are einsums (no product array)."""

    def fused_norm(self, x, w, b, geom=None, eps=1e-5):
        xs, red, ws = geom[0], geom[1], geom[2]
        dt = x.dtype
        st = self._stat_dtype(dt)
        xv = x.reshape(xs)
        if st != dt:
            xv = xv.astype(st)
        n = count(geom)
        mean = np.add.reduce(xv, axis=red, keepdims=True)
        mean /= n
        y = np.subtract(xv, mean)                       # ours: becomes y in place
        keep = [a for a in range(len(xs)) if a not in red]
        var = np.einsum(_subscripts(len(xs), keep), y, y).reshape(mean.shape)
        var /= n
        rstd = np.add(var, eps)
        np.sqrt(rstd, out=rstd)
        np.reciprocal(rstd, out=rstd)
        y *= rstd
        if w is not None:
            y *= w.reshape(ws)
        if b is not None:
            y += b.reshape(ws)
        if st != dt:
            y = y.astype(dt)
        return y.reshape(x.shape), (mean, rstd, var)

    def fused_norm_backward(self, x, w, g, mean, rstd, geom, needs):
        xs, red, ws, pshape = geom[0], geom[1], geom[2], geom[4]
        dt = x.dtype
        st = mean.dtype
        xv, gv = x.reshape(xs), g.reshape(xs)
        if st != dt:
            gv = gv.astype(st)
        xhat = np.subtract(xv, mean, dtype=st)          # ours
        xhat *= rstd
        nd = len(xs)
        wa = waxes(geom)
        gx = gw = gb = None
        if needs[1]:
            keep = [a for a in range(nd) if a not in wa]
            gw = np.einsum(_subscripts(nd, keep), gv, xhat).reshape(pshape).astype(w.dtype,
                                                                                   copy=False)
        if needs[2]:
            gb = np.add.reduce(gv, axis=wa).reshape(pshape).astype(dt, copy=False)
        if needs[0]:
            gx = np.multiply(gv, w.reshape(ws)) if w is not None else np.array(gv, copy=True)
            n = count(geom)
            keep = [a for a in range(nd) if a not in red]
            s2 = np.einsum(_subscripts(nd, keep), gx, xhat).reshape(mean.shape)
            s2 /= n
            s1 = np.add.reduce(gx, axis=red, keepdims=True)
            s1 /= n
            gx -= s1
            xhat *= s2
            gx -= xhat
            gx *= rstd
            gx = gx.astype(dt, copy=False).reshape(x.shape)
        return gx, gw, gb

    def norm_running_update(self, running, value, momentum):
        running *= 1.0 - momentum
        running += np.multiply(value, momentum, dtype=running.dtype, casting="unsafe")
        return running
