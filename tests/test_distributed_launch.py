"""Whole MPI jobs started from a test: a rank that raises makes the job fail fast
with that rank's message; a collective that times out names the rank and the
collective; the launcher wrapper and the DDP example run. Each job is bounded
by a timeout. Skipped without mpi4py and an mpiexec (``pip install
'gradkit[mpi]'``); the launcher's own messages are checked without MPI."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gradkit.distributed import run as launcher

REPO = Path(__file__).resolve().parents[1]


def _inside_mpi_job():
    return any(os.environ.get(v, "1") not in ("", "1") for v in
               ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"))


def _clean_env(**extra):
    """This environment without an MPI job's variables (so mpiexec starts afresh)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "MPI_"))}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _mpi_ready():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed: pip install 'gradkit[mpi]'"
    if launcher.find_mpiexec() is None:
        return "no mpiexec found"
    if _inside_mpi_job():
        return "already inside an MPI job (these tests start their own)"
    return None


needs_mpi = pytest.mark.skipif(_mpi_ready() is not None, reason=str(_mpi_ready()))


def job(tmp_path, source, n=2, timeout=60, env=None, args=()):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(source))
    t0 = time.monotonic()
    r = subprocess.run([launcher.find_mpiexec(), "-n", str(n), sys.executable, str(script),
                        *args], capture_output=True, text=True, timeout=timeout,
                       env=_clean_env(**(env or {})), cwd=tmp_path)
    return r.returncode, r.stdout + r.stderr, time.monotonic() - t0


@needs_mpi
def test_a_failing_rank_aborts_the_job_with_its_message(tmp_path):
    code, out, took = job(tmp_path, """
        import gradkit.distributed as dist
        dist.init_process_group(timeout=300)      # the abort, not this timeout, ends the job
        if dist.get_rank() == 1:
            raise ValueError("rank 1 could not read its shard")
        dist.barrier()                            # rank 0 would wait here forever
        print("rank 0 got past the barrier")
    """, n=2)
    assert code != 0, out
    assert "[rank 1] ValueError: rank 1 could not read its shard" in out
    assert "rank 1 of 2 raised ValueError; aborting the whole job" in out
    assert "got past the barrier" not in out
    assert took < 30, f"the job took {took:.1f} s to fail"


@needs_mpi
def test_a_timed_out_collective_names_rank_and_collective(tmp_path):
    code, out, took = job(tmp_path, """
        import time
        import gradkit as gk, gradkit.distributed as dist
        dist.init_process_group(timeout=2)
        if dist.get_rank() == 0:
            dist.all_reduce(gk.ones(3))           # rank 1 never joins
        else:
            time.sleep(60)
    """, n=2)
    assert code != 0, out
    assert "gradkit.distributed.all_reduce: rank 0 timed out after 2 s" in out, (code, out)
    assert "DistTimeoutError" in out and took < 30


@needs_mpi
def test_debug_mode_reports_mismatched_shapes(tmp_path):
    code, out, _ = job(tmp_path, """
        import gradkit as gk, gradkit.distributed as dist
        dist.init_process_group(timeout=20)
        dist.all_reduce(gk.zeros(4 + dist.get_rank()))
    """, n=2, env={"GRADKIT_DISTRIBUTED_DEBUG": "1"})
    assert code != 0
    assert "the ranks disagree" in out
    assert "rank 0: all_reduce(shape (4,), float32" in out
    assert "rank 1: all_reduce(shape (5,), float32" in out


@needs_mpi
def test_launcher_and_ddp_example(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gradkit.distributed.run", "-n", "2",
                        str(REPO / "examples" / "train_ddp.py"), "--steps", "30"],
                       capture_output=True, text=True, timeout=120, env=_clean_env(),
                       cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "2 processes" in out and "test accuracy" in out
    assert "replicas agree: yes" in out


def test_launcher_command_line(monkeypatch, capsys):
    monkeypatch.setattr(launcher, "find_mpiexec", lambda: "/opt/mpi/bin/mpiexec")
    assert launcher.main(["--dry-run", "-n", "4", "-f", "hosts", "train.py", "--lr", "1"]) == 0
    assert capsys.readouterr().out.split() == [
        "/opt/mpi/bin/mpiexec", "-n", "4", "-f", "hosts", sys.executable, "train.py", "--lr", "1"]
    assert launcher.main(["--dry-run", "--nproc-per-node=2", "-m", "pkg.train"]) == 0
    assert capsys.readouterr().out.split()[-3:] == [sys.executable, "-m", "pkg.train"]
    with pytest.raises(SystemExit, match="no script to run"):
        launcher.main(["-n", "2"])


def test_launcher_without_mpi_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(launcher, "find_mpiexec", lambda: None)
    assert launcher.main(["-n", "2", "train.py"]) == 2
    err = capsys.readouterr().err
    assert "no MPI launcher found" in err and "pip install 'gradkit[mpi]'" in err
