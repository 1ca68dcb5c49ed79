"""When to checkpoint a partition's models to Kafka, and what to send.

The models learn with every label, so a snapshot per label would flood the
changelog: a partition is checkpointed once it has ``every_updates`` model updates
since the last snapshot, or has any and ``every_seconds`` passed, and on shutdown. A
restart resumes from the last checkpoint: what was learnt after it is lost, never the
model as a whole (docs/models.md).

>>> class FakeProcessor:
...     dirty = 0
...     def models_dirty(self, partition): return self.dirty
...     def refit_in_flight(self, partition): return False
...     def models_snapshot(self, partition): self.dirty = 0; return b"snap"
>>> p = FakeProcessor()
>>> c = ModelCheckpoints(p, every_updates=100, every_seconds=30.0)
>>> c.take(0, now=0.0) is None  # nothing learnt: nothing to save
True
>>> p.dirty = 5
>>> c.take(0, now=10.0) is None, c.take(0, now=31.0)  # 5 updates wait for the period
(True, b'snap')
>>> p.dirty = 150
>>> c.take(0, now=32.0)  # enough updates: at once
b'snap'
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ModelCheckpoints", "checkpoint_key"]


def checkpoint_key(partition: int) -> str:
    """The models table's key for a partition's snapshot."""
    return f"p{partition}"


class _Models(Protocol):
    def models_dirty(self, partition: int) -> int: ...

    def refit_in_flight(self, partition: int) -> bool: ...

    def models_snapshot(self, partition: int) -> bytes | None: ...


class ModelCheckpoints:
    def __init__(self, processor: _Models, *, every_updates: int,
                 every_seconds: float) -> None:
        self.processor = processor
        self.every_updates = every_updates
        self.every_seconds = every_seconds
        self._last: dict[int, float] = {}

    def take(self, partition: int, now: float, *, force: bool = False) -> bytes | None:
        """The snapshot to send now, or None. ``now`` is a monotonic clock in seconds.

        While a BG/NBD refit is still running the checkpoint waits (a snapshot holds
        the refit's result, and must not block the event loop for it)."""
        dirty = self.processor.models_dirty(partition)
        last = self._last.setdefault(partition, now)
        if not dirty or (not force and dirty < self.every_updates
                         and now - last < self.every_seconds):
            return None
        if self.processor.refit_in_flight(partition) and not force:
            return None
        self._last[partition] = now
        return self.processor.models_snapshot(partition)
