"""Lift report: do micro-moment triggers make customers buy more than the holdout?

Inputs are two JSON-lines logs (gzip or not; ``segstream lift`` reads them with
:func:`streams.tools.eventlog.read_jsonl`): the worker's or ``segstream replay
--offline``'s output records, and the interaction events log the worker consumed.

**Exposures.** Every ``micro-moment/1-*`` record (other records are ignored; duplicates
of a ``trigger_id`` are counted once) is one exposure of its ``customer_id`` to its
``moment`` at its ``at`` instant:

- *treated*: the trigger was emitted (no ``suppressed`` field);
- *control*: ``"suppressed": "holdout"`` (and no ``held_until``);
- any other suppression (frequency cap, cooldown, quiet hours, consent, rate limit, or
  a delayed record with ``held_until``) is in neither group.

**Conversion.** An exposure converts when the same customer has a ``purchase`` with
``ts`` in ``(at, at + window]`` (default 24 h): a purchase at exactly ``at`` does not
count (it cannot be a response), one at exactly ``at + window`` does. Its revenue is
the sum of ``properties.revenue`` of every such purchase (gross: refunds are not
deducted). Attribution is per exposure: a purchase inside the windows of two exposures
counts for both. Purchases are counted once per ``(customer_id, event_id)``, as the
worker drops repeats; events without a readable ``ts`` or a string ``customer_id``,
and purchases without a numeric revenue, are skipped (the worker dead-letters them).

**Censoring.** An exposure whose window ends after the last event of the log
(``at + window > max ts``) is *censored*: a purchase could still come. Censored
exposures are counted per moment and left out unless ``include_censored``.

**Statistics**, per moment and over all moments (the row ``all``, always last; the
others are sorted by name): exposures ``n``, conversions ``x``, rate ``x / n``,
revenue per exposure, the difference of rates ``treated - control`` with a 95 %
confidence interval by Newcombe's hybrid score method (method 10 of Newcombe, 1998,
*Statistics in Medicine* 17:873-890), built from the two groups' Wilson score
intervals ``(l1, u1)`` and ``(l2, u2)``::

    d = p1 - p2
    low  = d - sqrt((p1 - l1)**2 + (u2 - p2)**2)
    high = d + sqrt((u1 - p1)**2 + (p2 - l2)**2)

and the relative lift ``d / p2`` when the control rate ``p2`` is above 0. The
difference and interval are ``None`` when either group is empty.

>>> low, high = newcombe_diff_ci(56, 70, 48, 80)   # Newcombe 1998, Table II (a)
>>> round(low, 4), round(high, 4)
(0.0524, 0.3339)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from segments.timefmt import TimestampError, parse_ts
from streams.errors import UserError

__all__ = [
    "GroupStats",
    "MomentLift",
    "format_table",
    "lift_report",
    "newcombe_diff_ci",
    "to_json",
    "wilson_interval",
]

DEFAULT_WINDOW_MS = 86_400_000
OVERALL = "all"
_Z95 = 1.959964


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class GroupStats:
    """One group (treated or control) of one moment."""

    exposures: int
    conversions: int
    revenue: float

    @property
    def rate(self) -> float | None:
        """Conversions per exposure; ``None`` without exposures."""
        return self.conversions / self.exposures if self.exposures else None

    @property
    def revenue_per_exposure(self) -> float | None:
        return self.revenue / self.exposures if self.exposures else None


@dataclass(frozen=True)
class MomentLift:
    """A row of the report: one moment, or ``all`` of them."""

    moment: str
    treated: GroupStats
    control: GroupStats
    diff: float | None       # treated rate - control rate
    ci_low: float | None     # 95 % Newcombe hybrid score interval of ``diff``
    ci_high: float | None
    relative: float | None   # diff / control rate, when that rate is above 0
    censored: int            # treated + control exposures whose window is not observed


# --------------------------------------------------------------------------- statistics

def wilson_interval(x: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``x / n`` (``n`` > 0)."""
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n and n > 0, not x={x}, n={n}")
    p = x / n
    z2 = z * z
    centre = 2 * n * p + z2
    spread = z * math.sqrt(z2 + 4 * n * p * (1 - p))
    denominator = 2 * (n + z2)
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def newcombe_diff_ci(x1: int, n1: int, x2: int, n2: int,
                     z: float = _Z95) -> tuple[float, float]:
    """Interval of ``x1/n1 - x2/n2`` by Newcombe's hybrid score method (method 10)."""
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return (d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


# --------------------------------------------------------------------------- the report

class _Purchases:
    """Each customer's purchases sorted by time, for range queries with bisect."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        raw: dict[str, list[tuple[int, float]]] = {}
        seen: set[tuple[str, object]] = set()
        last: int | None = None
        for event in events:
            customer = event.get("customer_id")
            ts_value = event.get("ts")
            if not isinstance(customer, str) or ts_value is None:
                continue
            try:
                ts = parse_ts(ts_value)
            except TimestampError:
                continue
            if last is None or ts > last:
                last = ts
            if event.get("type") != "purchase":
                continue
            properties = event.get("properties")
            revenue = properties.get("revenue") if isinstance(properties, dict) else None
            if isinstance(revenue, bool) or not isinstance(revenue, (int, float)):
                continue
            event_id = event.get("event_id")
            if event_id is not None:
                key = (customer, event_id if isinstance(event_id, str) else repr(event_id))
                if key in seen:
                    continue
                seen.add(key)
            raw.setdefault(customer, []).append((ts, float(revenue)))
        self.last_ts = last
        self.times: dict[str, list[int]] = {}
        self.revenues: dict[str, list[float]] = {}
        for customer, purchases in raw.items():
            purchases.sort(key=lambda item: item[0])
            self.times[customer] = [ts for ts, _ in purchases]
            self.revenues[customer] = [revenue for _, revenue in purchases]

    def between(self, customer: str, after: int, until: int) -> tuple[int, float]:
        """(purchases, revenue) of the customer with ``after < ts <= until``."""
        times = self.times.get(customer)
        if times is None:
            return 0, 0.0
        i = bisect_right(times, after)
        j = bisect_right(times, until, lo=i)
        return j - i, math.fsum(self.revenues[customer][i:j]) if j > i else 0.0


class _Tally:
    __slots__ = ("conversions", "exposures", "revenue")

    def __init__(self) -> None:
        self.exposures = 0
        self.conversions = 0
        self.revenue: list[float] = []

    def add(self, converted: bool, revenue: float) -> None:
        self.exposures += 1
        self.conversions += converted
        if revenue:
            self.revenue.append(revenue)

    def stats(self) -> GroupStats:
        return GroupStats(self.exposures, self.conversions, math.fsum(self.revenue))


def _group(record: dict[str, Any]) -> str | None:
    if "suppressed" not in record:
        return "treated"
    if record["suppressed"] == "holdout" and "held_until" not in record:
        return "control"
    return None


def _describe(record: dict[str, Any]) -> str:
    trigger_id = record.get("trigger_id")
    return f"trigger {trigger_id}" if isinstance(trigger_id, str) else "a micro-moment record"


def _row(moment: str, treated: _Tally, control: _Tally, censored: int) -> MomentLift:
    t, c = treated.stats(), control.stats()
    diff = low = high = relative = None
    if t.exposures and c.exposures:
        diff = t.conversions / t.exposures - c.conversions / c.exposures
        low, high = newcombe_diff_ci(t.conversions, t.exposures, c.conversions, c.exposures)
        if c.conversions:
            relative = diff / (c.conversions / c.exposures)
    return MomentLift(moment, t, c, diff, low, high, relative, censored)


def lift_report(outputs: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]], *,
                window_ms: int = DEFAULT_WINDOW_MS,
                include_censored: bool = False) -> list[MomentLift]:
    """Rows per moment, sorted by name, then ``all``. See the module docstring."""
    if window_ms <= 0:
        raise ValueError(f"the window must be positive, not {window_ms} ms")
    purchases = _Purchases(events)   # first: the index and the log's end
    last = purchases.last_ts
    tallies: dict[str, dict[str, _Tally]] = {}
    censored: dict[str, int] = {}
    seen: set[str] = set()
    for record in outputs:
        schema = record.get("schema")
        if not isinstance(schema, str) or not schema.startswith("micro-moment/1-"):
            continue
        group = _group(record)
        if group is None:
            continue
        trigger_id = record.get("trigger_id")
        if isinstance(trigger_id, str):
            if trigger_id in seen:
                continue
            seen.add(trigger_id)
        moment, customer = record.get("moment"), record.get("customer_id")
        if not isinstance(moment, str) or not isinstance(customer, str):
            raise UserError(f"{_describe(record)}: no moment or customer_id")
        try:
            at = parse_ts(record.get("at"))  # type: ignore[arg-type]
        except TimestampError as exc:
            raise UserError(f"{_describe(record)}: at: {exc}") from exc
        groups = tallies.setdefault(moment, {"treated": _Tally(), "control": _Tally()})
        until = at + window_ms
        if last is None or until > last:
            censored[moment] = censored.get(moment, 0) + 1
            if not include_censored:
                continue
        bought, revenue = purchases.between(customer, at, until)
        groups[group].add(bought > 0, revenue)

    rows = []
    overall = {"treated": _Tally(), "control": _Tally()}
    for moment in sorted(tallies):
        groups = tallies[moment]
        for name, tally in groups.items():
            total = overall[name]
            total.exposures += tally.exposures
            total.conversions += tally.conversions
            total.revenue.extend(tally.revenue)
        rows.append(_row(moment, groups["treated"], groups["control"], censored.get(moment, 0)))
    rows.append(_row(OVERALL, overall["treated"], overall["control"], sum(censored.values())))
    return rows


# --------------------------------------------------------------------------- output

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.2f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


_HEADER = ("moment", "T n", "T conv", "T rate", "C n", "C conv", "C rate",
           "diff pp", "95% CI pp", "relative", "T rev/exp", "C rev/exp", "censored")


def format_table(rows: list[MomentLift]) -> str:
    """An aligned text table, one line per row, with a legend."""
    cells = [list(_HEADER)]
    for row in rows:
        t, c = row.treated, row.control
        ci = ("-" if row.ci_low is None or row.ci_high is None
              else f"[{_pp(row.ci_low)}, {_pp(row.ci_high)}]")
        relative = "-" if row.relative is None else f"{100 * row.relative:+.1f}%"
        cells.append([row.moment, str(t.exposures), str(t.conversions), _pct(t.rate),
                      str(c.exposures), str(c.conversions), _pct(c.rate), _pp(row.diff), ci,
                      relative, _money(t.revenue_per_exposure),
                      _money(c.revenue_per_exposure), str(row.censored)])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                       for i, cell in enumerate(line)).rstrip() for line in cells]
    lines.append("T = treated (triggers emitted), C = control (holdout); pp = percentage "
                 "points; relative = diff / C rate")
    return "\n".join(lines)


def _group_json(group: GroupStats) -> dict[str, Any]:
    return {"exposures": group.exposures, "conversions": group.conversions,
            "rate": group.rate, "revenue": group.revenue,
            "revenue_per_exposure": group.revenue_per_exposure}


def to_json(rows: Iterable[MomentLift]) -> list[dict[str, Any]]:
    """Plain JSON-ready dicts, one per row, in the rows' order."""
    return [{"moment": row.moment, "treated": _group_json(row.treated),
             "control": _group_json(row.control), "diff": row.diff, "ci_low": row.ci_low,
             "ci_high": row.ci_high, "relative": row.relative, "censored": row.censored}
            for row in rows]
