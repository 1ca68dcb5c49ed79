"""When to checkpoint a partition's models to Kafka, and what to send.

The models learn with every label, so a snapshot per label would flood the
changelog: a partition is checkpointed once it has ``every_updates`` model updates
since the last snapshot, or has any and ``every_seconds`` passed, and on shutdown. A
restart resumes from the last checkpoint: what was learnt after it is lost, never the
model as a whole (docs/models.md).

>>> class FakeModels:
...     dirty = 0
...     def refit_running(self): return False
...     def snapshot(self): self.dirty = 0; return b"snap"
>>> m = FakeModels()
>>> c = ModelCheckpoints(every_updates=100, every_seconds=30.0)
>>> c.take(0, m, now=0.0) is None  # nothing learnt: nothing to save
True
>>> m.dirty = 5
>>> c.take(0, m, now=10.0) is None, c.take(0, m, now=31.0)  # 5 updates wait for the period
(True, b'snap')
>>> m.dirty = 150
>>> c.take(0, m, now=32.0)  # enough updates: at once
b'snap'
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ModelCheckpoints", "checkpoint_key"]


def checkpoint_key(partition: int) -> str:
    """The models table's key for a partition's snapshot."""
    return f"p{partition}"


class _Models(Protocol):
    """What a checkpoint reads of a partition's models (segments.models.partition)."""

    dirty: int

    def refit_running(self) -> bool: ...

    def snapshot(self) -> bytes: ...


class ModelCheckpoints:
    def __init__(self, *, every_updates: int, every_seconds: float) -> None:
        self.every_updates = every_updates
        self.every_seconds = every_seconds
        self._last: dict[int, float] = {}

    def take(self, partition: int, models: _Models | None, now: float, *,
             force: bool = False) -> bytes | None:
        """The snapshot of ``partition``'s models to send now, or None. ``now`` is a
        monotonic clock in seconds.

        While a BG/NBD refit is still running the checkpoint waits (a snapshot holds
        the refit's result, and must not block the event loop for it)."""
        if models is None:
            return None
        dirty = models.dirty
        last = self._last.setdefault(partition, now)
        if not dirty or (not force and dirty < self.every_updates
                         and now - last < self.every_seconds):
            return None
        if models.refit_running() and not force:
            return None
        self._last[partition] = now
        return models.snapshot()
