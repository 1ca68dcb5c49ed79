"""The numbers of ``segstream report``: output records (and, optionally, the events)
in, plain tables out. No plotting here: :mod:`streams.tools.report_html` draws these
tables, and the tests check them against counts of their own.

What is counted, from the records a worker or ``segstream replay --offline`` writes:

- **Time buckets.** A record falls in the UTC day of its ``at`` (the hour, when the
  whole log spans at most :data:`HOURLY_UP_TO_MS`, so a short log still shows a shape).
- **Segment sizes** at the end of each bucket: entries minus exits since the start of
  the log (as the worker's ``segstream_segment_members`` gauge counts them). For an
  offline replay, which starts from no state, they are the true sizes.
- **Entries and exits** per bucket and segment, from ``segment-change`` records
  (repeats of a ``change_id`` counted once).
- **Triggers** per bucket by moment and by outcome: ``sent`` (no ``suppressed``
  field, the ``micro-moments`` topic) or the suppression reason (``holdout``,
  ``cooldown``, ``frequency_cap``, ``quiet_hours``, ``no_consent``, ``rate_limit``; the
  ``micro-moments-suppressed`` topic), as ``/metrics`` labels them. A ``quiet_hours``
  record with ``held_until`` is a trigger held back until the quiet hours end; when it
  fires it is a record of its own (with a new ``trigger_id``), so it is counted again
  then. Repeats of a ``trigger_id`` are counted once.
- **Overlap** at the end of the log: each customer's segments are those of their last
  ``segment-change`` record; the share of A also in B is ``|A and B| / |A|``.
- **Event to trigger**: ``at`` minus the event time of the event that caused the
  trigger (``cause.event_id``, looked up in the events): 0 for a trigger on the event
  itself, the wait for a delayed moment, more for one held through quiet hours.
  Needs the events.
- **Time to act**: ``expires_at`` minus ``at``, the moment's ttl (less for a trigger
  that was held).
- **Lift** per moment: :func:`streams.tools.lift.lift_report` over the same records
  and the events (treated versus holdout, Newcombe 95 % intervals).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson

from segments.definitions import Definitions
from segments.timefmt import TimestampError, parse_ts
from streams.tools.lift import DEFAULT_WINDOW_MS, MomentLift, lift_report

__all__ = ["DURATION_BINS", "HOURLY_UP_TO_MS", "BadRecord", "Comparison", "LineSink", "Report",
           "ReportBuilder", "compare", "duration_bin", "segment_groups"]

HOURLY_UP_TO_MS = 2 * 86_400_000   # a log this short is bucketed by hour, not by day
_MINUTE = 60_000
#: the bins of the duration histograms: (label, upper bound in ms, exclusive)
DURATION_BINS: tuple[tuple[str, float], ...] = (
    ("0", 1), ("< 1 min", _MINUTE), ("1-5 min", 5 * _MINUTE), ("5-15 min", 15 * _MINUTE),
    ("15-30 min", 30 * _MINUTE), ("30-60 min", 60 * _MINUTE), ("1-2 h", 120 * _MINUTE),
    ("2-6 h", 360 * _MINUTE), ("6-12 h", 720 * _MINUTE), ("12-24 h", 1440 * _MINUTE),
    ("1-2 d", 2880 * _MINUTE), ("2-7 d", 10080 * _MINUTE), ("7 d or more", float("inf")),
)
SENT = "sent"


def duration_bin(ms: int) -> int:
    """The index in :data:`DURATION_BINS` of a duration (negative ones go in the first).

    >>> [DURATION_BINS[duration_bin(ms)][0] for ms in (0, 59_999, 60_000, 900_000)]
    ['0', '< 1 min', '1-5 min', '15-30 min']
    """
    for index, (_, upper) in enumerate(DURATION_BINS):
        if ms < upper:
            return index
    return len(DURATION_BINS) - 1  # pragma: no cover - the last bound is infinite


def segment_groups(definitions: Definitions | None, segments: Iterable[str]
                   ) -> dict[str, list[str]]:
    """Segments by group, in the definitions' order: each macrosegment (a segment that
    is the ``parent`` of others) with its microsegments, the discovered clusters
    (segments over the ``cluster`` feature), the other behavioural segments, and those
    the definitions do not know (an outputs file written with other definitions)."""
    seen = set(segments)
    defined = definitions.segments if definitions is not None else {}
    children: dict[str, list[str]] = {}
    for name, segment in defined.items():
        if segment.parent is not None:
            children.setdefault(segment.parent, []).append(name)
    groups: dict[str, list[str]] = {}
    placed: set[str] = set()
    for name in defined:
        if name in children:
            family = [name, *children[name]]
            groups[f"macrosegment {name} and its microsegments"] = family
            placed.update(family)
    clusters = [n for n, s in defined.items() if n not in placed and "cluster" in s.reads]
    placed.update(clusters)
    behavioural = [n for n in defined if n not in placed]
    placed.update(behavioural)
    if behavioural:
        groups["behavioural segments"] = behavioural
    if clusters:
        groups["discovered clusters"] = clusters
    unknown = sorted(seen - placed)
    if unknown:
        groups["not in the definitions"] = unknown
    return groups


class BadRecord(ValueError):
    """An output record of a known schema that lacks what the report reads."""


@dataclass
class Report:
    """Everything the page shows, as tables keyed by name; lists follow ``buckets``."""

    bucket: str                                   # "day" or "hour"
    buckets: list[str]                            # "2026-01-05" or "2026-01-05T13"
    segments: list[str]                           # every segment seen, grouped order
    groups: dict[str, list[str]]                  # group title -> its segments
    sizes: dict[str, list[int]]                   # at the end of each bucket
    entries: dict[str, list[int]]
    exits: dict[str, list[int]]
    moments: list[str]
    outcomes: list[str]                           # "sent" first, then the reasons
    sent_by_moment: dict[str, list[int]]          # triggers sent per bucket
    by_outcome: dict[str, list[int]]              # every trigger per bucket, by outcome
    trigger_totals: dict[tuple[str, str], int]    # (moment, outcome) over the log
    final_members: dict[str, int]                 # customers in each segment at the end
    overlap: dict[tuple[str, str], int]           # (A, B) -> customers in both at the end
    to_act: dict[str, list[int]]                  # moment -> counts per DURATION_BINS
    event_to_trigger: dict[str, list[int]] | None  # None without the events
    unmatched_causes: int                         # triggers whose event was not found
    lift: list[MomentLift] | None                 # None without the events
    lift_window_ms: int
    dead_letters: dict[str, int]                  # reason -> records
    records: int                                  # output records read (repeats too)
    customers: int                                # customers with a segment change
    definitions_versions: list[str]
    summary: dict[str, Any] = field(default_factory=dict)  # the replay's, if one ran

    def share(self, a: str, b: str) -> float | None:
        """Share of the members of ``a`` also in ``b`` at the end (None: ``a`` is empty)."""
        size = self.final_members.get(a, 0)
        return self.overlap.get((a, b), 0) / size if size else None


@dataclass(frozen=True)
class Comparison:
    """Two definitions files over the same events, side by side."""

    names: tuple[str, str]
    segments: list[str]                           # in either
    final_members: tuple[dict[str, int], dict[str, int]]
    churn: tuple[dict[str, int], dict[str, int]]  # entries + exits over the log
    only: tuple[dict[str, int], dict[str, int]]   # members at the end in one file only
    both: dict[str, int]                          # members at the end in both
    moments: list[str]
    sent: tuple[dict[str, int], dict[str, int]]   # triggers sent per moment


class _Hour:
    """One hour's counts while reading."""

    __slots__ = ("changes", "outcomes", "sent")

    def __init__(self) -> None:
        self.changes: Counter[tuple[str, str]] = Counter()   # (segment, change)
        self.sent: Counter[str] = Counter()                  # moment
        self.outcomes: Counter[str] = Counter()              # outcome


def _repeated(record_id: Any, seen: set[str]) -> bool:
    """Whether a record with this id was counted already (an at-least-once worker may
    write one twice, with the same value); notes the id."""
    if not isinstance(record_id, str):
        return False
    if record_id in seen:
        return True
    seen.add(record_id)
    return False


class ReportBuilder:
    """Reads output records one at a time (:meth:`add`), so a long replay streams
    through it; :meth:`finish` makes the :class:`Report`."""

    def __init__(self, definitions: Definitions | None = None) -> None:
        self.definitions = definitions
        self.hours: dict[str, _Hour] = {}
        self.first: int | None = None
        self.last: int | None = None
        self.seen_changes: set[str] = set()
        self.seen_triggers: set[str] = set()
        self.last_segments: dict[str, tuple[str, ...]] = {}
        self.segments_seen: set[str] = set()
        self.trigger_totals: Counter[tuple[str, str]] = Counter()
        self.to_act: dict[str, Counter[int]] = {}
        self.waiting: dict[tuple[str, str], list[tuple[str, int]]] = {}  # event -> (m, at)
        self.immediate: Counter[str] = Counter()   # moment -> triggers on their event
        self.triggers: list[dict[str, Any]] = []   # what the lift report reads
        self.dead_letters: Counter[str] = Counter()
        self.versions: set[str] = set()
        self.records = 0
        self.found: dict[str, Counter[int]] = {}    # moment -> event-to-trigger bins

    def _hour(self, at: str) -> _Hour:
        instant = parse_ts(at)
        if self.first is None or instant < self.first:
            self.first = instant
        if self.last is None or instant > self.last:
            self.last = instant
        key = datetime.fromtimestamp(instant / 1000, UTC).strftime("%Y-%m-%dT%H")
        hour = self.hours.get(key)
        if hour is None:
            hour = self.hours[key] = _Hour()
        return hour

    def add(self, record: dict[str, Any]) -> None:
        """Count one output record; records of other kinds are left out. A record of a
        known schema without the fields it needs is a :class:`BadRecord`."""
        self.records += 1
        schema = record.get("schema")
        if not isinstance(schema, str):
            return
        try:
            self._add(schema, record)
        except KeyError as exc:
            raise BadRecord(f"a {schema} record without {exc}") from None
        except (TypeError, ValueError, TimestampError) as exc:
            raise BadRecord(f"a {schema} record that cannot be read: {exc}") from None

    def _add(self, schema: str, record: dict[str, Any]) -> None:
        version = record.get("definitions_version")
        if isinstance(version, str):
            self.versions.add(version)
        if schema.startswith("segment-change/1-"):
            self._change(record)
        elif schema.startswith("micro-moment/1-"):
            self._trigger(record)
        elif schema.startswith("dead-letter/1-"):
            self.dead_letters[str(record.get("reason"))] += 1

    def _change(self, record: dict[str, Any]) -> None:
        if _repeated(record.get("change_id"), self.seen_changes):
            return
        segment, change = str(record["segment"]), str(record["change"])
        self._hour(str(record["at"])).changes[(segment, change)] += 1
        self.segments_seen.add(segment)
        self.last_segments[str(record["customer_id"])] = tuple(record.get("segments", ()))

    def _trigger(self, record: dict[str, Any]) -> None:
        if _repeated(record.get("trigger_id"), self.seen_triggers):
            return
        moment = str(record["moment"])
        outcome = str(record.get("suppressed", SENT))
        at_text = str(record["at"])
        hour = self._hour(at_text)
        hour.outcomes[outcome] += 1
        if outcome == SENT:
            hour.sent[moment] += 1
        self.trigger_totals[(moment, outcome)] += 1
        at = parse_ts(at_text)
        left = parse_ts(str(record["expires_at"])) - at
        self.to_act.setdefault(moment, Counter())[duration_bin(left)] += 1
        cause = record.get("cause") or {}
        if cause.get("kind") == "event":
            self.immediate[moment] += 1  # its `at` is its event's time
        elif isinstance(cause.get("event_id"), str):
            key = (str(record["customer_id"]), cause["event_id"])
            self.waiting.setdefault(key, []).append((moment, at))
        self.triggers.append({name: record[name] for name in (
            "schema", "trigger_id", "customer_id", "moment", "at", "suppressed",
            "held_until") if name in record})

    # ----------------------------------------------------------------- the end

    def _buckets(self) -> tuple[str, list[str], dict[str, list[str]]]:
        """The bucket kind, the buckets in order (every one from the first record's to
        the last's), and the hours of each."""
        if self.first is None or self.last is None:
            return "day", [], {}
        hourly = self.last - self.first <= HOURLY_UP_TO_MS
        step = timedelta(hours=1) if hourly else timedelta(days=1)
        start = datetime.fromtimestamp(self.first / 1000, UTC)
        start = start.replace(minute=0, second=0, microsecond=0)
        if not hourly:
            start = start.replace(hour=0)
        end = datetime.fromtimestamp(self.last / 1000, UTC)
        buckets = []
        while start <= end:
            buckets.append(start.strftime("%Y-%m-%dT%H" if hourly else "%Y-%m-%d"))
            start += step
        members: dict[str, list[str]] = {bucket: [] for bucket in buckets}
        for hour in self.hours:
            members[hour if hourly else hour[:10]].append(hour)
        return ("hour" if hourly else "day"), buckets, members

    def _event_to_trigger(self, events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass the events on, noting the time of each event a trigger waits on."""
        for event in events:
            customer, event_id = event.get("customer_id"), event.get("event_id")
            waiting = (self.waiting.get((customer, event_id))
                       if isinstance(customer, str) and isinstance(event_id, str) else None)
            if waiting:
                try:
                    ts = parse_ts(event.get("ts"))  # type: ignore[arg-type]
                except TimestampError:
                    yield event
                    continue
                for moment, at in waiting:
                    self.found.setdefault(moment, Counter())[duration_bin(at - ts)] += 1
                waiting.clear()
            yield event

    def finish(self, events: Iterable[dict[str, Any]] | None = None, *,
               window_ms: int = DEFAULT_WINDOW_MS, include_censored: bool = False,
               summary: dict[str, Any] | None = None) -> Report:
        """The report; with ``events`` (the log the outputs came from) also the lift
        and the time from event to trigger (one pass over the events)."""
        bucket, buckets, hours_of = self._buckets()
        groups = segment_groups(self.definitions, self.segments_seen)
        segments = [s for group in groups.values() for s in group if s in self.segments_seen]
        sizes = {s: [0] * len(buckets) for s in segments}
        entries = {s: [0] * len(buckets) for s in segments}
        exits = {s: [0] * len(buckets) for s in segments}
        outcomes = sorted({o for _, o in self.trigger_totals},
                          key=lambda o: (o != SENT, o))
        moments = sorted({m for m, _ in self.trigger_totals})
        sent = {m: [0] * len(buckets) for m in moments}
        by_outcome = {o: [0] * len(buckets) for o in outcomes}
        running: Counter[str] = Counter()
        for index, name in enumerate(buckets):
            for key in hours_of[name]:
                hour = self.hours[key]
                for (segment, change), n in hour.changes.items():
                    (entries if change == "entered" else exits)[segment][index] += n
                    running[segment] += n if change == "entered" else -n
                for moment, n in hour.sent.items():
                    sent[moment][index] += n
                for outcome, n in hour.outcomes.items():
                    by_outcome[outcome][index] += n
            for segment in segments:
                sizes[segment][index] = running[segment]
        final: Counter[str] = Counter()
        overlap: Counter[tuple[str, str]] = Counter()
        for members in self.last_segments.values():
            final.update(members)
            for a in members:
                for b in members:
                    overlap[(a, b)] += 1
        lift = event_to_trigger = None
        if events is not None:
            self.found = {m: Counter({0: n}) for m, n in self.immediate.items()}
            lift = lift_report(self.triggers, self._event_to_trigger(events),
                               window_ms=window_ms, include_censored=include_censored)
            event_to_trigger = {m: _bins(self.found.get(m, Counter())) for m in moments}
        unmatched = sum(len(w) for w in self.waiting.values()) if events is not None else 0
        return Report(
            bucket=bucket, buckets=buckets, segments=segments,
            groups={title: [s for s in group if s in self.segments_seen]
                    for title, group in groups.items()
                    if any(s in self.segments_seen for s in group)},
            sizes=sizes, entries=entries, exits=exits, moments=moments, outcomes=outcomes,
            sent_by_moment=sent, by_outcome=by_outcome,
            trigger_totals=dict(self.trigger_totals),
            final_members={s: final[s] for s in segments}, overlap=dict(overlap),
            to_act={m: _bins(self.to_act[m]) for m in moments},
            event_to_trigger=event_to_trigger, unmatched_causes=unmatched, lift=lift,
            lift_window_ms=window_ms, dead_letters=dict(sorted(self.dead_letters.items())),
            records=self.records, customers=len(self.last_segments),
            definitions_versions=sorted(self.versions), summary=dict(summary or {}))


def _bins(counts: Counter[int]) -> list[int]:
    return [counts.get(index, 0) for index in range(len(DURATION_BINS))]


def compare(a: Report, b: Report, names: tuple[str, str],
            members: tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]
            ) -> Comparison:
    """``a`` and ``b`` side by side; ``members`` are each one's customers' segments at
    the end (:attr:`ReportBuilder.last_segments`), for who is in a segment under one
    file and not the other."""
    segments = a.segments + [s for s in b.segments if s not in a.segments]
    moments = sorted(set(a.moments) | set(b.moments))
    only: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    both: Counter[str] = Counter()
    for customer in members[0].keys() | members[1].keys():
        first = set(members[0].get(customer, ()))
        second = set(members[1].get(customer, ()))
        only[0].update(first - second)
        only[1].update(second - first)
        both.update(first & second)

    def churn(report: Report) -> dict[str, int]:
        return {s: sum(report.entries.get(s, ())) + sum(report.exits.get(s, ()))
                for s in segments}

    def sent(report: Report) -> dict[str, int]:
        return {m: report.trigger_totals.get((m, SENT), 0) for m in moments}

    return Comparison(
        names=names, segments=segments,
        final_members=({s: a.final_members.get(s, 0) for s in segments},
                       {s: b.final_members.get(s, 0) for s in segments}),
        churn=(churn(a), churn(b)),
        only=({s: only[0][s] for s in segments}, {s: only[1][s] for s in segments}),
        both={s: both[s] for s in segments}, moments=moments, sent=(sent(a), sent(b)))


class LineSink(io.RawIOBase):
    """What :func:`streams.tools.offline.replay_offline` writes its output lines to:
    each complete line goes to ``builder`` as it is written, so a long replay is
    never held in memory (and, with ``copy``, also to a file)."""

    def __init__(self, builder: ReportBuilder, copy: IO[bytes] | None = None) -> None:
        self.builder = builder
        self.copy = copy
        self.pending = b""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        if self.copy is not None:
            self.copy.write(data)
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            if line:
                self.builder.add(orjson.loads(line))
        return len(data)

    def flush(self) -> None:
        if self.pending:
            self.builder.add(orjson.loads(self.pending))
            self.pending = b""
        if self.copy is not None:
            self.copy.flush()

