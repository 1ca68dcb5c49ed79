"""Shared fixtures. The integration tier talks to a real Kafka broker: `make test`
starts one (`make kafka`); if none answers, those tests fail, they never skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

DATA_DIR = Path(os.environ.get("SEGSTREAM_DATA", Path(__file__).resolve().parents[2] /
                               "shared" / "data"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.kafka)
            # under `pytest -n 2 --dist loadgroup` (make test) the broker tests run one
            # after another on one xdist worker, the unit tests beside them: a broker
            # test idles half the time waiting for records, and two at once would
            # fight over the cores their workers' timing needs
            item.add_marker(pytest.mark.xdist_group("broker"))


@pytest.fixture(scope="session")
def bootstrap() -> str:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    address = os.environ.get("SEGSTREAM_BOOTSTRAP", "127.0.0.1:9092")
    try:
        client = KafkaAdminClient(bootstrap_servers=address, request_timeout_ms=10_000)
        client.list_topics()
        client.close()
    except KafkaError as exc:
        pytest.fail(f"no Kafka broker answers at {address} ({exc!r}); start one with "
                    "`make kafka`", pytrace=False)
    return address


@pytest.fixture
def prefix() -> str:
    """A topic prefix of its own, so tests never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}-"


def _absent(message: str) -> NoReturn:
    """Real data a test reads is missing: under CI a failure, elsewhere a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def data_dir() -> Path:
    """The real event logs (shared/data); absent: skip, except under CI where it fails."""
    if not DATA_DIR.is_dir():
        _absent(f"real data not found at {DATA_DIR} (set SEGSTREAM_DATA)")
    return DATA_DIR


@pytest.fixture
def data_file(data_dir: Path) -> Callable[[str], Path]:
    """``data_file("cdnow/CDNOW_sample.txt")``: one file of :func:`data_dir`, which
    skips or fails as :func:`data_dir` does when it is absent."""
    def find(relative: str) -> Path:
        path = data_dir / relative
        if not path.is_file():
            _absent(f"real data file {path} not found (set SEGSTREAM_DATA)")
        return path

    return find
