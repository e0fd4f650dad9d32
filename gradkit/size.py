"""``gk.Size``: the type of ``t.shape`` and ``t.size()``, as ``torch.Size``."""


class Size(tuple):
    """A tuple of ints (a tensor's shape) that prints as ``gradkit.Size([3, 28, 28])``
    and has ``numel()``; slicing it or adding a tuple gives a Size. As torch.Size."""
    __slots__ = ()

    def __repr__(self):
        return f"gradkit.Size({list(self)})"

    __str__ = __repr__

    def numel(self):
        """The number of elements of a tensor of this shape."""
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if i.__class__ is slice else r

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def __reduce__(self):
        return (Size, (tuple(self),))
