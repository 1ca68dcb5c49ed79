"""Due instants: the schedule's earliest instant equals the brute-force minimum over
every instant at which a rule of the file could flip, and a rule does not flip
between two due instants."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.definitions import parse_definitions
from segments.features import Features
from segments.schedule import Schedule
from segments.state import CustomerState
from segments.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

DEFINITIONS = parse_definitions('''
[segments.lapsed]
when = "days_since_last_purchase > 90 or days_since_last_purchase >= 30.5"
[segments.fresh]
when = "days_since_first_purchase < 7"
[segments.quiet]
when = "days_since_last_seen > 14"
[segments.cart]
when = "minutes_since_cart_update >= 30"
[segments.polled]
when = "days_since_last_purchase * 2 > 50"
[segments.windows]
when = "purchases_30d >= 2 or revenue_365d > 100 or discount_orders_365d >= 1"
[segments.engaged]
when = "sessions_7d >= 3 or product_views_7d > 1 or email_opens_30d >= 1"
[segments.distinct]
when = "devices_30d >= 2 or distinct_features_30d >= 2"
[segments.evening]
when = "local_hour >= 18"
''')

NOW = 1_800_000_000_000


def brute_force(state: CustomerState, now: int) -> int | None:
    """Every candidate instant written out from the rules above, the minimum kept."""
    found: list[int] = []
    anchors = {"days_since_last_purchase": (state.last_purchase, DAY_MS, (30.5, 90.0)),
               "days_since_first_purchase": (state.first_purchase, DAY_MS, (7.0,)),
               "days_since_last_seen": (state.last_seen, DAY_MS, (14.0,)),
               "minutes_since_cart_update": (state.cart_updated, MINUTE_MS, (30.0,))}
    for anchor, unit, cuts in anchors.values():
        if anchor is not None:
            found += [t for c in cuts if (t := anchor + round(c * unit)) >= now]
    if state.last_purchase is not None:  # polled: a multiplication, no constant cut
        found.append(now + DAY_MS // 24)
    for window in (30 * DAY_MS, 365 * DAY_MS):
        found += [t for row in state.orders if (t := row[0] + window) >= now]
    for counter, days in (("sessions", 7), ("product_views", 7), ("email_opens", 30)):
        for hour, _ in state.counters.get(counter, []):
            if (t := (hour + 1) * HOUR_MS + days * DAY_MS) >= now:
                found.append(t)
    for seen in [*state.devices.values(), *state.features_used.values()]:
        if (t := seen + 30 * DAY_MS) >= now:
            found.append(t)
    if state.last_seen is not None:
        found.append((now // (15 * MINUTE_MS) + 1) * 15 * MINUTE_MS)
    return min(found, default=None)


instants = st.integers(NOW - 400 * DAY_MS, NOW + DAY_MS)
maybe = st.one_of(st.none(), instants)


@st.composite
def states(draw: Any) -> CustomerState:
    orders = sorted([t, 10.0, f"o{i}", draw(st.integers(0, 1))]
                    for i, t in enumerate(draw(st.lists(instants, max_size=12))))
    counters = {name: sorted([h, 1] for h in set(draw(st.lists(
                    st.integers((NOW - 40 * DAY_MS) // HOUR_MS, NOW // HOUR_MS), max_size=20))))
                for name in ("sessions", "product_views", "email_opens")}
    return CustomerState(  # a stored state has seen an event: last_seen is never null
        "c", last_seen=draw(instants), last_purchase=draw(maybe), first_purchase=draw(maybe),
        cart_updated=draw(maybe), orders=orders, counters=counters,
        devices={f"d{i}": t for i, t in enumerate(draw(st.lists(instants, max_size=4)))},
        features_used={f"f{i}": t for i, t in enumerate(draw(st.lists(instants,
                                                                      max_size=4)))})


@settings(max_examples=1500, deadline=None)
@given(states(), st.integers(NOW - 5 * DAY_MS, NOW + DAY_MS))
def test_next_due_is_the_earliest_candidate(state: CustomerState, now: int) -> None:
    assert Schedule(DEFINITIONS).next_due(state, now) == brute_force(state, now)


@settings(max_examples=300, deadline=None)
@given(states(), st.integers(NOW - 5 * DAY_MS, NOW), st.integers(0, 10**6))
def test_no_rule_flips_before_the_due_instant(state: CustomerState, now: int,
                                              step: int) -> None:
    due = Schedule(DEFINITIONS).next_due(state, now)
    later = now + step if due is None else max(now, min(now + step, due - 1))
    for segment in DEFINITIONS.segments.values():
        def holds(at: int, rule: Any = segment.when) -> bool:
            return bool(rule.evaluate(Features(state, at), segment=lambda n: False))
        assert holds(now) == holds(later), (segment.name, now, later, due)


# without the polled rule and the local clock, whose steps would come first every time
COMPUTED = parse_definitions("\n".join(
    f"[segments.{name}]\nwhen = {segment.when.text!r}"
    for name, segment in DEFINITIONS.segments.items() if name not in ("polled", "evening")))


@st.composite
def sparse_states(draw: Any) -> CustomerState:
    """A state of :func:`states` with some of its sources emptied, so that each source
    gets to be the one that comes first."""
    state = draw(states())
    if draw(st.booleans()):
        state.counters = {}
    if draw(st.booleans()):
        state.devices, state.features_used = {}, {}
    if draw(st.booleans()):
        state.cart_updated = None
    return state


@settings(max_examples=1500, deadline=None)
@given(sparse_states(), st.integers(NOW - 5 * DAY_MS, NOW + DAY_MS))
def test_only_the_rules_reading_what_moves_at_the_due_instant_can_flip_there(
        state: CustomerState, now: int) -> None:
    """The engine re-evaluates at a due instant only the rules that read a feature
    ``moving_at`` names: every other rule holds just after the instant (where the
    engine evaluates) what it held just before."""
    schedule = Schedule(COMPUTED)
    due = schedule.next_due(state, now)
    if due is None:
        return
    moving = schedule.moving_at(state, due)
    for segment in COMPUTED.segments.values():
        if segment.when.features & moving:
            continue
        def holds(at: int, rule: Any = segment.when) -> bool:
            return bool(rule.evaluate(Features(state, at), segment=lambda n: False))
        assert holds(max(now, due - 1)) == holds(due + 1), (segment.name, due, sorted(moving))


@settings(max_examples=1500, deadline=None)
@given(sparse_states(), st.integers(NOW - 5 * DAY_MS, NOW + DAY_MS), st.booleans(),
       st.booleans())
def test_at_due_is_moving_at_and_the_next_due_after(state: CustomerState, now: int,
                                                     at_a_due: bool, polled: bool) -> None:
    """The engine's time step asks ``at_due`` once for what ``moving_at`` and
    ``next_due`` just after the instant say, at a due instant or any other."""
    schedule = Schedule(DEFINITIONS if polled else COMPUTED)
    instant = schedule.next_due(state, now) if at_a_due else now
    if instant is None:
        instant = now
    assert schedule.at_due(state, instant) == (schedule.moving_at(state, instant),
                                               schedule.next_due(state, instant + 1))
