"""The customer table behind the core's :class:`~segments.processor.StateStore`.

Two stores, one interface. Both hold the states of the worker's active partitions as
objects in memory (the core reads a customer per event) and queue each write for the
changelog:

- :class:`TableStore`, over Faust's ``memory://`` store: a restart, or a partition
  that comes back, reads its whole changelog again;
- :class:`RocksTableStore`, over ``rocksdb://`` (the default): every changelog batch
  is written to the partition's RocksDB database on this disk as it is sent, with the
  changelog offset it reaches once the broker acknowledges it. Faust then restores
  only the changelog after that offset, and the worker decodes the partition's
  states from the database (:meth:`RocksTableStore.load`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator, MutableMapping
from typing import Any

from segments.state import CustomerState
from streams.codecs import decode_state, encode_state
from streams.faust_internals import MemoryStoreView, Outgoing, RocksPartitions, SentBatch

__all__ = ["LocalCopies", "RocksTableStore", "TableStore"]


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
        self._writes: dict[str, tuple[int, CustomerState | None]] = {}
        view = MemoryStoreView(table)
        self._data: MutableMapping[str, CustomerState] = view.data
        # the memory store forgets revoked partitions' keys through this map
        self._partitions: MutableMapping[str, int] = view.partitions

    def get(self, key: str) -> CustomerState | None:
        return self._data.get(key)

    def put(self, partition: int, key: str, state: CustomerState) -> None:
        self._data[key] = state
        self._partitions[key] = partition
        self._writes[key] = (partition, state)

    def delete(self, partition: int, key: str) -> None:
        self._data.pop(key, None)
        self._partitions.pop(key, None)
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
        return self._partitions.get(key)

    def forget(self, partition: int) -> None:
        """Drop a partition's states from memory (RocksDB: its database stays)."""
        owner = self._partitions
        for key in [k for k, p in owner.items() if p == partition]:
            del owner[key]
            self._data.pop(key, None)

    def items(self, partition: int) -> Iterator[tuple[str, CustomerState]]:
        owner = self._partitions
        for key, state in list(self._data.items()):
            if owner.get(key) == partition:
                yield key, state

    def __len__(self) -> int:
        return len(self._data)


class RocksTableStore(TableStore):
    """The customer table on Faust's RocksDB store, its active partitions decoded in
    memory (see the module docstring)."""

    def __init__(self, table: Any) -> None:
        # not TableStore's: no Faust memory store to view, the dicts are this class's
        self.table = table
        self._writes = {}
        self._data = {}
        self._partitions = {}
        self.local = RocksPartitions(table)
        self._loaded: set[int] = set()

    def load(self, partition: int) -> int:
        """Decode the partition's states from its database into memory, unless they
        are there already; how many were read."""
        if partition in self._loaded:
            return 0
        data, owner = self._data, self._partitions
        count = 0
        for raw_key, value in self.local.items(partition):
            key = raw_key.decode()
            data[key] = decode_state(value)
            owner[key] = partition
            count += 1
        self._loaded.add(partition)
        return count

    def forget(self, partition: int) -> None:
        self._loaded.discard(partition)
        super().forget(partition)

    def loaded(self) -> frozenset[int]:
        return frozenset(self._loaded)


class LocalCopies:
    """Changelog records mirrored into the RocksDB databases of their tables.

    Each batch is written to the database as it is sent (after the outputs it follows,
    see ``streams/write_order.py``), and the database is marked as holding the
    changelog up to a batch's last offset once the broker acknowledges it: a restart
    reads the changelog after that offset only. A crash in between leaves the
    database ahead of its mark, and the tail read again writes the same states."""

    def __init__(self, tables: dict[str, RocksPartitions]) -> None:
        self.tables = tables  # changelog topic -> its table's databases

    def write(self, records: list[Outgoing]) -> None:
        batches: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {}
        for topic, partition, key, value in records:
            if topic in self.tables and partition is not None and key is not None:
                batches.setdefault((topic, partition), []).append((key, value))
        for (topic, partition), batch in batches.items():
            self.tables[topic].write(partition, batch)

    def sent(self, batches: list[SentBatch]) -> None:
        for batch in batches:
            local = self.tables.get(batch.topic)
            if local is not None:
                batch.future.add_done_callback(
                    functools.partial(_persisted, local, batch.partition, batch.records))


def _persisted(local: RocksPartitions, partition: int, records: int,
               future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return  # the worker stops (app.delivered); the database stays behind its records
    metadata = future.result()
    if metadata is not None:
        local.persisted(partition, metadata.offset + records - 1)
