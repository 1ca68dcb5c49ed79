"""BG/NBD and Gamma-Gamma refits from a partition's buyers, as plain data in and out,
so a process pool can run them off the event path (segments.btyd does the maths)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import NamedTuple

from segments.btyd import (
    BgNbdParams,
    FitError,
    GammaGammaParams,
    Summary,
    fit_bg_nbd,
    fit_gamma_gamma,
)

__all__ = ["BtydFit", "Submit", "fit_btyd", "refit_pool"]


class BtydFit(NamedTuple):
    bg: BgNbdParams | None
    gg: GammaGammaParams | None
    note: str


def fit_btyd(rows: list[tuple[int, float, float, float]]) -> BtydFit:
    """BG/NBD and Gamma-Gamma from (frequency, recency, age, monetary) rows in days.

    A module-level function of plain data, so a process pool can run it; the result
    depends on the multiset of rows only (segments.btyd), hence the same in any mode.
    """
    summaries = [Summary(x, r, a, m) for x, r, a, m in rows]
    try:
        bg = fit_bg_nbd(summaries)
    except FitError as exc:
        return BtydFit(None, None, str(exc))
    try:
        gg: GammaGammaParams | None = fit_gamma_gamma(summaries)
        note = ""
    except FitError as exc:
        gg, note = None, str(exc)
    return BtydFit(bg, gg, note)


Submit = Callable[..., "Future[BtydFit]"]


def refit_pool(start_method: str) -> ProcessPoolExecutor:
    """One process for refits, which exits when the process that made it dies.

    A parent killed with SIGKILL cannot stop its pool: the child and its resource
    tracker stayed, owned by init, for as long as anyone watched."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context(start_method),
                               initializer=_start_refit_process, initargs=(os.getpid(),))
    # start it and load SciPy now: a first refit that waited for both stalled a worker
    # catching up on a backlog (its clock outran the fit) for ~3 s
    pool.submit(_load_the_fit)
    return pool


def _load_the_fit() -> None:
    fit_btyd([(1, 10.0, 20.0, 5.0), (0, 0.0, 20.0, 0.0)])


def _start_refit_process(parent: int) -> None:
    _one_blas_thread()
    _exit_with_parent(parent)


def _one_blas_thread() -> None:
    """A fit is a 4-parameter L-BFGS-B: its BLAS calls are on vectors of 4, and
    OpenBLAS waking its threads for each one made a refit ~9x slower on 2 shared cores
    (2.9 ms per ``setulb`` call instead of 0.3 ms). One thread gives the same bits."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1, user_api="blas")


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
