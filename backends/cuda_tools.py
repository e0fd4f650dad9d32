"""CUDA facts and kernel warm-up for ``python -m gradkit info`` / ``warmup``.

Lives in backends/ because it imports cupy (lazily, inside each function).
Nothing here raises for a missing cupy, driver or GPU: each fact says why it is
missing instead.
"""
import importlib.metadata as _md
import os

from . import cupy_backend   # imports cupy itself only inside its functions

_CUPY_DISTS = ("cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy")


def _version_str(v):
    """CUDA's integer version (12090) as '12.9'."""
    if not isinstance(v, int) or v <= 0:
        return None
    return f"{v // 1000}.{(v % 1000) // 10}"


def cupy_version():
    """(distribution name, version) of the installed cupy wheel, or None."""
    for dist in _CUPY_DISTS:
        try:
            return dist, _md.version(dist)
        except _md.PackageNotFoundError:
            continue
    return None


def describe():
    """A dict of CUDA facts: cupy, runtime and driver versions, devices.

    Keys: ``cupy`` ('name version' or None), ``cupy_error`` (why cupy did not
    import), ``runtime``, ``driver`` (strings or None, with ``*_error``),
    ``devices`` (list of dicts: index, name, memory_total, memory_free,
    compute_capability), ``devices_error``, ``cache_dir`` (CUPY_CACHE_DIR).
    """
    info = {"cupy": None, "cupy_error": None, "runtime": None, "runtime_error": None,
            "driver": None, "driver_error": None, "devices": [], "devices_error": None,
            "cache_dir": os.environ.get("CUPY_CACHE_DIR",
                                        os.path.join(os.path.expanduser("~"), ".cupy",
                                                     "kernel_cache"))}
    dist = cupy_version()
    try:
        import cupy as cp  # optional dependency (CUDA): imported lazily
    except Exception as e:  # ImportError, or a broken install
        info["cupy_error"] = f"{type(e).__name__}: {e}"
        if dist:
            info["cupy"] = f"{dist[0]} {dist[1]} (does not import)"
        return info
    info["cupy"] = f"{dist[0]} {dist[1]}" if dist else f"cupy {cp.__version__}"
    rt = cp.cuda.runtime
    try:
        info["runtime"] = _version_str(rt.runtimeGetVersion())
    except Exception as e:
        info["runtime_error"] = f"{type(e).__name__}: {e}"
    try:
        v = rt.driverGetVersion()
        info["driver"] = _version_str(v)
        if info["driver"] is None:
            info["driver_error"] = "no NVIDIA driver found"
    except Exception as e:
        info["driver_error"] = f"{type(e).__name__}: {e}"
    try:
        n = rt.getDeviceCount()
    except Exception as e:
        info["devices_error"] = f"{type(e).__name__}: {e}"
        return info
    for i in range(n):
        d = {"index": i}
        try:
            p = rt.getDeviceProperties(i)
            name = p.get("name", b"?")
            d["name"] = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            d["memory_total"] = int(p.get("totalGlobalMem", 0))
            d["compute_capability"] = f"{p.get('major', '?')}.{p.get('minor', '?')}"
            with cp.cuda.Device(i):
                d["memory_free"] = int(rt.memGetInfo()[0])
        except Exception as e:
            d["error"] = f"{type(e).__name__}: {e}"
        info["devices"].append(d)
    return info


def _kernel_args(cp, params, dtype, n=4):
    """Tiny arrays for an ElementwiseKernel's parameters: type placeholders
    (``T``) take ``dtype``, fixed types (``bool m``, ``int32 k``) their own."""
    args = []
    for p in params:
        dt = p.dtype if p.dtype is not None else dtype
        if cp.dtype(dt).kind == "b":
            args.append(cp.ones(n, dtype=dt))
        else:
            args.append(cp.full(n, 0.5 if cp.dtype(dt).kind == "f" else 1, dtype=dt))
    return args


def warmup_kernels(dtypes=("float32", "float64"), device=0, log=print, cp=None, kernels=None,
                   known=None, table_warmup=None):
    """Compile every kernel of ``cupy_backend._kernels()`` for each dtype; CuPy
    caches the binaries in CUPY_CACHE_DIR. Returns a list of (kernel name,
    dtype, error) failures.

    A kernel is compiled per argument types *and kinds*: one whose callers pass
    a Python scalar (``float64 lr``) compiles a different binary than one given
    an array there. So the kernels listed in ``cupy_backend.KERNEL_NAMES`` are
    warmed by ``cupy_backend.warmup``, which calls each with the arguments
    gradkit really passes; any other kernel of the table gets tiny arrays for
    every parameter (a best guess). ``cp``, ``kernels``, ``known`` and
    ``table_warmup`` replace CuPy and the table in tests.
    """
    if cp is None:
        import cupy as cp  # optional dependency (CUDA): imported lazily
    if kernels is None:
        kernels = cupy_backend._kernels()
        known = tuple(getattr(cupy_backend, "KERNEL_NAMES", ())) + ("index_out_of_range",)
        table_warmup = getattr(cupy_backend, "warmup", None)
    known = tuple(known or ()) if table_warmup is not None else ()

    failures = []
    for dt in dtypes:
        if not known:
            break
        try:
            table_warmup((dt,), device)
            log(f"  {f'{len(known)} built-in kernels':<28} {dt:<8} ok")
        except Exception as e:
            failures.append(("built-in kernels", dt, f"{type(e).__name__}: {e}"))
            log(f"  {f'{len(known)} built-in kernels':<28} {dt:<8} FAILED: "
                f"{type(e).__name__}: {e}")
    with cp.cuda.Device(device):
        for name, k in kernels.items():
            if name in known:
                continue
            for dt in dtypes:
                try:
                    ins = getattr(k, "in_params", None)
                    if ins is None:
                        log(f"  skip {name}: {type(k).__name__} is not an ElementwiseKernel")
                        break
                    args = _kernel_args(cp, ins, dt)
                    try:
                        k(*args)
                    except TypeError:
                        # output types not implied by the inputs: pass the outputs too
                        k(*args, *_kernel_args(cp, k.out_params, dt))
                    log(f"  {name:<28} {dt:<8} ok (array arguments)")
                except Exception as e:
                    failures.append((name, dt, f"{type(e).__name__}: {e}"))
                    log(f"  {name:<28} {dt:<8} FAILED: {type(e).__name__}: {e}")
        cp.cuda.Device(device).synchronize()
    return failures
