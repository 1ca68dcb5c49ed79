"""Changelog records only after the outputs they follow are acknowledged.

A customer's changelog record holds the ids of the events folded into it (the dedupe
memory). Were it to reach the broker before those events' outputs and the worker die
in between, the restored state would drop the redelivered events as duplicates and
their outputs would never be produced. So the worker sends a batch's outputs at once
and its changelog records once every output future of the batch (and every earlier
batch) has succeeded; a commit first waits for all of them to be queued
(:meth:`WritesAfterOutputs.drained`), then flushes the producer as Faust does.

A crash in between loses nothing: the offsets are not committed, the events are
processed again from the earlier state, and their outputs repeat with the same ids
and values (at-least-once).

>>> import asyncio
>>> async def demo():
...     sent = []
...     async def send(records):
...         sent.append(records)
...     order = WritesAfterOutputs(send)
...     output = asyncio.get_running_loop().create_future()
...     order.after([output], ["state of c-1"])
...     await asyncio.sleep(0)
...     before = list(sent)
...     output.set_result("acknowledged")
...     await order.drained()
...     return before, sent
>>> asyncio.run(demo())
([], [['state of c-1']])
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

__all__ = ["WritesAfterOutputs"]

Record = TypeVar("Record")


class WritesAfterOutputs(Generic[Record]):
    """A FIFO of writes, each sent once its outputs, and every earlier write, are done.

    FIFO keeps a key's changelog records in the order they were made: compaction keeps
    the last one, which must be the newest state."""

    def __init__(self, send: Callable[[list[Record]], Awaitable[Any]]) -> None:
        self._send = send
        self._tail: asyncio.Future[None] | None = None

    def after(self, outputs: Sequence[asyncio.Future[Any]], writes: list[Record]) -> None:
        """Send ``writes`` once ``outputs`` succeeded; none of them, nor any later
        write, if one failed (the caller stops the worker on a failed output)."""
        if not outputs and not writes:
            return
        self._tail = asyncio.ensure_future(self._link(self._tail, outputs, writes))

    async def _link(self, previous: asyncio.Future[None] | None,
                    outputs: Sequence[asyncio.Future[Any]], writes: list[Record]) -> None:
        if previous is not None:
            await previous
        if outputs:
            await asyncio.gather(*outputs)
        if writes:
            await self._send(writes)

    @property
    def pending(self) -> bool:
        """Whether some write waits for its outputs (or is being queued)."""
        return self._tail is not None and not self._tail.done()

    async def drained(self) -> None:
        """Return once every write so far has been queued with the producer; raises
        what stopped one (a failed output or send)."""
        tail = self._tail
        if tail is not None:
            await asyncio.shield(tail)
