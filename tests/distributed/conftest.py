"""Tests that run on every rank of an MPI job:

    mpiexec -n 2 python -m pytest -p no:cacheprovider tests/distributed
    mpiexec -n 3 python -m pytest -p no:cacheprovider tests/distributed

Every rank collects the same tests in the same order, so their collectives
match. Under plain ``python -m pytest`` they run as a one-rank job when mpi4py
is installed, and each test module skips itself when it is not (the
default test extras)."""
import os

import pytest

import gradkit.distributed as dist   # imports mpi4py only in init_process_group

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
