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
>>> [(o.value["segment"], o.value["at"]) for o in engine.on_time(s, now=s.due + 1).outputs]
[('lapsed', '1970-04-01T00:00:00.000Z')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from segments.catalog import changed_by
from segments.definitions import Definitions, MomentDef
from segments.events import Interaction
from segments.expressions import segment_function
from segments.features import Features
from segments.models.examples import models_due
from segments.models.versions import FEATURE_MODELS
from segments.moments import (
    Candidate,
    PendingTrigger,
    TriggerPolicy,
    cancel_pending,
    pend,
    pending_due,
    take_ready,
)
from segments.records import (
    MICRO_MOMENTS,
    MICRO_MOMENTS_SUPPRESSED,
    SEGMENT_CHANGES,
    Cause,
    Output,
    micro_moment,
    segment_change,
)
from segments.rfm import RfmCuts
from segments.schedule import Schedule, time_dependent_segments, with_dependents
from segments.state import CustomerState, apply
from segments.timefmt import local_time

if TYPE_CHECKING:
    from segments.models.partition import PartitionModels

__all__ = ["Engine", "TimeStep"]

_NONE: frozenset[str] = frozenset()
_UNCHANGED_CACHE_SIZE = 1 << 14
_TIME = Cause("time")  # frozen: one for every time step


class TimeStep(NamedTuple):
    """What :meth:`Engine.on_time` did: the records, and whether the state changed
    beyond them (an open model example labelled or captured), so it needs a write."""

    outputs: list[Output]
    changed: bool


class Engine:
    """Evaluates the definitions against customer state."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self.default_tz = definitions.policies.default_tz
        self.schedule = Schedule(definitions)
        self.time_dependent = time_dependent_segments(definitions)
        self.trigger_policy = TriggerPolicy(definitions)
        # moments detected together are tried highest priority first
        self.moment_order = sorted(definitions.moments.values(),
                                   key=lambda m: (-m.priority, m.name))
        reads = set().union(*(s.when.features for s in definitions.segments.values()))
        self.reads_rfm = bool(reads & {"rfm_r", "rfm_f", "rfm_m", "rfm_segment"})
        # the models each segment's and moment's decision depends on (model_version)
        self.segment_models: dict[str, frozenset[str]] = {}
        for name, segment in definitions.segments.items():  # dependencies come first
            self.segment_models[name] = self._models_of(
                segment.when.features, segment.when.segments
                | ({segment.parent} if segment.parent else set()))
        self.moment_models: dict[str, frozenset[str]] = {}
        for moment in definitions.moments.values():
            features, segments = set(moment.when.features), set(moment.when.segments)
            for expr in (moment.score, moment.still):
                if expr is not None and not isinstance(expr, float):
                    features |= expr.features
                    segments |= expr.segments
            self.moment_models[moment.name] = self._models_of(features, segments)
        self.model_segments = frozenset(n for n, m in self.segment_models.items() if m)
        self.reads_models = bool(self.model_segments) or any(self.moment_models.values())
        # every segment in one compiled function (segments.expressions), per subset
        self._rules = [(name, s.when, s.parent) for name, s in definitions.segments.items()]
        self._names = tuple(definitions.segments)
        self._defined = frozenset(self._names)
        self._sorted = sorted((name, i) for i, name in enumerate(self._names))
        # a membership list -> the evaluator's result that changes nothing (None when
        # the list names a segment no longer defined, which leaves with a record)
        self._unchanged: dict[tuple[str, ...], tuple[bool, ...] | None] = {}
        self._evaluators: dict[frozenset[str] | None, Callable[..., tuple[bool, ...]]] = {}
        self.rfm_segments = with_dependents(definitions, {
            name for name, s in definitions.segments.items()
            if s.when.features & {"rfm_r", "rfm_f", "rfm_m", "rfm_segment"}})
        self._affected_by: dict[tuple[str, bool], frozenset[str] | None] = {}
        self._moving_by: dict[tuple[frozenset[str], frozenset[str]], frozenset[str]] = {}
        for subset in (None, self.rfm_segments):
            self._evaluator(subset)  # compiled now, not at a partition's first use
        self._detectors: dict[str, list[tuple[MomentDef, Callable[..., Any]]]] = {}

    def _models_of(self, features: Iterable[str], segments: Iterable[str]) -> frozenset[str]:
        found = {m for f in features for m in FEATURE_MODELS.get(f, ())}
        for ref in segments:
            found |= self.segment_models.get(ref, frozenset())
        return frozenset(found)

    def features(self, state: CustomerState, now: int, rfm: RfmCuts | None = None,
                 models: PartitionModels | None = None) -> Features:
        return Features(state, now, rfm=rfm, default_tz=self.default_tz, models=models)

    def on_event(self, state: CustomerState, event: Interaction, now: int,
                 rfm: RfmCuts | None = None,
                 models: PartitionModels | None = None) -> list[Output]:
        """Apply ``event`` and report what changed; ``now`` is the partition clock,
        ``rfm`` its current RFM cut points, ``models`` the partition's models (their
        delayed labels are resolved and captured here, before the rules read them)."""
        now = max(now, event.ts)
        # Only the segments the event can change need a look, when the customer's
        # memberships are current: evaluated before (not new), and no time-based flip
        # due at this very instant (earlier ones fired before the event).
        current = state.definitions is not None and (state.due is None or state.due > now)
        outputs = self.on_definitions(state, now, rfm, models) if self._outdated(state) else []
        apply(state, event)
        cause = Cause("event", event.event_id)
        features = self.features(state, now, rfm, models)
        if models is not None:
            models.on_event(state, event, features)
        only = self._affected(event.type, models is not None) if current else None
        outputs.extend(self._segment_changes(state, features, cause, at=event.ts, only=only,
                                             models=models))
        outputs.extend(self._moments(state, features, event, now, models))
        if models is not None and self.reads_models:
            models.stamp(state, features)
        state.due = self.next_due(state, now)
        return outputs

    def on_time(self, state: CustomerState, now: int, rfm: RfmCuts | None = None, *,
                live: bool = False, models: PartitionModels | None = None) -> TimeStep:
        """Fire every time-based transition due before ``now``, each at its instant.

        With ``live``, ``now`` is the wall clock too: a delayed or held trigger whose
        moment expired before it (the worker was down) is dropped. With an event
        clock a partition's clock jumps between sparse events, and each trigger fires
        at its own instant in event time. Open model examples whose horizon passed
        are labelled at their instant too; that is a scoring instant, where the
        segments reading a model feature are re-evaluated. At every step only the
        segments reading a feature that moves at its instant (a rule's threshold, a
        window's edge: Schedule.moving_at) are, with those naming or nesting in them:
        when a score-reading segment is next looked at does not depend on which other
        segments a definitions file holds, and a step that only fires a pending
        trigger evaluates no rule."""
        outputs = self.on_definitions(state, now, rfm, models) if self._outdated(state) else []
        changed = False
        while state.due is not None and state.due < now:
            due = state.due
            # The condition flips at `due`; read it just after, where strict
            # comparisons (`> 90`) already hold.
            features = self.features(state, due + 1, rfm, models)
            scored = models.on_due(state, due, features) if models is not None else _NONE
            if scored:
                changed = True
            # what moves at `due`, and the schedule's next instant after it (nothing it
            # reads changes in a time step)
            moving, scheduled = self.schedule.at_due(state, due)
            only = self._moving(moving, scored)
            if only:
                outputs.extend(self._segment_changes(state, features, _TIME, at=due,
                                                     only=only, models=models))
            outputs.extend(self._fire_pending(state, due, now if live else due, rfm, models))
            if scored and self.reads_models:
                assert models is not None
                models.stamp(state, features, scored)
            state.due = self._next_due(state, scheduled)
        return TimeStep(outputs, changed)

    def on_definitions(self, state: CustomerState, now: int, rfm: RfmCuts | None = None,
                       models: PartitionModels | None = None) -> list[Output]:
        """Re-evaluate a customer last evaluated under other definitions."""
        state.definitions = self.definitions.version
        outputs = self._segment_changes(state, self.features(state, now, rfm, models),
                                        Cause("definitions"), at=now, models=models)
        state.due = self.next_due(state, now)
        return outputs

    def on_rescore(self, state: CustomerState, at: int, rfm: RfmCuts | None,
                   models: PartitionModels | None = None) -> list[Output]:
        """Re-evaluate the segments reading an RFM score (and those naming or nesting
        in one) after the cut points moved at instant ``at`` (a time cause)."""
        if not self.reads_rfm:
            return []
        return self._segment_changes(state, self.features(state, at, rfm, models),
                                     _TIME, at=at, only=self.rfm_segments,
                                     models=models)

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

    def _affected(self, event_type: str, with_models: bool) -> frozenset[str] | None:
        """The segments an event of ``event_type`` can move (None: all of them): those
        reading a feature it may change (segments.catalog), with models those reading a
        model feature (the models learn from every customer), and every segment that
        names or nests in one of those."""
        key = (event_type, with_models)
        if key in self._affected_by:
            return self._affected_by[key]
        changed = changed_by(event_type) | (set(FEATURE_MODELS) if with_models else set())
        affected = {name for name, segment in self.definitions.segments.items()
                    if any(f in changed or (f.startswith("profile.") and "profile.*" in changed)
                           for f in segment.reads)}
        for name, segment in self.definitions.segments.items():  # dependencies first
            if segment.parent in affected or segment.when.segments & affected:
                affected.add(name)
        result = None if len(affected) == len(self.definitions.segments) else frozenset(affected)
        self._affected_by[key] = result
        return result

    def _moving(self, features: frozenset[str], scored: frozenset[str]) -> frozenset[str]:
        """The segments a time step can move: those reading a feature that moves at
        its instant (Schedule.moving_at), those reading a score of the models
        ``scored`` there (PartitionModels.on_due), and every segment that names or
        nests in one of those."""
        key = (features, scored)
        found = self._moving_by.get(key)
        if found is None:
            names = {name for name, segment in self.definitions.segments.items()
                     if segment.when.features & features}
            names |= {name for name, used in self.segment_models.items() if used & scored}
            found = self._moving_by[key] = with_dependents(self.definitions, names)
        return found

    def _outdated(self, state: CustomerState) -> bool:
        # A new customer has nothing to re-evaluate: it just adopts these definitions.
        if state.definitions is None:
            state.definitions = self.definitions.version
        return state.definitions != self.definitions.version

    def memberships(self, features: Features, *, only: frozenset[str] | None = None,
                    current: frozenset[str] = frozenset()) -> dict[str, bool]:
        """Every segment's membership; with ``only``, the others keep ``current``."""
        values = self._evaluator(only)(features.__getitem__, current)
        return dict(zip(self._names, values, strict=True))

    def _evaluator(self, only: frozenset[str] | None) -> Callable[..., tuple[bool, ...]]:
        evaluate = self._evaluators.get(only)
        if evaluate is None:
            evaluate = self._evaluators[only] = segment_function(self._rules, only)
        return evaluate

    def _segment_changes(self, state: CustomerState, features: Features, cause: Cause,
                         at: int, only: frozenset[str] | None = None,
                         models: PartitionModels | None = None) -> list[Output]:
        current = state.segments
        values = self._evaluator(only)(
            features.__getitem__, frozenset(current) if only is not None else _NONE)
        if values == self._unchanged_values(current):  # most evaluations move nothing
            return []
        after = [name for name, position in self._sorted if values[position]]
        if after == current:  # both sorted
            return []
        before = set(current)
        if before == set(after):
            return []
        state.segments = after
        outputs = []
        for name, inside in zip(self._names, values, strict=True):
            if inside == (name in before):
                continue
            reads = self.definitions.segments[name].reads
            reason = {f: _json_value(features[f]) for f in reads}
            used = self.segment_models[name]
            version = models.version_string(used) if models is not None and used else None
            value = segment_change(state.customer_id, name, inside, at, cause, reason, after,
                                   self.definitions.version, version)
            outputs.append(Output(SEGMENT_CHANGES, state.customer_id, value))
        for name in sorted(before - self._defined):  # segments no longer defined
            value = segment_change(state.customer_id, name, False, at,
                                   Cause("definitions"), {}, after, self.definitions.version)
            outputs.append(Output(SEGMENT_CHANGES, state.customer_id, value))
        return outputs

    def _unchanged_values(self, current: list[str]) -> tuple[bool, ...] | None:
        """The memberships ``current`` as the evaluator's tuple, kept per list (there
        are few distinct ones)."""
        key = tuple(current)
        try:
            return self._unchanged[key]
        except KeyError:
            if len(self._unchanged) >= _UNCHANGED_CACHE_SIZE:
                self._unchanged.clear()
            inside = set(current)
            values = (tuple(name in inside for name in self._names)
                      if inside <= self._defined else None)
            self._unchanged[key] = values
            return values

    def next_due(self, state: CustomerState, now: int) -> int | None:
        """The customer's next due instant (at or after ``now``, or a pending one that
        is already late): where a rule may flip (segments.schedule), a pending trigger
        fires (segments.moments) or an open model example reaches its horizon
        (segments.models.examples). The due index wakes the customer there."""
        return self._next_due(state, self.schedule.next_due(state, now))

    @staticmethod
    def _next_due(state: CustomerState, scheduled: int | None) -> int | None:
        """:meth:`next_due` with the schedule's instant ``scheduled`` known."""
        dues = [due for due in (scheduled, pending_due(state), models_due(state))
                if due is not None]
        return min(dues) if dues else None

    def _moments(self, state: CustomerState, features: Features, event: Interaction,
                 now: int, models: PartitionModels | None) -> list[Output]:
        outputs: list[Output] = []
        cancel_pending(state, event, self.definitions.moments)
        detectors = self._detectors.get(event.type)
        if detectors is None:  # the moments that can fire on this type, specialised
            detectors = self._detectors[event.type] = [
                (moment, when) for moment in self.moment_order
                if (when := moment.when.for_event_type(event.type)) is not None]
        if not detectors:
            return outputs
        event_view = _event_view(event)
        member = _member_of(state)
        read = features.__getitem__
        for moment, when in detectors:
            if not moment.delay_ms and now - event.ts > moment.ttl_ms:
                continue  # that moment has passed
            if not when(read, member, event_view):
                continue
            score = self._score(moment, features, member, event_view)
            items = _items(event)
            if moment.delay_ms:  # (re)start the wait; the due index fires it
                due = event.ts + moment.delay_ms
                pend(state, PendingTrigger(due, moment.name, "delay", event.event_id, score,
                                           due + moment.ttl_ms, items), replace=True)
                continue
            candidate = Candidate(moment.name, score, event.ts, event.ts + moment.ttl_ms,
                                  Cause("event", event.event_id), items)
            outputs.append(self._deliver(state, moment, candidate, models))
        return outputs

    def _score(self, moment: MomentDef, features: Features, member: Any,
               event_view: dict[str, Any] | None) -> float:
        score = moment.score
        if isinstance(score, (int, float)):
            return float(score)
        value = score.evaluate(features, segment=member, event=event_view)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def _deliver(self, state: CustomerState, moment: MomentDef,
                 candidate: Candidate, models: PartitionModels | None) -> Output:
        """Apply the policies; the trigger, or its suppressed record."""
        reason, held_until = self.trigger_policy.decide(state, moment, candidate)
        if reason is None or reason == "holdout":
            self.trigger_policy.record_sent(state, moment, candidate.at)
        elif held_until is not None:
            pend(state, PendingTrigger(held_until, moment.name, "held",
                                       candidate.cause.event_id, candidate.score,
                                       candidate.expires_at, candidate.items))
        record = micro_moment(
            state.customer_id, candidate.moment, candidate.score, candidate.at,
            candidate.expires_at - candidate.at, candidate.cause,
            self._trigger_context(state, candidate.at), candidate.items,
            list(state.segments), self.definitions.version, suppressed=reason,
            held_until=held_until, model_version=self._moment_version(moment, models))
        topic = MICRO_MOMENTS if reason is None else MICRO_MOMENTS_SUPPRESSED
        return Output(topic, state.customer_id, record)

    def _moment_version(self, moment: MomentDef, models: PartitionModels | None) -> str | None:
        used = self.moment_models.get(moment.name)
        return models.version_string(used) if models is not None and used else None

    def _fire_pending(self, state: CustomerState, instant: int, now: int,
                      rfm: RfmCuts | None, models: PartitionModels | None) -> list[Output]:
        """Delayed and held triggers due at or before ``instant``."""
        outputs = []
        for trigger in take_ready(state, instant):
            moment = self.definitions.moments.get(trigger.moment)
            if moment is None or now > trigger.expires_at:
                continue  # no longer defined, or the moment passed while we were down
            if trigger.kind == "delay" and moment.still is not None:
                features = self.features(state, trigger.due, rfm, models)
                if not moment.still.evaluate(features, segment=_member_of(state)):
                    continue
            candidate = Candidate(trigger.moment, trigger.score, trigger.due,
                                  trigger.expires_at,
                                  Cause("time", trigger.event_id, due=trigger.due),
                                  trigger.items)
            outputs.append(self._deliver(state, moment, candidate, models))
        return outputs

    def _trigger_context(self, state: CustomerState, at: int) -> dict[str, Any]:
        ctx = state.context
        local = local_time(at, ctx.get("tz"), self.default_tz)
        return {
            "device": ctx.get("device"),
            "channel": ctx.get("channel"),
            "city": ctx.get("city"),
            "country": ctx.get("country"),
            "tz": ctx.get("tz"),
            "local_time": f"{local.hour:02d}:{local.minute:02d}",  # strftime's %H:%M
        }


def _member_of(state: CustomerState) -> Any:
    current = set(state.segments)
    return current.__contains__


def _event_view(event: Interaction) -> dict[str, Any]:
    return {"type": event.type, "ts": event.ts, "properties": event.properties,
            "context": event.context}


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
