"""A takeover as the worker lives it, without Kafka: a processor runs past its last
commit, dies, and another restores the changelog (written ahead of the commit, some
customers further than others) and processes again from the committed offset.

At-least-once promises that what the two produce, together, is what one uninterrupted
run produces, and that a record produced twice is the same bytes both times. That
holds only if the second processor's time resumes where the commit left it
(``PartitionMark``): a clock derived from the restored states runs ahead of the
records processed again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import orjson
import pytest

from segments.definitions import DEFAULT_PATH, parse_definitions
from segments.engine import Engine
from segments.gate import Gate
from segments.partition import UNCOMMITTED
from segments.processor import MemoryStore, Processor, Source
from segments.state import CustomerState, event_hash
from streams.tools.simulate import simulate

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WALL = START + 400 * 86_400_000
DEFINITIONS = parse_definitions(DEFAULT_PATH.read_text())
# 150 customers over 20 days: 8,922 events on one partition, RFM cut points from the
# 50th buyer on (event 4,386)
EVENTS = [orjson.dumps(e) for e in simulate(customers=150, days=20, seed=11, start=START)]


def processor() -> Processor:
    # without models: after a takeover they restart from a checkpoint (not tested here)
    return Processor(Engine(DEFINITIONS), Gate(), MemoryStore(), live=False, models=False)


def run(p: Processor, first: int, last: int) -> list[bytes]:
    out: list[bytes] = []
    for offset in range(first, last):
        out += [orjson.dumps(o.value) for o in p.process(EVENTS[offset],
                                                         Source("interactions", 0, offset),
                                                         wall=WALL)]
    return out


def ids(records: list[bytes]) -> Iterator[tuple[str, bytes]]:
    for raw in records:
        value = orjson.loads(raw)
        yield str(value.get("change_id") or value["trigger_id"]), raw


def take_over(commit: int, crash: int, resume: str) -> tuple[list[bytes], list[bytes]]:
    """What the first processor produced until the crash, and the second from the
    commit to the end. The changelog holds odd customers as of the crash and even
    ones as of the commit (a changelog batch half written). ``resume``: from the
    commit's ``mark``, from the ``states`` (no mark), or ``uncommitted``."""
    first = processor()
    before = run(first, 0, commit)
    mark = first.partition(0).mark()
    at_commit = copy.deepcopy(first.store.data)  # type: ignore[attr-defined]
    before += run(first, commit, crash)
    at_crash: dict[str, CustomerState] = first.store.data  # type: ignore[attr-defined]
    written = {key: state if int(key.rsplit("-", 1)[1]) % 2 else at_commit.get(key, state)
               for key, state in at_crash.items()}
    second = processor()
    second.store.data = copy.deepcopy(written)  # type: ignore[attr-defined]
    start = {"mark": mark, "states": None, "uncommitted": UNCOMMITTED}[resume]
    second.recover(0, sorted(second.store.data.items()), start)  # type: ignore[attr-defined]
    return before, run(second, commit, len(EVENTS))


@pytest.fixture(scope="module")
def uninterrupted() -> dict[str, bytes]:
    return dict(ids(run(processor(), 0, len(EVENTS))))


def day(offset: int) -> int:
    return int(orjson.loads(EVENTS[offset])["ts"]) // 86_400_000


def same_day_gap(commit: int, most: int) -> tuple[int, int]:
    """A crash up to ``most`` records after ``commit``, on the same day: an RFM refresh
    between the two would rank buyers whose restored state is ahead (README,
    "Running on a real cluster"), which only a transaction can rule out."""
    crash = commit + 1
    while crash < commit + most and day(crash) == day(commit):
        crash += 1
    return commit, crash


GAPS = [same_day_gap(5_000, 300), same_day_gap(6_500, 120), same_day_gap(8_100, 400)]


@pytest.mark.parametrize(("commit", "crash"), GAPS)
def test_a_takeover_from_the_committed_mark_repeats_identically_and_loses_nothing(
        uninterrupted: dict[str, bytes], commit: int, crash: int) -> None:
    assert crash - commit > 20
    before, after = take_over(commit, crash, "mark")
    got: dict[str, bytes] = {}
    for key, raw in [*ids(before), *ids(after)]:
        assert got.setdefault(key, raw) == raw, key
    assert got == uninterrupted
    assert len(before) + len(after) > len(got)  # something was produced twice


def test_records_whose_event_ids_left_the_dedupe_window_are_still_recognised(
        uninterrupted: dict[str, bytes]) -> None:
    """Five days between commit and crash (a replay passes them in a second): the
    restored states' ``seen`` keeps a day of event ids, so the records processed
    again are told by ``applied_offset``. Before the 50th buyer: no RFM refresh ranks
    anyone in between (see :func:`same_day_gap`)."""
    commit, crash = 1_000, 3_500
    assert day(crash) - day(commit) >= 5
    forgotten = 0
    first = processor()
    run(first, 0, crash)
    for offset in range(commit, crash):
        event = orjson.loads(EVENTS[offset])
        state = first.store.get(event["customer_id"])
        forgotten += state is not None and event_hash(event["event_id"]) not in state.seen
    assert forgotten > 100  # the case this test is about
    before, after = take_over(commit, crash, "mark")
    got: dict[str, bytes] = {}
    for key, raw in [*ids(before), *ids(after)]:
        assert got.setdefault(key, raw) == raw, key
    assert got == uninterrupted


def test_the_clock_taken_from_the_restored_states_runs_ahead(
        uninterrupted: dict[str, bytes]) -> None:
    """Why the mark exists: the old derivation (no mark) gets these gaps wrong."""
    wrong = 0
    for commit, crash in GAPS:
        before, after = take_over(commit, crash, "states")
        got = dict(ids(before))
        wrong += sum(got.setdefault(k, raw) != raw or uninterrupted.get(k) != raw
                     for k, raw in ids(after))
    assert wrong > 0


def test_nothing_committed_starts_time_at_the_first_record(
        uninterrupted: dict[str, bytes]) -> None:
    before, after = take_over(0, 200, "uncommitted")
    got: dict[str, bytes] = {}
    for key, raw in [*ids(before), *ids(after)]:
        assert got.setdefault(key, raw) == raw, key
    assert got == uninterrupted


def test_the_rfm_cut_points_resume_from_the_mark() -> None:
    first = processor()
    run(first, 0, 6_000)
    mark = first.partition(0).mark()
    assert mark.cuts is not None, "too few buyers for RFM cut points: a bigger story"
    second = processor()
    second.recover(0, [], mark)
    assert second.partition(0).mark() == mark
