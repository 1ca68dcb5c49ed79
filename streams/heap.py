"""Keep the worker's full garbage collections short as its state grows.

A full collection walks every tracked object while the event loop waits: ~0.27 us
each here, so ~100 ms for 20,000 customers' state and seconds for a million. What
survives a full collection is, at that instant, all reachable; freezing it
(``gc.freeze``) takes it out of every later collection. Reference counting still frees
frozen objects; only cyclic garbage among them would stay, and the processor creates
none (``tests/segments/test_no_cycles.py``). :meth:`HeapSettler.leaked` counts what did
stay, at shutdown.

>>> import gc
>>> settler = HeapSettler(slow_ms=0.0, schedule=lambda freeze: freeze())
>>> settler.install()
>>> kept = [[n] for n in range(10_000)]
>>> _ = gc.collect()  # a full collection: slower than 0 ms, so what survived is frozen
>>> settler.freezes >= 1 and gc.get_freeze_count() >= 10_000
True
>>> settler.uninstall(); gc.unfreeze()
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HeapSettler"]

log = logging.getLogger(__name__)


class HeapSettler:
    """Freeze the heap after recovery, and again after any full collection slower than
    ``slow_ms``. ``schedule`` runs the freeze outside the collector's callback (the
    worker passes its event loop's ``call_soon_threadsafe``: a collection may run on
    the consumer thread)."""

    def __init__(self, *, slow_ms: float, schedule: Callable[[Callable[[], None]], Any]
                 ) -> None:
        self.slow_ms = slow_ms
        self.schedule = schedule
        self.freezes = 0
        self.full_collections = 0
        self.last_full_ms = 0.0
        self._started: float | None = None

    def install(self) -> None:
        gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)

    def settle(self) -> None:
        """Collect everything now and freeze what is left (after a recovery)."""
        gc.collect()
        self._freeze()

    def leaked(self) -> int:
        """Unfreeze and collect: the objects that became cyclic garbage while frozen."""
        gc.unfreeze()
        return gc.collect()

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        took = (time.perf_counter() - self._started) * 1000
        self._started = None
        self.full_collections += 1
        self.last_full_ms = took
        if took > self.slow_ms:
            log.info("a full garbage collection took %.0f ms: freezing what survived", took)
            self.schedule(self._freeze)
