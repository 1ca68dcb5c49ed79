"""The due index: which customer of a partition is due next, and when.

Every customer has at most one *due instant* (``state.due``): the earliest moment its
segments, a pending trigger or an open model example may change with no new event
(:meth:`segments.engine.Engine.next_due` computes it). The index keeps those instants in
a heap per partition. A customer re-scheduled or erased leaves its old entry behind;
such an entry is *stale* and skipped when popped (cheaper than removing it), and an
entry is pushed only when a customer's instant changed, so the heap grows with
changes, not with events.

>>> index = DueIndex()
>>> index.push("a", 30); index.push("b", 10); index.push("a", 20)  # a re-scheduled
>>> dues = {"a": 20, "b": 10}
>>> list(index.pop_due(25, dues.get))
[(10, 'b'), (20, 'a')]
>>> len(index)  # a's stale entry at 30 is still there, it is skipped when popped
1
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

__all__ = ["DueIndex"]


class DueIndex:
    """A heap of ``(due instant, customer key)``; stale entries skipped."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []

    def push(self, key: str, due: int | None) -> None:
        """Schedule ``key`` at ``due`` (nothing for None: the customer has no due)."""
        if due is not None:
            heapq.heappush(self._heap, (due, key))

    def pop_due(self, before: int,
                current: Callable[[str], int | None]) -> Iterator[tuple[int, str]]:
        """Remove and yield the entries due strictly before ``before``, earliest first,
        whose instant is still the customer's ``current(key)``. Pushing while
        iterating is allowed: an entry pushed before ``before`` is yielded too."""
        heap = self._heap
        while heap and heap[0][0] < before:
            due, key = heapq.heappop(heap)
            if current(key) == due:
                yield due, key

    def rebuild(self, entries: Iterable[tuple[str, int | None]]) -> None:
        """Replace the index by ``(key, due)`` pairs, e.g. a recovered table's."""
        self._heap = [(due, key) for key, due in entries if due is not None]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, entry: object) -> bool:
        return entry in self._heap
