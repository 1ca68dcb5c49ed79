"""Event-time parsing and formatting.

Everything inside segstream counts time as integer epoch milliseconds (UTC): cheap to
compare, exact, and identical on every machine. Text appears only at the edges.

>>> parse_ts("2026-11-22T10:15:00.250Z")
1795342500250
>>> parse_ts("2026-11-22T11:15:00.250+01:00")
1795342500250
>>> parse_ts(1795342500250)
1795342500250
>>> format_ts(1795342500250)
'2026-11-22T10:15:00.250Z'
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAY_MS", "HOUR_MS", "MINUTE_MS", "TimestampError", "format_ts", "local_time",
           "parse_ts", "zone"]

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


class TimestampError(ValueError):
    """A timestamp that cannot be read as an instant."""


def parse_ts(value: str | int | float) -> int:
    """Epoch milliseconds from RFC 3339 text with an offset, or from epoch ms."""
    if isinstance(value, bool):
        raise TimestampError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):  # JSON Schema counts 1.0 as an integer
        if value.is_integer():
            return int(value)
        raise TimestampError(f"not whole epoch milliseconds: {value!r}")
    if not isinstance(value, str):
        raise TimestampError(f"not a timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise TimestampError(f"timestamp without a UTC offset: {value!r}")
    # timestamp() goes through float; integer arithmetic keeps the milliseconds exact.
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_ts(ms: int) -> str:
    """RFC 3339 UTC text with milliseconds: the one shape every output uses."""
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_text(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _date_text(day: int) -> str:
    """``YYYY-MM-DDT`` of a day number: a calendar lookup once per day, not per record."""
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The time zone ``name``, else ``fallback``, else UTC: an unknown name is no error.

    A name the schema's pattern allows may still name no zone file: a folder of the
    zone database (``America``) raises ``IsADirectoryError``, a file that is no zone
    ``ValueError``; each falls back like an unknown name.

    >>> zone("America"), zone("Nowhere/Land", "Europe/Berlin")
    (zoneinfo.ZoneInfo(key='UTC'), zoneinfo.ZoneInfo(key='Europe/Berlin'))
    """
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return ZoneInfo("UTC")


def local_time(ms: int, tz: str | None, fallback: str = "UTC") -> datetime:
    """Wall-clock time of instant ``ms`` in ``tz`` (else ``fallback``).

    >>> local_time(1795342500250, "Europe/Berlin").strftime("%H:%M")
    '11:15'
    """
    return datetime.fromtimestamp(ms / 1000, zone(tz, fallback))
