"""The definitions file: every segment and moment, loaded, checked and compiled.

A bad file stops the program with one line naming the file, the line, the entry and
the problem. The ``version`` (a digest of the file's bytes) goes into every output
record, so a consumer knows which rules produced it.

>>> d = parse_definitions('''
... [segments.buyer]
... when = "purchases_total >= 1"
... [segments.big_buyer]
... parent = "buyer"
... when = "revenue_total > 100"
... [moments.i_want_to_buy]
... when = "event.type == 'add_to_cart'"
... cooldown = "2h"
... ''')
>>> list(d.segments), d.segments["big_buyer"].reads
(['buyer', 'big_buyer'], ('purchases_total', 'revenue_total'))
>>> d.moments["i_want_to_buy"].cooldown_ms, d.moments["i_want_to_buy"].ttl_ms
(7200000, 900000)
>>> try:
...     parse_definitions('[segments.x]\\nwhen = "purchases_totl > 1"', source="d.toml")
... except DefinitionsError as exc:
...     print(exc)
d.toml:2: [segments.x] when: unknown feature 'purchases_totl' (column 1)
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from segments.expressions import Expression, ExpressionError, compile_expression

__all__ = [
    "Definitions",
    "DefinitionsError",
    "MomentDef",
    "PolicySettings",
    "SegmentDef",
    "load_default",
    "load_definitions",
    "parse_definitions",
    "parse_duration",
]

DEFAULT_PATH = Path(__file__).with_name("default_definitions.toml")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class DefinitionsError(ValueError):
    """A definitions file that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class SegmentDef:
    name: str
    description: str
    when: Expression
    parent: str | None
    reads: tuple[str, ...]


@dataclass(frozen=True)
class MomentDef:
    name: str
    description: str
    when: Expression
    score: Expression | float = 1.0
    cooldown_ms: int = 0
    ttl_ms: int = 15 * 60_000
    delay_ms: int = 0
    cancel_on: tuple[str, ...] = ()
    still: Expression | None = None  # re-checked when a delayed moment falls due
    priority: int = 0
    frequency_cap: int | None = None
    quiet_hours: tuple[str, ...] | None = None  # None: the global ones; (): none
    holdout: float | None = None


@dataclass(frozen=True)
class PolicySettings:
    holdout: float = 0.05
    frequency_cap_per_day: int = 3
    quiet_hours: tuple[str, str] | None = ("22:00", "08:00")
    default_tz: str = "UTC"
    min_interval_ms: int = 1000
    consent: str = "explicit"  # or "unless_withdrawn"
    rfm_refresh_ms: int = 86_400_000
    rfm_min_buyers: int = 50
    # online models (segments.models, docs/models.md)
    propensity_horizon_ms: int = 30 * 86_400_000
    churn_horizon_ms: int = 90 * 86_400_000
    model_warm_after: int = 400
    model_capture_gap_ms: int = 86_400_000
    model_inactive_after_ms: int = 365 * 86_400_000
    btyd_refit_ms: int = 7 * 86_400_000
    btyd_apply_after_ms: int = 3_600_000
    btyd_min_repeat_buyers: int = 30
    cluster_min_stay_ms: int = 3_600_000


@dataclass(frozen=True)
class Definitions:
    segments: Mapping[str, SegmentDef]
    moments: Mapping[str, MomentDef]
    policies: PolicySettings = field(default_factory=PolicySettings)
    settings: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""


def parse_duration(value: object) -> int:
    """Milliseconds from "500ms", "90s", "30m", "2h", "7d" or a number of seconds.

    >>> parse_duration("30m"), parse_duration(90)
    (1800000, 90000)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return round(value * 1000)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 30m, 2h, 7d)")
    return round(float(match.group(1)) * _UNITS[match.group(2)])


_SEGMENT_KEYS = {"description", "when", "parent"}
_MOMENT_KEYS = {"description", "when", "score", "cooldown", "ttl", "delay", "cancel_on",
                "still", "priority", "frequency_cap", "quiet_hours", "holdout"}
_POLICY_KEYS = {"holdout", "frequency_cap_per_day", "quiet_hours", "default_tz",
                "min_interval", "consent", "rfm_refresh", "rfm_min_buyers",
                "propensity_horizon", "churn_horizon", "model_warm_after",
                "model_capture_gap", "model_inactive_after", "btyd_refit",
                "btyd_apply_after", "btyd_min_repeat_buyers", "cluster_min_stay"}


class _Loader:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, table: str, key: str | None = None) -> int:
        header = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        start = next((i for i, line in enumerate(self.lines) if header.match(line)), None)
        if start is None:
            return 1
        if key is not None:
            pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
            for i in range(start + 1, len(self.lines)):
                if self.lines[i].lstrip().startswith("["):
                    break
                if pattern.match(self.lines[i]):
                    return i + 1
        return start + 1

    def fail(self, table: str, key: str | None, problem: str) -> DefinitionsError:
        where = f"[{table}] {key}: " if key else f"[{table}] "
        return DefinitionsError(f"{self.source}:{self.line_of(table, key)}: {where}{problem}")

    def expression(self, table: str, key: str, text: object, allow_event: bool) -> Expression:
        if not isinstance(text, str) or not text.strip():
            raise self.fail(table, key, "must be an expression in quotes")
        try:
            return compile_expression(text, allow_event=allow_event)
        except ExpressionError as exc:
            raise self.fail(table, key, str(exc)) from None

    def duration(self, table: str, key: str, entry: Mapping[str, Any], default: int) -> int:
        if key not in entry:
            return default
        try:
            return parse_duration(entry[key])
        except ValueError as exc:
            raise self.fail(table, key, str(exc)) from None

    def check_keys(self, table: str, entry: object, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(entry, dict):
            raise self.fail(table, None, "must be a table")
        for key in entry:
            if key not in allowed:
                raise self.fail(table, key, f"unknown key '{key}'; expected one of: "
                                f"{', '.join(sorted(allowed))}")
        return entry


def parse_definitions(text: str, *, source: str = "<string>") -> Definitions:
    """Compile definitions from TOML text; ``source`` names it in errors."""
    loader = _Loader(text, source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise DefinitionsError(f"{source}:{match.group(1) if match else 1}: "
                               f"TOML syntax error: {exc}") from None
    for key in doc:
        if key not in ("segments", "moments", "policies", "settings"):
            raise DefinitionsError(f"{source}:1: unknown table [{key}]; expected segments, "
                                   "moments, policies or settings")
    segments = _segments(loader, doc.get("segments", {}))
    moments = {}
    for name, entry in doc.get("moments", {}).items():
        moments[name] = _moment(loader, name, entry)
    policies = _policies(loader, doc.get("policies", {}))
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Definitions(segments, moments, policies, dict(doc.get("settings", {})), version)


def _segments(loader: _Loader, table: Mapping[str, Any]) -> dict[str, SegmentDef]:
    raw: dict[str, tuple[str, Expression, str | None]] = {}
    for name, entry in table.items():
        where = f"segments.{name}"
        if not _NAME.match(name):
            raise loader.fail(where, None, "name must be lowercase letters, digits and _")
        entry = loader.check_keys(where, entry, _SEGMENT_KEYS)
        if "when" not in entry:
            raise loader.fail(where, None, "missing 'when'")
        when = loader.expression(where, "when", entry["when"], allow_event=False)
        if when.kind not in ("bool", "any"):
            raise loader.fail(where, "when", "must be a condition (true or false), "
                              f"not a {when.kind}")
        parent = entry.get("parent")
        for ref, key in [(r, "when") for r in sorted(when.segments)] + (
                [(parent, "parent")] if parent is not None else []):
            if ref not in table:
                raise loader.fail(where, key, f"unknown segment '{ref}'")
        raw[name] = (str(entry.get("description", "")), when, parent)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name):], name])
            raise loader.fail(f"segments.{name}", "when", f"cycle: {cycle}")
        state[name] = 1
        _, when, parent = raw[name]
        for dep in sorted(when.segments | ({parent} if parent else set())):
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in raw:
        visit(name, [])
    result: dict[str, SegmentDef] = {}
    for name in order:
        description, when, parent = raw[name]
        reads = set(when.features) | (set(result[parent].reads) if parent else set())
        result[name] = SegmentDef(name, description, when, parent, tuple(sorted(reads)))
    return result


def _moment(loader: _Loader, name: str, entry: object) -> MomentDef:
    where = f"moments.{name}"
    if not _NAME.match(name):
        raise loader.fail(where, None, "name must be lowercase letters, digits and _")
    entry = loader.check_keys(where, entry, _MOMENT_KEYS)
    if "when" not in entry:
        raise loader.fail(where, None, "missing 'when'")
    when = loader.expression(where, "when", entry["when"], allow_event=True)
    score: Expression | float = 1.0
    if isinstance(entry.get("score"), (int, float)) and not isinstance(entry["score"], bool):
        score = float(entry["score"])
    elif "score" in entry:
        score = loader.expression(where, "score", entry["score"], allow_event=True)
    cancel_on = entry.get("cancel_on", [])
    if not isinstance(cancel_on, list) or not all(isinstance(c, str) for c in cancel_on):
        raise loader.fail(where, "cancel_on", "must be a list of event types")
    delay_ms = loader.duration(where, "delay", entry, 0)
    still = None
    if "still" in entry:
        if not delay_ms:
            raise loader.fail(where, "still", "only a moment with a 'delay' is re-checked")
        still = loader.expression(where, "still", entry["still"], allow_event=False)
    quiet = entry.get("quiet_hours")
    frequency_cap = entry.get("frequency_cap")
    if frequency_cap is not None and (isinstance(frequency_cap, bool)
                                      or not isinstance(frequency_cap, int)
                                      or frequency_cap < 1):
        raise loader.fail(where, "frequency_cap", "must be a whole number of at least 1")
    holdout = entry.get("holdout")
    if holdout is not None and (isinstance(holdout, bool)
                                or not isinstance(holdout, (int, float))
                                or not 0 <= holdout < 1):
        raise loader.fail(where, "holdout", "must be a share from 0 to below 1")
    priority = entry.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise loader.fail(where, "priority", "must be a whole number")
    return MomentDef(
        name=name, description=str(entry.get("description", "")), when=when, score=score,
        cooldown_ms=loader.duration(where, "cooldown", entry, 0),
        ttl_ms=loader.duration(where, "ttl", entry, 15 * 60_000),
        delay_ms=delay_ms, cancel_on=tuple(cancel_on), still=still, priority=priority,
        frequency_cap=frequency_cap,
        quiet_hours=None if quiet is None else (_quiet(loader, where, quiet) if quiet else ()),
        holdout=None if holdout is None else float(holdout),
    )


def _quiet(loader: _Loader, where: str, value: object) -> tuple[str, str]:
    clock = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, str) and clock.match(v) for v in value)):
        return value[0], value[1]
    raise loader.fail(where, "quiet_hours", 'must be ["HH:MM", "HH:MM"] (local start, end)')


def _policies(loader: _Loader, entry: object) -> PolicySettings:
    entry = loader.check_keys("policies", entry, _POLICY_KEYS)
    holdout = entry.get("holdout", 0.05)
    if not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise loader.fail("policies", "holdout", "must be a share from 0 to below 1")
    quiet = entry.get("quiet_hours", ["22:00", "08:00"])
    min_buyers = entry.get("rfm_min_buyers", 50)
    if isinstance(min_buyers, bool) or not isinstance(min_buyers, int) or min_buyers < 5:
        raise loader.fail("policies", "rfm_min_buyers", "must be a whole number of at least 5")
    refresh = loader.duration("policies", "rfm_refresh", entry, 86_400_000)
    consent = entry.get("consent", "explicit")
    if consent not in ("explicit", "unless_withdrawn"):
        raise loader.fail("policies", "consent", 'must be "explicit" or "unless_withdrawn"')
    if refresh < 60_000:
        raise loader.fail("policies", "rfm_refresh", "must be at least 1m")
    models = _model_policies(loader, entry)
    return replace(PolicySettings(
        holdout=float(holdout),
        frequency_cap_per_day=int(entry.get("frequency_cap_per_day", 3)),
        quiet_hours=_quiet(loader, "policies", quiet) if quiet else None,
        default_tz=str(entry.get("default_tz", "UTC")),
        min_interval_ms=loader.duration("policies", "min_interval", entry, 1000),
        consent=consent,
        rfm_refresh_ms=refresh,
        rfm_min_buyers=min_buyers,
    ), **models)


def _whole(loader: _Loader, entry: Mapping[str, Any], key: str, default: int,
           minimum: int) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise loader.fail("policies", key, f"must be a whole number of at least {minimum}")
    return value


def _model_policies(loader: _Loader, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The online models' policies (segments.models); durations in ms."""
    day, hour = 86_400_000, 3_600_000
    propensity = loader.duration("policies", "propensity_horizon", entry, 30 * day)
    churn = loader.duration("policies", "churn_horizon", entry, 90 * day)
    gap = loader.duration("policies", "model_capture_gap", entry, day)
    inactive = loader.duration("policies", "model_inactive_after", entry, 365 * day)
    refit = loader.duration("policies", "btyd_refit", entry, 7 * day)
    apply_after = loader.duration("policies", "btyd_apply_after", entry, hour)
    stay = loader.duration("policies", "cluster_min_stay", entry, hour)
    for key, value in (("propensity_horizon", propensity), ("churn_horizon", churn)):
        if value < hour:
            raise loader.fail("policies", key, "must be at least 1h")
    if gap > min(propensity, churn):
        raise loader.fail("policies", "model_capture_gap",
                          "must not be longer than propensity_horizon or churn_horizon")
    if inactive < day:
        raise loader.fail("policies", "model_inactive_after", "must be at least 1d")
    if refit < hour:
        raise loader.fail("policies", "btyd_refit", "must be at least 1h")
    if apply_after >= refit:
        raise loader.fail("policies", "btyd_apply_after", "must be shorter than btyd_refit")
    if stay > 30 * day:
        raise loader.fail("policies", "cluster_min_stay", "must be at most 30d")
    return {
        "propensity_horizon_ms": propensity,
        "churn_horizon_ms": churn,
        "model_warm_after": _whole(loader, entry, "model_warm_after", 400, 0),
        "model_capture_gap_ms": gap,
        "model_inactive_after_ms": inactive,
        "btyd_refit_ms": refit,
        "btyd_apply_after_ms": apply_after,
        "btyd_min_repeat_buyers": _whole(loader, entry, "btyd_min_repeat_buyers", 30, 5),
        "cluster_min_stay_ms": stay,
    }


def load_definitions(path: str | Path) -> Definitions:
    path = Path(path)
    return parse_definitions(path.read_text(encoding="utf-8"), source=str(path))


def load_default() -> Definitions:
    return load_definitions(DEFAULT_PATH)
