"""The customer table behind the core's :class:`~segments.processor.StateStore`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from segments.state import CustomerState
from streams.codecs import encode_state
from streams.faust_internals import MemoryStoreView

__all__ = ["TableStore"]


class TableStore:
    """A Faust table written with explicit partitions.

    Writes go to the in-memory store at once and are queued for the changelog
    partition of the customer's ``interactions`` partition; the adapter sends them with
    :meth:`drain` after each record or timer tick, one changelog record per customer
    written (the latest state), before the offset can be committed. This works inside
    a stream event and from the due-time timer alike (Faust's ``table[k] = v`` needs
    the current event), and skips Faust's per-record send buffer on the hot path.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self._store = MemoryStoreView(table)
        self._writes: dict[str, tuple[int, CustomerState | None]] = {}

    def get(self, key: str) -> CustomerState | None:
        return self._store.data.get(key)  # type: ignore[no-any-return]

    def put(self, partition: int, key: str, state: CustomerState) -> None:
        self._store.data[key] = state
        # the memory store forgets revoked partitions' keys through this map
        self._store.partitions[key] = partition
        self._writes[key] = (partition, state)

    def delete(self, partition: int, key: str) -> None:
        self._store.data.pop(key, None)
        self._store.partitions.pop(key, None)
        self._writes[key] = (partition, None)

    def drain(self) -> list[tuple[int, bytes, bytes | None]]:
        """The queued changelog records: (partition, key, value or ``None`` for a
        tombstone), each customer once, encoded as the table's codecs decode them."""
        if not self._writes:
            return []
        writes = [(partition, key.encode(), None if state is None else encode_state(state))
                  for key, (partition, state) in self._writes.items()]
        self._writes.clear()
        return writes

    def partition_of(self, key: str) -> int | None:
        return self._store.partitions.get(key)

    def items(self, partition: int) -> Iterator[tuple[str, CustomerState]]:
        owner = self._store.partitions
        for key, state in list(self._store.data.items()):
            if owner.get(key) == partition:
                yield key, state

    def __len__(self) -> int:
        return len(self._store.data)
