"""The engine: one customer's state, one cause, the records that follow.

Verbs: :meth:`Engine.on_event` (an applied interaction), :meth:`Engine.on_time`
(the clock passed the customer's due instant), :meth:`Engine.on_erase` (forget the
customer). Each mutates the state in place and returns the records to produce, in
the order of their causes. No I/O, no clock of its own: time comes in as arguments.

>>> from segments.definitions import parse_definitions
>>> from segments.events import Interaction
>>> from segments.state import CustomerState
>>> engine = Engine(parse_definitions('''
... [segments.buyer]
... when = "purchases_total >= 1"
... [segments.lapsed]
... when = "purchases_total >= 1 and days_since_last_purchase > 90"
... '''))
>>> s = CustomerState("c-1")
>>> buy = Interaction("e1", "c-1", "purchase", 0, {"order_id": "o1", "revenue": 10.0})
>>> [(o.value["segment"], o.value["change"]) for o in engine.on_event(s, buy, now=0)]
[('buyer', 'entered')]
>>> s.due == 90 * 86_400_000
True
>>> [(o.value["segment"], o.value["at"]) for o in engine.on_time(s, now=s.due + 1)]
[('lapsed', '1970-04-01T00:00:00.000Z')]
"""

from __future__ import annotations

from typing import Any

from segments.definitions import Definitions, MomentDef
from segments.events import Interaction
from segments.features import Features
from segments.records import (
    MICRO_MOMENTS,
    SEGMENT_CHANGES,
    Cause,
    Output,
    micro_moment,
    segment_change,
)
from segments.rfm import RfmCuts
from segments.schedule import Schedule, time_dependent_segments
from segments.state import CustomerState, apply

__all__ = ["Engine"]


class Engine:
    """Evaluates the definitions against customer state."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self.default_tz = definitions.policies.default_tz
        self.schedule = Schedule(definitions)
        self.time_dependent = time_dependent_segments(definitions)
        reads = set().union(*(s.when.features for s in definitions.segments.values()))
        self.reads_rfm = bool(reads & {"rfm_r", "rfm_f", "rfm_m", "rfm_segment"})

    def features(self, state: CustomerState, now: int, rfm: RfmCuts | None = None) -> Features:
        return Features(state, now, rfm=rfm, default_tz=self.default_tz)

    def on_event(self, state: CustomerState, event: Interaction, now: int,
                 rfm: RfmCuts | None = None) -> list[Output]:
        """Apply ``event`` and report what changed; ``now`` is the partition clock,
        ``rfm`` its current RFM cut points."""
        now = max(now, event.ts)
        outputs = self.on_definitions(state, now, rfm) if self._outdated(state) else []
        apply(state, event)
        cause = Cause("event", event.event_id)
        features = self.features(state, now, rfm)
        outputs.extend(self._segment_changes(state, features, cause, at=event.ts))
        outputs.extend(self._moments(state, features, event, now))
        state.due = self.schedule.next_due(state, now)
        return outputs

    def on_time(self, state: CustomerState, now: int,
                rfm: RfmCuts | None = None) -> list[Output]:
        """Fire every time-based transition due before ``now``, each at its instant."""
        outputs = self.on_definitions(state, now, rfm) if self._outdated(state) else []
        while state.due is not None and state.due < now:
            due = state.due
            # The condition flips at `due`; read it just after, where strict
            # comparisons (`> 90`) already hold.
            features = self.features(state, due + 1, rfm)
            outputs.extend(self._segment_changes(state, features, Cause("time"), at=due,
                                                 only=self.time_dependent))
            state.due = self.schedule.next_due(state, due + 1)
        return outputs

    def on_definitions(self, state: CustomerState, now: int,
                       rfm: RfmCuts | None = None) -> list[Output]:
        """Re-evaluate a customer last evaluated under other definitions."""
        state.definitions = self.definitions.version
        outputs = self._segment_changes(state, self.features(state, now, rfm),
                                        Cause("definitions"), at=now)
        state.due = self.schedule.next_due(state, now)
        return outputs

    def on_rescore(self, state: CustomerState, at: int, rfm: RfmCuts | None) -> list[Output]:
        """Re-evaluate after the RFM cut points moved at instant ``at`` (a time cause)."""
        if not self.reads_rfm:
            return []
        return self._segment_changes(state, self.features(state, at, rfm), Cause("time"),
                                     at=at)

    def on_erase(self, state: CustomerState, event: Interaction) -> list[Output]:
        """Leave every segment; the caller then deletes the state."""
        cause = Cause("erase", event.event_id)
        version = self.definitions.version
        outputs = []
        remaining = list(state.segments)
        for name in list(state.segments):
            remaining.remove(name)
            value = segment_change(state.customer_id, name, False, event.ts, cause, {},
                                   list(remaining), version)
            outputs.append(Output(SEGMENT_CHANGES, state.customer_id, value))
        state.segments = []
        return outputs

    def _outdated(self, state: CustomerState) -> bool:
        # A new customer has nothing to re-evaluate: it just adopts these definitions.
        if state.definitions is None:
            state.definitions = self.definitions.version
        return state.definitions != self.definitions.version

    def memberships(self, features: Features, *, only: frozenset[str] | None = None,
                    current: frozenset[str] = frozenset()) -> dict[str, bool]:
        """Every segment's membership; with ``only``, the others keep ``current``."""
        members: dict[str, bool] = {}
        for name, segment in self.definitions.segments.items():
            if only is not None and name not in only:
                members[name] = name in current
                continue
            inside = segment.parent is None or members.get(segment.parent, False)
            members[name] = inside and bool(
                segment.when.evaluate(features, segment=lambda n: members.get(n, False)))
        return members

    def _segment_changes(self, state: CustomerState, features: Features, cause: Cause,
                         at: int, only: frozenset[str] | None = None) -> list[Output]:
        members = self.memberships(features, only=only, current=frozenset(state.segments))
        before = set(state.segments)
        after = sorted(name for name, inside in members.items() if inside)
        if before == set(after):
            return []
        state.segments = after
        outputs = []
        for name, inside in members.items():
            if inside == (name in before):
                continue
            reads = self.definitions.segments[name].reads
            reason = {f: _json_value(features[f]) for f in reads}
            value = segment_change(state.customer_id, name, inside, at, cause, reason, after,
                                   self.definitions.version)
            outputs.append(Output(SEGMENT_CHANGES, state.customer_id, value))
        for name in sorted(before - members.keys()):  # segments no longer defined
            value = segment_change(state.customer_id, name, False, at,
                                   Cause("definitions"), {}, after, self.definitions.version)
            outputs.append(Output(SEGMENT_CHANGES, state.customer_id, value))
        return outputs

    def _moments(self, state: CustomerState, features: Features, event: Interaction,
                 now: int) -> list[Output]:
        outputs = []
        event_view = _event_view(event)
        for name, moment in self.definitions.moments.items():
            if moment.delay_ms:
                continue  # delayed moments fire from the due index (micro-moments issue)
            if now - event.ts > moment.ttl_ms:
                continue  # that moment has passed
            if not moment.when.evaluate(features, segment=_member_of(state), event=event_view):
                continue
            memory = state.moments.setdefault(name, {})
            last = memory.get("last")
            if last is not None and event.ts - last < moment.cooldown_ms:
                continue
            memory["last"] = event.ts
            outputs.append(self._trigger(state, features, event, event_view, name, moment))
        return outputs

    def _trigger(self, state: CustomerState, features: Features, event: Interaction,
                 event_view: dict[str, Any], name: str, moment: MomentDef) -> Output:
        score = moment.score
        if not isinstance(score, (int, float)):
            value = score.evaluate(features, segment=_member_of(state), event=event_view)
            score = float(value) if isinstance(value, (int, float)) else 0.0
        record = micro_moment(
            state.customer_id, name, float(score), event.ts, moment.ttl_ms,
            Cause("event", event.event_id), _trigger_context(state, features),
            _items(event), list(state.segments), self.definitions.version)
        return Output(MICRO_MOMENTS, state.customer_id, record)


def _member_of(state: CustomerState) -> Any:
    current = set(state.segments)
    return current.__contains__


def _event_view(event: Interaction) -> dict[str, Any]:
    return {"type": event.type, "ts": event.ts, "properties": event.properties,
            "context": event.context}


def _trigger_context(state: CustomerState, features: Features) -> dict[str, Any]:
    ctx = state.context
    return {
        "device": ctx.get("device"),
        "channel": ctx.get("channel"),
        "city": ctx.get("city"),
        "country": ctx.get("country"),
        "tz": ctx.get("tz"),
        "local_time": features.local().strftime("%H:%M"),
    }


def _items(event: Interaction) -> list[dict[str, Any]]:
    props = event.properties
    if "items" in props:
        return [{"product_id": i.get("product_id"), "category": i.get("category")}
                for i in props["items"][:50]]
    if "product_id" in props or "category" in props:
        return [{"product_id": props.get("product_id"), "category": props.get("category")}]
    return []


def _json_value(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value
