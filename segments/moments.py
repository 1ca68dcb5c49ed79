"""Micro-moment policies: whether a detected moment reaches the customer, and when.

A detected moment is a :class:`Candidate`. :class:`TriggerPolicy` applies the checks in
this order, and the first that fails names the suppression reason:

1. ``no_consent``: no marketing consent (by default consent must be given explicitly;
   ``consent = "unless_withdrawn"`` accepts customers who never said);
2. ``cooldown``: this moment reached the customer less than its ``cooldown`` ago;
3. ``frequency_cap``: the customer already received the day's cap of triggers
   (calendar day in the customer's time zone, else ``default_tz``), overall or for
   this moment;
4. ``quiet_hours``: local time is inside the quiet hours; the trigger is held until
   they end if that is still within its ``ttl`` (a suppressed record with
   ``held_until`` is written, and the trigger is checked again then), otherwise
   dropped;
5. ``rate_limit``: another trigger reached the customer less than ``min_interval``
   (1 s) ago. Moments detected together are tried by ``priority``, highest first;
6. ``holdout``: the customer is in the control group, a deterministic hash bucket of
   the customer id (the same customers for every moment, run and restart).

The holdout comes last on purpose: a control customer is suppressed exactly when a
treated customer would have received the trigger, and counts as having received it
for cooldowns and caps. So the control group's exposures are comparable with the
treated group's, which is what makes the lift report (``segstream lift``) unbiased.

Every suppressed trigger is written to ``micro-moments-suppressed``: nothing vanishes.

>>> holdout_bucket("c-42") == holdout_bucket("c-42") and 0 <= holdout_bucket("c-42") < 1
True
>>> quiet_until(hour_ms(23), ("22:00", "08:00"), "UTC") == hour_ms(24 + 8)
True
>>> quiet_until(hour_ms(12), ("22:00", "08:00"), "UTC") is None
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from segments.definitions import Definitions, MomentDef
from segments.events import Interaction
from segments.records import Cause
from segments.state import CustomerState
from segments.timefmt import local_time

__all__ = ["Candidate", "PendingTrigger", "TriggerPolicy", "cancel_pending", "holdout_bucket",
           "hour_ms", "pend", "pending_due", "quiet_until", "take_ready"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A detected moment on its way to the policies."""

    moment: str
    score: float
    at: int                   # when it would reach the customer
    expires_at: int           # the moment has passed after this
    cause: Cause
    items: list[dict[str, Any]]


class PendingTrigger(NamedTuple):
    """A trigger waiting in ``state.moments["pending"]`` for its instant: a delayed
    moment (``kind`` "delay", e.g. cart abandonment) or one held over quiet hours
    ("held"). The due index wakes the customer at ``due``."""

    due: int
    moment: str
    kind: str                   # "delay" or "held"
    event_id: str | None        # the event that started it
    score: float
    expires_at: int
    items: list[dict[str, Any]]


def _pending(state: CustomerState) -> list[PendingTrigger]:
    pending: list[PendingTrigger] = state.moments.get("pending") or []
    return pending


def pending_due(state: CustomerState) -> int | None:
    """The earliest instant a pending trigger of the customer falls due."""
    pending = _pending(state)
    return min(t.due for t in pending) if pending else None


def pend(state: CustomerState, trigger: PendingTrigger, *, replace: bool = False) -> None:
    """Add a pending trigger; with ``replace``, the same moment's same kind of wait is
    restarted (a new matching event restarts a delay)."""
    pending = state.moments.setdefault("pending", [])
    if replace:
        pending[:] = [t for t in pending
                      if not (t.moment == trigger.moment and t.kind == trigger.kind)]
    pending.append(trigger)


def cancel_pending(state: CustomerState, event: Interaction,
                   moments: Mapping[str, Any]) -> None:
    """Drop the pending triggers ``event`` cancels (its type is in the moment's
    ``cancel_on``), if it came at or after the event that started them."""
    pending = _pending(state)
    if not pending:
        return
    kept = []
    for trigger in pending:
        moment = moments.get(trigger.moment)
        if moment is not None and event.type in moment.cancel_on:
            started = trigger.due - moment.delay_ms if trigger.kind == "delay" \
                else trigger.expires_at - moment.ttl_ms
            if event.ts >= started:
                continue
        kept.append(trigger)
    state.moments["pending"] = kept


def take_ready(state: CustomerState, instant: int) -> list[PendingTrigger]:
    """Remove and return the triggers due at or before ``instant``, in order of due
    instant, then moment name."""
    pending = _pending(state)
    if not pending:
        return []
    ready = sorted((t for t in pending if t.due <= instant), key=lambda t: (t.due, t.moment))
    if ready:
        state.moments["pending"] = [t for t in pending if t.due > instant]
    return ready


def holdout_bucket(customer_id: str, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by the customer id (and ``salt``)."""
    digest = hashlib.blake2b(f"{salt}\x1f{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def hour_ms(hours: int) -> int:
    return hours * 3_600_000


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_until(at: int, quiet: tuple[str, ...], tz: str | None,
                default_tz: str = "UTC") -> int | None:
    """When the quiet hours containing ``at`` end (epoch ms), or None if ``at`` is
    outside them. Hours are local wall-clock times in ``tz``; they may wrap midnight."""
    start, end = _minutes(quiet[0]), _minutes(quiet[1])
    if start == end:
        return None
    local = local_time(at, tz, default_tz)
    now = local.hour * 60 + local.minute
    inside = start <= now < end if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    ends = datetime(day.year, day.month, day.day, end // 60, end % 60, tzinfo=local.tzinfo)
    return int(ends.timestamp() * 1000)


class TriggerPolicy:
    """Decides whether a detected moment reaches the customer: the checks of one
    definitions file, in the order above; their memory lives in ``state.moments``."""

    def __init__(self, definitions: Definitions) -> None:
        self.policies = definitions.policies
        self.moments = definitions.moments

    def decide(self, state: CustomerState, moment: MomentDef,
               candidate: Candidate) -> tuple[str | None, int | None]:
        """(suppression reason or None, held-until instant for quiet hours)."""
        policies, at = self.policies, candidate.at
        if state.consent_marketing is not True and not (
                policies.consent == "unless_withdrawn" and state.consent_marketing is None):
            return "no_consent", None
        memory = state.moments
        last = memory.get("last", {}).get(moment.name)
        if last is not None and abs(at - last) < moment.cooldown_ms:
            return "cooldown", None
        tz = state.context.get("tz")
        day = self._local_day(state, at)
        counts = memory.get("day")
        if counts is not None and counts[0] == day:
            if counts[1] >= policies.frequency_cap_per_day:
                return "frequency_cap", None
            if moment.frequency_cap is not None and \
                    counts[2].get(moment.name, 0) >= moment.frequency_cap:
                return "frequency_cap", None
        quiet = policies.quiet_hours if moment.quiet_hours is None else moment.quiet_hours
        if quiet:
            ends = quiet_until(at, quiet, tz, policies.default_tz)
            if ends is not None:
                return "quiet_hours", ends if ends <= candidate.expires_at else None
        sent = memory.get("sent")
        if sent is not None and abs(at - sent) < policies.min_interval_ms:
            return "rate_limit", None
        if self.held_out(state.customer_id, moment):
            return "holdout", None
        return None, None

    def held_out(self, customer_id: str, moment: MomentDef) -> bool:
        if moment.holdout is not None:  # a moment's own control group
            return holdout_bucket(customer_id, moment.name) < moment.holdout
        return holdout_bucket(customer_id) < self.policies.holdout

    def _local_day(self, state: CustomerState, at: int) -> str:
        """The customer's calendar day at ``at``: what frequency caps count."""
        tz = state.context.get("tz")
        return local_time(at, tz, self.policies.default_tz).date().isoformat()

    def record_sent(self, state: CustomerState, moment: MomentDef, at: int) -> None:
        """Remember a trigger that reached the customer, or would have (holdout)."""
        memory = state.moments
        memory.setdefault("last", {})[moment.name] = at
        memory["sent"] = at
        day = self._local_day(state, at)
        counts = memory.get("day")
        if counts is None or counts[0] != day:
            counts = memory["day"] = [day, 0, {}]
        counts[1] += 1
        counts[2][moment.name] = counts[2].get(moment.name, 0) + 1
