"""Timestamps: formatting agrees with the calendar for every millisecond we may meet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.timefmt import format_ts, local_time, parse_ts, zone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YEAR_1000 = int((datetime(1000, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)
YEAR_9999 = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - EPOCH).total_seconds() * 1000)


@settings(max_examples=5000, deadline=None)
@given(st.integers(YEAR_1000, YEAR_9999))
def test_format_ts_is_the_calendar_instant_and_parses_back(ms: int) -> None:
    expected = (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    assert format_ts(ms) == expected.replace("+00:00", "Z")
    assert parse_ts(format_ts(ms)) == ms


def test_a_zone_database_folder_is_an_unknown_zone_not_a_crash() -> None:
    """Found by tests/segments/test_hostile_volume.py: ``context.tz = "America"`` fits the
    schema's pattern, and ZoneInfo raised IsADirectoryError for it, out of the engine."""
    for name in ("America", "Etc", "Europe"):
        assert zone(name).key == "UTC"
        assert zone(name, "Europe/Berlin").key == "Europe/Berlin"
        assert local_time(1_795_342_500_250, name).strftime("%H:%M") == "10:15"
