"""``python -m gradkit.distributed.run -n 4 train.py [args]``: start a data-parallel
job on this machine with the MPI launcher (a thin wrapper around ``mpiexec``).

    python -m gradkit.distributed.run -n 4 train.py --epochs 3
    python -m gradkit.distributed.run -n 2 -m mypackage.train
    python -m gradkit.distributed.run -n 8 -f hosts.txt train.py   # other flags go to mpiexec
    python -m gradkit.distributed.run --dry-run -n 4 train.py      # print the command only

It runs ``mpiexec -n N <this python> train.py ...``: the mpiexec given by
``GRADKIT_MPIEXEC``, else the one installed beside this Python (the ``mpich``
wheel of ``pip install 'gradkit[mpi]'`` puts it there), else ``mpiexec`` or
``mpirun`` on PATH. Inside the script, ``gradkit.distributed.init_process_group()``
needs no arguments. As torchrun does, it sets ``OMP_NUM_THREADS`` (and OpenBLAS's
and MKL's) to 1 when more than one process shares the machine and the variable is
not already set.
"""
import os
import shutil
import sys

USAGE = ("usage: python -m gradkit.distributed.run [-n N | --nproc-per-node N] [--dry-run] "
         "[mpiexec options] (script.py | -m module) [args ...]")


def find_mpiexec():
    """The MPI launcher to use, or None."""
    env = os.environ.get("GRADKIT_MPIEXEC")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(sys.executable))
    for name in ("mpiexec", "mpirun"):
        p = os.path.join(here, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    for name in ("mpiexec", "mpirun"):
        p = shutil.which(name)
        if p:
            return p
    return None


def build_command(argv, mpiexec):
    """(command list, nprocs) from this wrapper's arguments."""
    n = 1
    extra = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-n", "-np", "--nproc-per-node", "--nproc_per_node"):
            if i + 1 >= len(argv):
                raise SystemExit(f"gradkit.distributed.run: {a} needs a number\n{USAGE}")
            try:
                n = int(argv[i + 1])
            except ValueError:
                raise SystemExit(f"gradkit.distributed.run: {a} needs a number, got "
                                 f"{argv[i + 1]!r}\n{USAGE}") from None
            i += 2
            continue
        if a.startswith("--nproc-per-node=") or a.startswith("--nproc_per_node="):
            n = int(a.split("=", 1)[1])
            i += 1
            continue
        if a == "--":
            i += 1
            break
        if a == "-m" or a.endswith(".py") or not a.startswith("-") and os.path.isfile(a):
            break
        extra.append(a)
        i += 1
    target = argv[i:]
    if not target:
        raise SystemExit(f"gradkit.distributed.run: no script to run\n{USAGE}")
    if n < 1:
        raise SystemExit(f"gradkit.distributed.run: the number of processes must be at least 1, "
                         f"got {n}")
    return [mpiexec, "-n", str(n), *extra, sys.executable, *target], n


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print(__doc__)
        return 0
    dry = "--dry-run" in argv
    if dry:
        argv.remove("--dry-run")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        sys.stderr.write(
            "gradkit.distributed.run: no MPI launcher found (looked for GRADKIT_MPIEXEC, "
            f"mpiexec/mpirun beside {sys.executable}, and mpiexec/mpirun on PATH).\n"
            "Install one with: pip install 'gradkit[mpi]'   (mpi4py + MPICH from PyPI)\n"
            "or your system's MPI (e.g. apt-get install mpich, or module load mpi on a "
            "cluster), then run again.\n")
        return 2
    cmd, n = build_command(argv, mpiexec)
    if n > 1:
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(v, "1")
    if dry:
        print(" ".join(cmd))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
