"""Changelog writes wait for the outputs before them, in order, and never follow a
failed output (streams/write_order.py)."""

from __future__ import annotations

import asyncio

import pytest

from streams.write_order import WritesAfterOutputs


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def recording() -> tuple[WritesAfterOutputs[str], list[str]]:
    """An order whose sends are recorded, in the order they happen."""
    sent: list[str] = []

    async def send(writes: list[str]) -> None:
        sent.extend(writes)

    return WritesAfterOutputs(send), sent


def test_a_write_waits_for_its_outputs_and_every_earlier_write() -> None:
    async def scenario() -> list[str]:
        order, sent = recording()
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        order.after([first], ["c-1 v1"])
        order.after([second], ["c-1 v2"])
        order.after([], ["checkpoint"])
        second.set_result(None)  # the later batch is acknowledged first
        for _ in range(5):
            await asyncio.sleep(0)
        assert sent == [] and order.pending  # v2 must not overtake v1
        first.set_result(None)
        await order.drained()
        assert not order.pending
        return sent

    assert run(scenario()) == ["c-1 v1", "c-1 v2", "checkpoint"]


def test_a_failed_output_stops_its_write_and_every_later_one() -> None:
    async def scenario() -> list[str]:
        order, sent = recording()
        loop = asyncio.get_running_loop()
        lost, fine = loop.create_future(), loop.create_future()
        order.after([], ["before"])
        order.after([lost], ["c-1 v1"])
        order.after([fine], ["c-2 v1"])
        fine.set_result(None)
        lost.set_exception(RuntimeError("broker refused the batch"))
        with pytest.raises(RuntimeError, match="refused"):
            await order.drained()  # a commit waiting here fails: no offset moves on
        return sent

    assert run(scenario()) == ["before"]


def test_nothing_to_wait_for_drains_at_once() -> None:
    async def scenario() -> bool:
        async def send(writes: list[str]) -> None:
            raise AssertionError("nothing to send")

        order: WritesAfterOutputs[str] = WritesAfterOutputs(send)
        order.after([], [])
        await asyncio.wait_for(order.drained(), 1.0)
        return order.pending

    assert run(scenario()) is False
