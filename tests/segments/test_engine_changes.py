"""The engine's shortcut for evaluations that move nothing (Engine._unchanged_values)
must not swallow the exit of a segment the definitions no longer hold."""

from __future__ import annotations

from segments.definitions import parse_definitions
from segments.engine import Engine
from segments.events import Interaction
from segments.state import CustomerState

DEFINITIONS = parse_definitions('''
[segments.buyer]
when = "purchases_total >= 1"
[segments.browser]
when = "purchases_total == 0"
''')


def _view(engine: Engine, state: CustomerState, n: int) -> list[tuple[str, str, str]]:
    event = Interaction(f"e{n}", state.customer_id, "page_view", n, {})
    return [(o.value["segment"], o.value["change"], o.value["cause"]["kind"])
            for o in engine.on_event(state, event, now=n)]


def test_an_unchanged_evaluation_gives_nothing_and_a_removed_segment_still_leaves() -> None:
    engine = Engine(DEFINITIONS)
    state = CustomerState("c", purchases_total=1, definitions=DEFINITIONS.version,
                          segments=["buyer"])
    assert _view(engine, state, 1) == []
    assert _view(engine, state, 2) == []  # the kept tuple, again
    state.segments = ["buyer", "gone"]  # a segment an older file defined
    assert _view(engine, state, 3) == [("gone", "exited", "definitions")]
    assert state.segments == ["buyer"]
