"""The guard over the Faust and aiokafka internals the worker uses, and the batch acks.

The check must pass on the locked versions and fail, naming the attribute, when an
upgrade removes or renames one; the batch path's acknowledgement must leave Faust's
commit bookkeeping exactly as Faust's own per-message ``ack`` would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

from streams import faust_internals
from streams.cli import main
from streams.faust_internals import BatchConsumer, InternalsChanged, check


def test_the_locked_versions_have_everything() -> None:
    check()


def test_a_removed_method_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(faust_aiokafka.AIOKafkaConsumerThread, "_fetch_records")
    with pytest.raises(InternalsChanged, match=r"AIOKafkaConsumerThread\._fetch_records "
                                               r"is gone: the installed faust"):
        check()


def test_a_renamed_instance_attribute_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # what an upgrade renaming aiokafka's private fetch hold would look like
    real = faust_internals._module_source

    def renamed(cls: type) -> str:
        return real(cls).replace("self._fetch_max_wait_ms", "self._fetch_wait_ms")

    monkeypatch.setattr(faust_internals, "_module_source", renamed)
    with pytest.raises(InternalsChanged, match=r"AIOKafkaConsumer no longer sets "
                                               r"self\._fetch_max_wait_ms: .* aiokafka"):
        check()


def test_a_dropped_parameter_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _wait_next_records(self: Any, wait: float) -> None: ...

    monkeypatch.setattr(faust_internals, "_PARAMETERS",
                        ((_wait_next_records, "timeout"),))
    with pytest.raises(InternalsChanged, match="_wait_next_records no longer takes "
                                               "'timeout'"):
        check()


def test_a_consumer_without_the_fetch_hold_is_refused() -> None:
    with pytest.raises(InternalsChanged, match="object has no _fetch_max_wait_ms"):
        faust_internals._require(object(), "_fetch_max_wait_ms")


def test_the_worker_stops_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delattr(faust_consumer.Consumer, "_add_gap")
    # nothing is contacted: the check runs before the topics are ensured
    assert main(["worker", "--bootstrap", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Consumer._add_gap is gone" in err, err


def _consumer(app_id: str) -> Any:
    app = faust.App(app_id, broker="kafka://127.0.0.1:1")
    app.transport.Consumer = BatchConsumer.handling({})
    topic = app.topic("interactions")
    app.topics.add(topic)
    app.topics._acking_topics.add("interactions")  # what the conductor does at start
    return app.consumer


def test_acknowledging_a_batch_is_acking_each_message() -> None:
    tp = TP("interactions", 1)
    ours, faust_s = _consumer("ours"), _consumer("theirs")
    for consumer in (ours, faust_s):
        consumer._committed_offset[tp] = 5
    offsets = [3, 5, 6, 7, 9, 10, 10]  # below the commit, a gap, a repeat

    assert ours.acknowledge(tp, offsets) == 5
    for offset in offsets:
        faust_s.ack(Message("interactions", 1, offset, 0.0, 0, None, None, b"", None, tp=tp))
    assert ours._acked[tp] == faust_s._acked[tp] == [5, 6, 7, 9, 10]
    assert ours._acked_index[tp] == faust_s._acked_index[tp]
    assert ours._n_acked == faust_s._n_acked == 5
    assert ours._new_offset(tp) == faust_s._new_offset(tp) == 8


class _Record:
    def __init__(self, offset: int) -> None:
        self.offset = offset


def test_fresh_records_follow_fausts_read_offset() -> None:
    consumer = _consumer("fresh")
    tp = TP("interactions", 0)
    gaps: list[tuple[int, int]] = []

    async def add_gap(tp: TP, start: int, end: int) -> None:
        gaps.append((start, end))

    consumer._add_gap = add_gap
    consumer._read_offset[tp] = 10  # sought to 10, or processed up to 10
    records = [_Record(offset) for offset in (8, 10, 11, 14, 15)]
    fresh = asyncio.run(consumer._fresh(tp, records))
    assert [record.offset for record in fresh] == [10, 11, 14, 15]
    assert gaps == [(12, 14)]


def _process_during_rebalance(consumer: Any, tp: TP, records: list[_Record],
                              revoked_at: int | None) -> bool:
    """Hand ``records`` over as the worker's loop does; the handler processes them
    all, and with ``revoked_at`` the group revokes the partition after that many."""
    async def handler(tp: TP, batch: list[Any]) -> int:
        for done, _ in enumerate(batch):
            if done == revoked_at:
                await consumer.on_partitions_revoked({tp})
        return len(batch)

    return bool(asyncio.run(consumer._hand_over(tp, records, handler)))


@pytest.mark.parametrize("elsewhere", [1483, 1300], ids=["ahead", "behind"])
def test_records_processed_across_a_revocation_are_not_acknowledged(elsewhere: int) -> None:
    """A worker is processing offsets 1400-1499 of a partition when the group revokes
    it; another worker commits ``elsewhere``, and the partition comes back. Acks the
    first worker noted after the revocation would make Faust commit offsets this
    assignment has not processed yet: 1500 (with no mark: no slice end of this
    assignment) as soon as the consecutive acks reach 1400, which is at once when
    ``elsewhere`` is ahead of it."""
    consumer = _consumer(f"revoked-{elsewhere}")
    tp = TP("interactions", 2)
    consumer._committed_offset[tp] = consumer._read_offset[tp] = 1400
    records = [_Record(offset) for offset in range(1400, 1500)]

    assert not _process_during_rebalance(consumer, tp, records, revoked_at=50)
    assert not consumer._acked.get(tp) and consumer._read_offset.get(tp) is None

    # assigned again, at the offset committed meanwhile (perform_seek), and processed
    # ten records at a time, each batch committed as Faust commits
    consumer._committed_offset[tp] = consumer._read_offset[tp] = elsewhere
    starts = range(elsewhere, max(elsewhere + 20, 1410), 10)
    commits = []
    for start in starts:
        batch = [_Record(offset) for offset in range(start, start + 10)]
        assert _process_during_rebalance(consumer, tp, batch, revoked_at=None)
        offsets = consumer._filter_committable_offsets([tp])
        consumer._committed_offset.update(offsets)
        commits.append(offsets.get(tp))
    assert commits == [start + 10 for start in starts]


def test_without_a_revocation_the_batch_is_acknowledged() -> None:
    consumer = _consumer("kept")
    tp = TP("interactions", 0)
    consumer._committed_offset[tp] = consumer._read_offset[tp] = 7
    assert _process_during_rebalance(consumer, tp, [_Record(o) for o in range(7, 12)],
                                     revoked_at=None)
    assert consumer._read_offset[tp] == 11
    assert consumer._filter_committable_offsets([tp]) == {tp: 12}
