"""``gk.Generator``: a seedable source of random draws for host-side
choices (DataLoader shuffles, samplers, ``random_split``), as
``torch.Generator`` is used there.

It is a Mersenne Twister (Python's ``random.Random``) kept on the host: the
same seed gives the same shuffles on every run and machine, but not the same
permutations as torch's generator (a different mapping from the stream to
integers). Ops that take ``generator=`` elsewhere in gradkit draw from the
device generators seeded by ``gk.manual_seed`` instead.
"""
import random as _random

from .creation import randint

__all__ = ["Generator", "default_seed"]


class Generator:
    """``Generator(device="cpu")``; ``manual_seed(seed)`` (returns self),
    ``initial_seed()``, ``seed()``, ``get_state()``, ``set_state(state)``;
    ``randperm(n)`` and ``randint(high, k)`` as Python lists."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = default_seed()
        self._rng = _random.Random(self._seed)

    def manual_seed(self, seed):
        seed = int(seed)
        self._seed = seed
        self._rng.seed(seed)
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        """Reseed from a fresh nondeterministic value; returns it."""
        s = _random.SystemRandom().getrandbits(63)
        self.manual_seed(s)
        return s

    def get_state(self):
        return self._rng.getstate()

    def set_state(self, state):
        self._rng.setstate(state)
        return self

    def randperm(self, n):
        """A random permutation of ``range(n)`` as a list."""
        perm = list(range(int(n)))
        self._rng.shuffle(perm)
        return perm

    def randint(self, high, k):
        """``k`` integers drawn uniformly from ``[0, high)`` as a list."""
        return [self._rng.randrange(int(high)) for _ in range(int(k))]

    def random(self, k):
        """``k`` floats uniform in [0, 1) as a list."""
        return [self._rng.random() for _ in range(int(k))]

    def __repr__(self):
        return f"<gradkit.Generator seed={self._seed}>"


def default_seed():
    """A seed drawn from gradkit's global CPU generator: ``gk.manual_seed(s)``
    makes every Generator made afterwards (and unseeded shuffles) repeatable."""
    return int(randint(0, 2 ** 62, (1,), device="cpu").item())
