"""``topics describe`` on a fresh cluster: the group coordinator's first answers are a
retriable CoordinatorNotAvailable (seen on a secured broker in CI), which must be
waited out, while a non-retriable error must not be."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import CoordinatorNotAvailableError, GroupAuthorizationFailedError

from streams.client.topics import _committed_offsets


class Coordinator:
    """Answers ``list_group_offsets`` with ``failures`` errors first, then offsets."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures, self.calls = list(failures), 0

    def list_group_offsets(self, groups: dict[str, None]) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {group: {"tp": 7} for group in groups}


def test_a_coordinator_still_coming_up_is_waited_for() -> None:
    client = Coordinator([CoordinatorNotAvailableError(), CoordinatorNotAvailableError()])
    assert _committed_offsets(client, "g", patience_s=10) == {"tp": 7}  # type: ignore[arg-type]
    assert client.calls == 3


def test_a_retriable_error_past_the_patience_is_raised() -> None:
    client = Coordinator([CoordinatorNotAvailableError()] * 100)
    with pytest.raises(CoordinatorNotAvailableError):
        _committed_offsets(client, "g", patience_s=0.6)  # type: ignore[arg-type]
    assert 2 <= client.calls <= 3


def test_a_refusal_is_not_retried() -> None:
    client = Coordinator([GroupAuthorizationFailedError()])
    with pytest.raises(GroupAuthorizationFailedError):
        _committed_offsets(client, "g")  # type: ignore[arg-type]
    assert client.calls == 1
