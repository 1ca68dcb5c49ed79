"""The refit process exits when the worker or replay that made it is killed (SIGKILL),
and runs BLAS on one thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import os, sys
from segments.models.refits import refit_pool
pool = refit_pool(sys.argv[1])
print(pool.submit(os.getpid).result(), flush=True)
sys.stdin.read()  # until killed
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_the_refit_process_exits_with_its_parent(start_method: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, start_method],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert child != parent.pid and _alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), f"refit process {child} outlived its killed parent"


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_the_refit_process_runs_blas_on_one_thread(start_method: str) -> None:
    """A 4-parameter fit with OpenBLAS's threads was ~9x slower on shared cores."""
    from segments.models.refits import fit_btyd, refit_pool

    pool = refit_pool(start_method)
    try:  # after a fit: SciPy's optimiser and its OpenBLAS are loaded by then
        pool.submit(fit_btyd, [(1, 10.0, 20.0, 5.0), (0, 0.0, 20.0, 0.0)]).result(timeout=120)
        threads = pool.submit(_blas_threads).result(timeout=120)
    finally:
        pool.shutdown(wait=True)
    assert threads and set(threads) == {1}  # numpy's and SciPy's OpenBLAS alike
