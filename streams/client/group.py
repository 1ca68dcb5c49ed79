"""One definitions version per worker group, checked before a worker joins.

Each worker evaluates the definitions file it was started with. Two files in one
group would evaluate different segments for different partitions, and a customer
whose partition moves would flap between them. So a worker names its definitions
version in its Kafka client id (:func:`client_id`), and before joining it asks the
broker who is in the group: a member running another version stops it with one line,
unless the user says a rolling change is under way (``--allow-mixed-definitions``).

>>> client_id("6e3e66432a43f5b8")
'segstream-defs-6e3e66432a43f5b8'
>>> version_of("segstream-defs-6e3e66432a43f5b8"), version_of("faust-0.15.3")
('6e3e66432a43f5b8', None)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from kafka.errors import KafkaError

from streams.client.topics import admin
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["MixedDefinitions", "check_definitions", "client_id", "version_of"]

PREFIX = "segstream-defs-"
# how long to wait for the group's coordinator (a new cluster makes it on first use)
COORDINATOR_WAIT_S = 15.0

log = logging.getLogger(__name__)


class MixedDefinitions(UserError):
    """A live member of the group runs another definitions version."""


def client_id(version: str) -> str:
    """The Kafka client id of a worker evaluating definitions ``version``."""
    return f"{PREFIX}{version}"


def version_of(client: str) -> str | None:
    """The definitions version a worker's client id names (None: not a worker's)."""
    return client[len(PREFIX):] if client.startswith(PREFIX) else None


def check_definitions(settings: Settings, version: str, path: Path | None) -> None:
    """Raise :class:`MixedDefinitions` if the group has a member on another version."""
    group = settings.app_id
    client = admin(settings)
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    try:
        while True:
            try:
                described = client.describe_groups([group]).get(group) or {}
                break
            except KafkaError as exc:
                if not exc.retriable:
                    raise UserError(f"cannot describe the worker group {group}: "
                                    f"{exc}") from None
                if time.monotonic() > deadline:
                    # a new cluster creates its group coordinator on first use: the
                    # worker waits for it anyway, and no member can be running yet
                    log.warning("the worker group %s could not be described (%s): its "
                                "definitions were not compared", group, exc)
                    return
                time.sleep(0.5)
    finally:
        client.close()
    others: Counter[str] = Counter()
    hosts: dict[str, set[str]] = {}
    for member in described.get("members") or ():
        theirs = version_of(str(member.get("client_id", "")))
        if theirs is not None and theirs != version:
            others[theirs] += 1
            hosts.setdefault(theirs, set()).add(str(member.get("client_host", "?")).strip("/"))
    if not others:
        return
    theirs, count = others.most_common(1)[0]
    where = ", ".join(sorted(hosts[theirs]))
    source = path if path is not None else "the shipped definitions"
    raise MixedDefinitions(
        f"the worker group {group} runs definitions {theirs} ({count} worker"
        f"{'s' if count > 1 else ''} on {where}), but {source} gives {version}: start "
        "every worker with the same file, or pass --allow-mixed-definitions while "
        "rolling a new one out")
