"""The NumPy backend's optimizer updates (``sgd_update``, ``adam_update``),
mixed into ``NumpyBackend``: the reference formulas with ufunc ``out=`` into the
parameter, its state, and (at most two) reusable per-thread scratch arrays."""
import numpy as np


class NumpyOptimKernels:
    """Needs ``self._tls`` (a ``threading.local``), which NumpyBackend sets."""

    def _scratch(self, a, k):
        """A temporary shaped like ``a``: slot ``k`` of a per-thread, per-dtype
        pool that grows to the largest parameter and is reused every step."""
        pool = getattr(self._tls, "pool", None)
        if pool is None:
            pool = self._tls.pool = {}
        key = (a.dtype, k)
        buf = pool.get(key)
        n = a.size
        if buf is None or buf.size < n:
            buf = pool[key] = np.empty(n, a.dtype)
        return buf[:n].reshape(a.shape)

    def _grad_term(self, p, g, weight_decay, maximize):
        """-g if maximize else g, plus weight_decay * p (torch's order of terms)."""
        if weight_decay != 0:
            t = self._scratch(p, 0)
            np.multiply(p, weight_decay, out=t)
            (np.subtract if maximize else np.add)(t, g, out=t)
            return t
        if maximize:
            t = self._scratch(p, 0)
            np.negative(g, out=t)
            return t
        return g

    def sgd_update(self, p, g, buf, lr, weight_decay=0.0, momentum=0.0, dampening=0.0,
                   nesterov=False, maximize=False, first=False):
        d = self._grad_term(p, g, weight_decay, maximize)
        t = self._scratch(p, 1)
        if momentum != 0:
            if first:
                np.copyto(buf, d)
            else:
                np.multiply(buf, momentum, out=buf)
                if dampening != 0:
                    np.multiply(d, 1 - dampening, out=t)
                    np.add(buf, t, out=buf)
                else:
                    np.add(buf, d, out=buf)
            if nesterov:
                np.multiply(buf, momentum, out=t)
                np.add(d, t, out=t)
                d = t
            else:
                d = buf
        np.multiply(d, lr, out=t)
        np.subtract(p, t, out=p)

    def adam_update(self, p, g, m, v, vmax, lr, beta1, beta2, eps, weight_decay,
                    step_size, bc2_sqrt, decoupled=False, maximize=False):
        if weight_decay != 0 and decoupled:
            np.multiply(p, 1 - lr * weight_decay, out=p)
            d = self._grad_term(p, g, 0, maximize)
        else:
            d = self._grad_term(p, g, weight_decay, maximize)
        t = self._scratch(p, 1)
        w = 1 - beta1
        np.subtract(d, m, out=t)
        if w < 0.5:
            np.multiply(t, w, out=t)
            np.add(m, t, out=m)
        else:
            np.multiply(t, 1 - w, out=t)
            np.subtract(d, t, out=m)
        np.multiply(v, beta2, out=v)
        np.multiply(d, 1 - beta2, out=t)
        np.multiply(t, d, out=t)
        np.add(v, t, out=v)
        src = v
        if vmax is not None:
            np.maximum(vmax, v, out=vmax)
            src = vmax
        np.sqrt(src, out=t)
        np.divide(t, bc2_sqrt, out=t)
        np.add(t, eps, out=t)
        np.divide(m, t, out=t)
        np.multiply(t, step_size, out=t)
        np.subtract(p, t, out=p)
