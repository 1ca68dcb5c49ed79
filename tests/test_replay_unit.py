"""``segstream replay`` (broker mode) without a broker: parsing, merging, filters,
checkpoints and pacing, with a stand-in producer where a run is needed."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import streams.client.replay as replay
from streams.cli.common import parse_timestamp
from streams.cli.replay import add_replay_arguments, options_from_args, parse_speed
from streams.client.pacing import TokenBucket, schedule
from streams.client.replay import ReplayOptions, replay_to_kafka
from streams.client.replay_checkpoint import read_checkpoint, write_checkpoint
from streams.errors import UserError
from streams.tools.eventlog import merged_records
from streams.tools.progress import uncompressed_size

T0 = 1_795_000_000_000


def line(n: int, customer: str, ts: int | str, **extra: Any) -> bytes:
    return orjson.dumps({"event_id": f"e-{n}", "customer_id": customer, "type": "page_view",
                         "ts": ts, **extra})


def write(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(value + b"\n" for value in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


# ---------------------------------------------------------------- a stand-in producer

class FakeFuture:
    exception: Exception | None = None

    def failed(self) -> bool:
        return self.exception is not None


class FakeProducer:
    """What replay_to_kafka uses of KafkaProducer, recording what is sent."""

    def __init__(self, partitions: int = 3) -> None:
        self.sent: list[tuple[bytes | None, bytes, int | None]] = []
        self.partitions = partitions
        self.config = {"max_request_size": 1 << 20, "compression_type": None}
        self.flushes = 0
        self.closed = False

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             partition: int | None = None) -> FakeFuture:
        assert isinstance(value, bytes)
        self.sent.append((key, value, partition))
        return FakeFuture()

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(replay, "_connect", lambda bootstrap, topic: (fake, fake.partitions))
    return fake


def run(paths: list[Path], producer: FakeProducer, **options: Any) -> replay.ReplaySummary:
    return replay_to_kafka(paths, "unused:9092", "interactions", ReplayOptions(**options),
                           out=io.StringIO())


# ---------------------------------------------------------------- parse_speed & flags

@pytest.mark.parametrize(("text", "speed"), [
    ("max", None), ("MAX", None), ("1x", 1.0), ("60x", 60.0), ("60", 60.0),
    ("0.5x", 0.5), (" 2X ", 2.0)])
def test_parse_speed(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0x", "-1x", "x", "", "inf", "nan", "1xx"])
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_speed(text)
    assert "\n" not in str(info.value) and "speed" in str(info.value)


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-11-22T10:15:00.250Z") == 1_795_342_500_250
    assert parse_timestamp("1795342500250") == 1_795_342_500_250
    with pytest.raises(argparse.ArgumentTypeError):
        parse_timestamp("yesterday")


def test_arguments_next_to_existing_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--until", type=int)        # as the replay command's parser has them
    parser.add_argument("--progress", action="store_true")
    add_replay_arguments(parser)
    args = parser.parse_args(["--speed", "60x", "--rate", "500", "--from", "1000",
                              "--until", "2000", "--key", "c-1", "--skip", "5",
                              "--checkpoint", str(tmp_path / "cp.json"), "--progress"])
    assert options_from_args(args) == ReplayOptions(
        speed=60.0, rate=500.0, start=1000, until=2000, key="c-1", skip=5,
        checkpoint=tmp_path / "cp.json", progress=True)
    defaults = options_from_args(parser.parse_args(["--no-progress"]))
    assert defaults == ReplayOptions()
    with pytest.raises(SystemExit):
        parser.parse_args(["--speed", "warp"])


# ---------------------------------------------------------------- merging

def test_merges_files_in_time_order_gzip_too(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [line(1, "c-1", T0 + 1), line(3, "c-2", T0 + 3),
                                     line(5, "c-1", "2026-11-22T10:15:00.250Z")])
    b = write(tmp_path / "b.jsonl.gz", [line(2, "c-3", T0 + 2), line(4, "c-3", T0 + 3),
                                        line(6, "c-2", T0 + 4)])
    records = list(merged_records([a, b]))
    assert [orjson.loads(r.value)["event_id"] for r in records] == [
        "e-1", "e-2", "e-3", "e-4", "e-6", "e-5"]  # on equal times the earlier file first
    assert [r.ts for r in records] == [T0 + 1, T0 + 2, T0 + 3, T0 + 3, T0 + 4,
                                       1_795_342_500_250]
    assert records[1].key == b"c-3" and records[1].file == b and records[1].line == 1
    raw_a = a.read_bytes().splitlines()
    assert [r.value for r in records if r.file == a] == raw_a  # bytes unchanged


def test_unparsable_line_keeps_its_place(tmp_path: Path) -> None:
    odd = b'{"customer_id": "c-9", "ts": "not a time"}'
    a = write(tmp_path / "a.jsonl", [b"{not json", line(1, "c-1", T0 + 10), b"[1, 2]", odd,
                                     line(2, "c-1", T0 + 30)])
    b = write(tmp_path / "b.jsonl", [line(3, "c-2", T0 + 5), line(4, "c-2", T0 + 20)])
    records = list(merged_records([a, b]))
    assert [r.value for r in records] == [
        b"{not json", line(3, "c-2", T0 + 5), line(1, "c-1", T0 + 10), b"[1, 2]", odd,
        line(4, "c-2", T0 + 20), line(2, "c-1", T0 + 30)]
    bad = [r for r in records if not r.parsed]
    assert [(r.ts, r.key, r.line) for r in bad] == [(None, None, 1), (T0 + 10, None, 3),
                                                    (T0 + 10, None, 4)]


def test_line_without_customer_id_has_no_key(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [orjson.dumps({"ts": T0, "customer_id": 42})])
    (record,) = merged_records([a])
    assert record.parsed and record.key is None and record.ts == T0


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(UserError, match=r"nope\.jsonl: no such file$"):
        merged_records([missing])


def test_corrupt_gzip_is_a_user_error(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl.gz", [line(i, "c-1", T0 + i) for i in range(100)])
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(UserError, match=r"a\.jsonl\.gz: "):
        list(merged_records([path]))


# ---------------------------------------------------------------- a run, filters, skip

@pytest.fixture
def two_files(tmp_path: Path) -> list[Path]:
    a = write(tmp_path / "a.jsonl", [line(i, f"c-{i % 3}", T0 + 10 * i) for i in range(0, 20, 2)])
    b = write(tmp_path / "b.jsonl.gz",
              [line(i, f"c-{i % 3}", T0 + 10 * i) for i in range(1, 20, 2)] + [b"oops"])
    return [a, b]


def ids(producer: FakeProducer) -> list[int]:
    return [int(orjson.loads(v)["event_id"][2:]) if v != b"oops" else -1
            for _, v, _ in producer.sent]


def test_run_produces_every_line_keyed_and_partitioned(two_files: list[Path],
                                                       producer: FakeProducer) -> None:
    summary = run(two_files, producer)
    assert ids(producer) == [*range(20), -1]
    assert (summary.produced, summary.skipped_filtered, summary.unparsable) == (21, 0, 1)
    from kafka.partitioner.default import murmur2
    for key, _, partition in producer.sent:
        if key is None:
            assert partition is None
        else:
            assert partition == (murmur2(key) & 0x7FFFFFFF) % 3
    assert producer.closed and producer.flushes >= 1
    assert "replayed 21 events" in summary.summary()


def test_from_until_key_skip(two_files: list[Path], producer: FakeProducer) -> None:
    summary = run(two_files, producer, start=T0 + 50, until=T0 + 150)
    assert ids(producer) == list(range(5, 15))
    assert summary.skipped_filtered == 5
    producer.sent.clear()
    run(two_files, producer, key="c-1")
    assert ids(producer) == [1, 4, 7, 10, 13, 16, 19]
    producer.sent.clear()
    summary = run(two_files, producer, skip=17)
    assert ids(producer) == [17, 18, 19, -1] and summary.skipped_filtered == 17


def test_checkpoint_resume(two_files: list[Path], producer: FakeProducer,
                           tmp_path: Path) -> None:
    checkpoint = tmp_path / "replay.json"
    run(two_files, producer, until=T0 + 70, checkpoint=checkpoint)
    assert ids(producer) == list(range(7))
    document = json.loads(checkpoint.read_text())
    assert document["position"] == 7 and document["topic"] == "interactions"
    assert read_checkpoint(checkpoint, two_files) == 7
    run(two_files, producer, checkpoint=checkpoint)
    assert ids(producer) == [*range(20), -1]  # the rest, nothing twice
    assert read_checkpoint(checkpoint, two_files) == 21
    run(two_files, producer, checkpoint=checkpoint)  # all done: nothing more
    assert len(producer.sent) == 21


def test_checkpoint_file_errors(two_files: list[Path], tmp_path: Path) -> None:
    checkpoint = tmp_path / "cp.json"
    assert read_checkpoint(checkpoint, two_files) == 0
    assert read_checkpoint(None, two_files) == 0
    write_checkpoint(checkpoint, two_files, 12, "t")
    assert read_checkpoint(checkpoint, two_files) == 12
    with pytest.raises(UserError, match="checkpoint of other files"):
        read_checkpoint(checkpoint, two_files[:1])
    checkpoint.write_text("{broken")
    with pytest.raises(UserError, match="not a replay checkpoint"):
        read_checkpoint(checkpoint, two_files)
    assert not list(tmp_path.glob(".*.tmp"))


def test_progress_line(two_files: list[Path], producer: FakeProducer) -> None:
    out = io.StringIO()
    replay_to_kafka(two_files, "unused:9092", "t", ReplayOptions(progress=True), out=out)
    text = out.getvalue()
    assert text.startswith("\r21 events") and text.endswith("\n") and "MB (" in text


def test_gzip_size_for_progress(two_files: list[Path]) -> None:
    assert uncompressed_size(two_files[1]) == len(gzip.decompress(
        two_files[1].read_bytes()))


# ---------------------------------------------------------------- pacing arithmetic

def test_schedule() -> None:
    assert schedule(T0, T0, 100.0, 1.0) == 100.0
    assert schedule(T0 + 1500, T0, 100.0, 1.0) == 101.5
    assert schedule(T0 + 60_000, T0, 100.0, 60.0) == 101.0
    assert schedule(T0 + 1000, T0, 100.0, 0.5) == 102.0
    assert schedule(T0 - 1000, T0, 100.0, 1.0) == 99.0  # late: sent at once
    # absolute from the start: event 10^6 is exactly where it belongs, no drift
    assert schedule(T0 + 10**9, T0, 0.0, 1000.0) == 1000.0


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10.0, now=0.0, burst=2.0)
    assert bucket.delay(0.0) == 0.0 and bucket.delay(0.0) == 0.0  # the burst
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.delay(0.05) == pytest.approx(0.05)
    assert bucket.delay(0.1) == 0.0
    assert bucket.delay(10.0) == 0.0 and bucket.delay(10.0) == 0.0  # refilled to 2 only
    assert bucket.delay(10.0) > 0


def test_paced_run_takes_event_time_over_speed(tmp_path: Path,
                                               producer: FakeProducer) -> None:
    path = write(tmp_path / "a.jsonl", [line(i, "c-1", T0 + 100 * i) for i in range(6)])
    started = time.monotonic()
    run([path], producer, speed=2.0)  # 500 ms of event time at 2x: 250 ms
    assert 0.24 <= time.monotonic() - started < 5
    started = time.monotonic()
    run([path], producer, rate=20.0)  # burst of 1, then 5 more at 20/s: 250 ms
    assert 0.2 <= time.monotonic() - started < 5
    assert len(producer.sent) == 12


def test_interrupt_records_what_was_sent(two_files: list[Path], producer: FakeProducer,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    checkpoint = tmp_path / "cp.json"
    send = producer.send

    def interrupted(topic: str, value: bytes, key: bytes | None = None,
                    partition: int | None = None) -> FakeFuture:
        if len(producer.sent) == 9:
            raise KeyboardInterrupt
        return send(topic, value, key, partition)

    monkeypatch.setattr(producer, "send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(two_files, producer, checkpoint=checkpoint)
    assert read_checkpoint(checkpoint, two_files) == 9
    monkeypatch.setattr(producer, "send", send)
    run(two_files, producer, checkpoint=checkpoint)
    assert ids(producer) == [*range(20), -1]


def test_failed_delivery_is_one_line_and_not_checkpointed(
        two_files: list[Path], producer: FakeProducer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka.errors import NotLeaderForPartitionError

    checkpoint = tmp_path / "cp.json"
    write_checkpoint(checkpoint, two_files, 3, "interactions")
    failing = FakeFuture()
    failing.exception = NotLeaderForPartitionError("partition moved")
    monkeypatch.setattr(producer, "send", lambda *a, **k: failing)
    with pytest.raises(UserError, match="cannot produce to interactions at unused:9092: "
                       "NotLeaderForPartitionError") as info:
        run(two_files, producer, checkpoint=checkpoint)
    assert "\n" not in str(info.value)
    assert read_checkpoint(checkpoint, two_files) == 3
