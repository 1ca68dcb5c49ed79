"""``segstream replay --offline --jobs N``: the same records, in the same order, as one job."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from segments.definitions import load_default
from streams.cli import main
from streams.tools.offline import replay_offline
from streams.tools.simulate import simulate

UNTIL = 1_767_225_600_000 + 40 * 86_400_000  # well after the simulated span


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobs") / "events.jsonl"
    with path.open("wb") as out:
        for n, event in enumerate(simulate(customers=60, days=20, seed=7,
                                           start=1_767_225_600_000)):
            out.write(orjson.dumps(event) + b"\n")
            if n == 500:  # a bad line: its dead letter must come out in its place
                out.write(b'{"customer_id": "sim-7-000001", "type": "purchase"}\n')
    return path


def _replay(log: Path, jobs: int, partitions: int = 3) -> tuple[bytes, dict[str, int]]:
    out = io.BytesIO()
    summary = replay_offline([log], load_default(), out, until=UNTIL,
                             partitions=partitions, jobs=jobs)
    summary.pop("seconds")
    return out.getvalue(), summary


def _without_processing_time(records: bytes) -> list[bytes]:
    lines = []
    for line in records.splitlines():
        value = orjson.loads(line)
        value.pop("at", None)  # a dead letter's processing time
        lines.append(orjson.dumps(value))
    return lines


@pytest.mark.parametrize(("jobs", "partitions"), [(2, 3), (3, 3), (4, 5)])
def test_jobs_write_what_one_process_writes(log: Path, jobs: int, partitions: int) -> None:
    one, one_summary = _replay(log, 1, partitions)
    many, many_summary = _replay(log, jobs, partitions)
    assert one.count(b"\n") > 1000 and b'"dead-letter/' in one
    assert _without_processing_time(many) == _without_processing_time(one)
    assert many_summary == one_summary


def test_more_jobs_than_partitions_is_one_job_per_partition(log: Path) -> None:
    assert (_without_processing_time(_replay(log, 8, 2)[0])
            == _without_processing_time(_replay(log, 2, 2)[0]))


def test_jobs_flag_only_offline(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(log), "--jobs", "2", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "--jobs applies only with --offline" in capsys.readouterr().err


def test_jobs_flag_through_the_cli(log: Path, tmp_path: Path) -> None:
    outputs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}.jsonl"
        assert main(["replay", "--offline", str(log), "--jobs", jobs, "--out", str(out),
                     "--until", str(UNTIL)]) == 0
        outputs.append(_without_processing_time(out.read_bytes()))
    assert outputs[0] == outputs[1] and len(outputs[0]) > 1000
