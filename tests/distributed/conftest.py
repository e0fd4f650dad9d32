"""Tests that run on every rank of an MPI job:

    mpiexec -n 2 python -m pytest -p no:cacheprovider tests/distributed
    mpiexec -n 3 python -m pytest -p no:cacheprovider tests/distributed

Every rank collects the same tests in the same order, so their collectives
match. Under plain ``python -m pytest`` they run as a one-rank job when mpi4py
is installed, and are skipped when it is not (the default test extras)."""
import os

import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install 'gradkit[mpi]'")

import gradkit.distributed as dist  # noqa: E402

#: a bound on every collective in these tests: a desynchronized run fails in
#: seconds (CI's timeout kills whatever is left)
TIMEOUT_S = float(os.environ.get("GRADKIT_TEST_DIST_TIMEOUT", "20"))


@pytest.fixture(scope="session", autouse=True)
def process_group():
    dist.init_process_group("mpi", timeout=TIMEOUT_S)
    yield
    dist.destroy_process_group()


@pytest.fixture
def world():
    return dist.get_rank(), dist.get_world_size()
