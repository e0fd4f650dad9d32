"""``gk.backends.cuda`` (as ``torch.backends.cuda``): the flags PyTorch
programs set (``matmul.allow_tf32``, ``matmul.allow_fp16_reduced_precision_reduction``)
and ``is_built()``. gradkit keeps the flags for those programs; CuPy's own
settings decide its matmul precision. Imports nothing at load time."""


class _Flags:
    def __init__(self, **flags):
        self.__dict__.update(flags)

    def __repr__(self):
        return "<flags " + ", ".join(f"{k}={v}" for k, v in self.__dict__.items()) + ">"


matmul = _Flags(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                allow_bf16_reduced_precision_reduction=True)


def is_built():
    """True when CuPy imports (gradkit's CUDA support is installed)."""
    try:
        import cupy  # noqa: F401  (optional dependency)
    except Exception:
        return False
    return True


def empty_cache():
    """Free the unused blocks cached by CuPy's default memory pools (for
    ``gk.cuda.empty_cache()``)."""
    import cupy  # optional dependency, only reached with CUDA usable
    cupy.get_default_memory_pool().free_all_blocks()
    cupy.get_default_pinned_memory_pool().free_all_blocks()
