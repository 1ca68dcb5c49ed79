"""The partition mark each committed offset of ``interactions`` carries.

A batch slice ends at an offset; the partition's mark there
(:class:`~segments.partition.PartitionMark`: its clock and RFM cut points) is noted,
and the commit that writes that offset sends the mark as the offset's metadata. Faust
commits only offsets whose records were all processed, which are slice ends, so every
committed offset finds its mark. A worker that takes the partition over reads it
back and resumes the partition's time there (``Processor.recover``).

>>> from faust.types import TP
>>> from segments.partition import PartitionMark
>>> marks = CommitMarks("interactions")
>>> marks.note(0, 10, PartitionMark(1_000, None, None))
>>> marks.note(0, 25, PartitionMark(2_000, None, None))
>>> marks.metadata({TP("interactions", 0): 25, TP("interactions", 1): 4})
{TP(topic='interactions', partition=0): '{"v":1,"clock":2000,"refreshed_at":null,"rfm":null}'}
>>> marks.pending(0)  # what was noted before the committed offset is dropped
[25]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segments.partition import PartitionMark

__all__ = ["CommitMarks"]


class CommitMarks:
    """Marks noted at slice ends, per partition, until a commit passes them."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._noted: dict[int, dict[int, PartitionMark]] = {}

    def note(self, partition: int, next_offset: int, mark: PartitionMark) -> None:
        """The partition's mark once the records before ``next_offset`` are processed."""
        self._noted.setdefault(partition, {})[next_offset] = mark

    def metadata(self, offsets: Mapping[Any, int]) -> dict[Any, str]:
        """The encoded mark of each committed offset of :attr:`topic` that has one."""
        found: dict[Any, str] = {}
        for tp, offset in offsets.items():
            if tp.topic != self.topic:
                continue
            noted = self._noted.get(tp.partition)
            if not noted:
                continue
            mark = noted.get(offset)
            if mark is not None:
                found[tp] = mark.encode()
            # the committed offset only moves on (a seek back re-notes what follows)
            for earlier in [o for o in noted if o < offset]:
                del noted[earlier]
        return found

    def pending(self, partition: int) -> list[int]:
        """The offsets noted for ``partition`` and not yet passed by a commit."""
        return sorted(self._noted.get(partition, ()))

    def clear(self) -> None:
        """Forget every mark: after a rebalance, processing resumes from the committed
        offsets and notes again."""
        self._noted.clear()
