"""RFM cut points from the population: exact quintiles, re-scoring at refresh instants."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments.definitions import DefinitionsError, parse_definitions
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from segments.rfm import RfmCuts, RfmPopulation
from segments.timefmt import DAY_MS

values = st.tuples(st.integers(0, 10**6), st.integers(1, 40),
                   st.floats(0, 10_000, allow_nan=False).map(lambda v: round(v, 2)))
updates = st.lists(st.tuples(st.integers(0, 60).map(lambda n: f"c{n}"),
                             st.one_of(st.none(), values)), max_size=200)


def quintile_cuts(column: list[float]) -> tuple[float, ...]:
    """The textbook nearest-rank quintiles, straight from the definition."""
    ordered = sorted(column)
    return tuple(ordered[math.ceil(k * len(ordered) / 5) - 1] for k in (1, 2, 3, 4))


def scores(cuts: RfmCuts | None, v: tuple[int, int, float]) -> tuple[int, int, int] | None:
    return None if cuts is None else (cuts.score_r(v[0]), cuts.score_f(v[1]),
                                      cuts.score_m(v[2]))


@settings(max_examples=150, deadline=None)
@given(updates)
def test_cut_points_are_the_quintiles_of_the_current_population(ops: list) -> None:
    pop = RfmPopulation(refresh_ms=1000, min_buyers=5)
    current: dict[str, tuple[int, int, float]] = {}
    for key, v in ops:
        pop.update(key, v)
        if v is None:
            current.pop(key, None)
        else:
            current[key] = v
    pop.refresh(1000)
    assert len(pop) == len(current)
    if len(current) < 5:
        assert pop.cuts is None
        return
    assert pop.cuts is not None
    assert pop.cuts.buyers == len(current)
    columns = list(zip(*current.values(), strict=True))
    assert pop.cuts.recency == quintile_cuts(list(columns[0]))
    assert pop.cuts.frequency == quintile_cuts(list(columns[1]))
    assert pop.cuts.monetary == quintile_cuts(list(columns[2]))


@settings(max_examples=150, deadline=None)
@given(updates, updates)
def test_a_refresh_names_every_buyer_whose_score_moved(first: list, second: list) -> None:
    pop = RfmPopulation(refresh_ms=1000, min_buyers=5)
    for key, v in first:
        pop.update(key, v)
    pop.refresh(1000)
    before = pop.cuts
    for key, v in second:
        pop.update(key, v)
    changed = set(pop.refresh(2000))
    # a buyer's own update is re-scored by its event; here only the cuts moved
    for key, v in pop._values.items():
        if scores(before, v) != scores(pop.cuts, v):
            assert key in changed, (key, v, before, pop.cuts)


def test_distinct_values_fill_each_score_with_a_fifth() -> None:
    pop = RfmPopulation(refresh_ms=DAY_MS, min_buyers=5)
    buyers = [(n * 1000, n + 1, float(n)) for n in range(100)]
    for n, v in enumerate(buyers):
        pop.update(f"c{n}", v)
    pop.refresh(DAY_MS)
    for dimension in range(3):
        counts = [0] * 6
        for v in buyers:
            counts[scores(pop.cuts, v)[dimension]] += 1  # type: ignore[index]
        assert counts[1:] == [20, 20, 20, 20, 20]


def test_refresh_instants_are_fixed_boundaries_taken_once() -> None:
    pop = RfmPopulation(refresh_ms=DAY_MS, min_buyers=5)
    assert pop.refresh_due(DAY_MS) == 0  # the boundary at 0 is strictly before
    pop.refresh(0)
    assert pop.refresh_due(DAY_MS) is None  # the next boundary is not yet passed
    assert pop.refresh_due(DAY_MS + 1) == DAY_MS
    assert pop.refresh_due(5 * DAY_MS + 7) == 5 * DAY_MS  # a jump takes the latest only


RULES = """
[policies]
rfm_refresh = "1d"
rfm_min_buyers = 5
[segments.champion]
when = "rfm_segment == 'champions'"
[segments.top_spender]
when = "rfm_m == 5"
"""


def purchase(n: int, customer: str, ts: int, revenue: float) -> bytes:
    return orjson.dumps({"event_id": f"e{n}", "customer_id": customer, "type": "purchase",
                         "ts": ts, "properties": {"order_id": f"o{n}", "revenue": revenue}})


def test_scores_move_at_the_refresh_instant_with_no_event_of_that_customer() -> None:
    processor = Processor(Engine(parse_definitions(RULES)), Gate(), MemoryStore(), live=False)
    start = 1_700_000_000_000 // DAY_MS * DAY_MS
    outputs = []
    n = 0
    # day 0: ten buyers; c<i> buys i + 1 times, later and for more than c<i - 1>
    for i in range(10):
        for j in range(i + 1):
            n += 1
            raw = purchase(n, f"c{i}", start + 1000 * i + j, 10.0 * (i + 1))
            for record in processor.process(raw, Source("t", 0, n), wall=start + 10 * DAY_MS):
                outputs.append(record.value)
    assert outputs == []  # no cut points until the first refresh
    # day 1: c0's event passes midnight: the cuts appear, every buyer is scored at 00:00
    n += 1
    after = processor.process(purchase(n, "c0", start + DAY_MS + 5, 1.0), Source("t", 0, n),
                              wall=start + 10 * DAY_MS)
    at_midnight = [r.value for r in after if r.value["at"] == _iso(start + DAY_MS)]
    assert {(v["customer_id"], v["segment"]) for v in at_midnight} == {
        ("c8", "top_spender"), ("c9", "top_spender"),
        ("c8", "champion"), ("c9", "champion")}
    assert all(v["cause"] == {"kind": "time"} for v in at_midnight)
    assert processor.partition(0).population.cuts is not None
    assert processor.partition(0).population.cuts.at == start + DAY_MS


def test_bad_rfm_policies_stop_with_one_line() -> None:
    with pytest.raises(DefinitionsError, match=r"\[policies\] rfm_min_buyers: must be a whole"):
        parse_definitions("[policies]\nrfm_min_buyers = 2\n")
    with pytest.raises(DefinitionsError, match=r"\[policies\] rfm_refresh: must be at least"):
        parse_definitions("[policies]\nrfm_refresh = \"10s\"\n")


def _iso(ms: int) -> str:
    from segments.timefmt import format_ts
    return format_ts(ms)


def test_the_readme_grid_is_the_mapping_the_code_applies() -> None:
    from pathlib import Path

    from segments.rfm import rfm_segment

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| **R ")]
    assert len(rows) == 5
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        r = int(cells[0].strip("*R "))
        assert cells[1:] == [rfm_segment(r, f) for f in range(1, 6)], row
