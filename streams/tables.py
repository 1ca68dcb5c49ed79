"""The customer table behind the core's :class:`~segments.processor.StateStore`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from segments.state import CustomerState

__all__ = ["TableStore"]


class TableStore:
    """A Faust table written with explicit partitions.

    Writes go to the in-memory store and, once each, to the changelog partition of the
    customer's ``interactions`` partition: this works inside a stream event and from the
    due-time timer alike (Faust's ``table[k] = v`` needs the current event).
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def _store(self) -> Any:
        return self.table.data

    def get(self, key: str) -> CustomerState | None:
        return self._store.data.get(key)  # type: ignore[no-any-return]

    def put(self, partition: int, key: str, state: CustomerState) -> None:
        store = self._store
        store.data[key] = state
        # the memory store forgets revoked partitions' keys through this map
        store._key_partition[key] = partition
        self.table.send_changelog(partition, key, state)

    def delete(self, partition: int, key: str) -> None:
        store = self._store
        store.data.pop(key, None)
        store._key_partition.pop(key, None)
        self.table.send_changelog(partition, key, None, value_serializer="raw")

    def partition_of(self, key: str) -> int | None:
        return self._store._key_partition.get(key)  # type: ignore[no-any-return]

    def items(self, partition: int) -> Iterator[tuple[str, CustomerState]]:
        owner = self._store._key_partition
        for key, state in list(self._store.data.items()):
            if owner.get(key) == partition:
                yield key, state

    def __len__(self) -> int:
        return len(self._store.data)
