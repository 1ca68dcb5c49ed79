"""The table views on a terminal are Rich's, fitting its width and coloured; anywhere
else (a pipe, a file) they are the plain text they always were, byte for byte."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest

from streams.client.models_view import (
    clusters_tables,
    format_clusters,
    format_models,
    models_tables,
)
from streams.client.profile import format_profile, profile_tables
from streams.client.topics import TopicInfo, format_topics, topics_table
from streams.terminal import show

ANSI = re.compile(r"\x1b\[[0-9;]*m")
WIDTH = 100


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _model(version: str, auc: float | None) -> dict[str, Any]:
    return {"version": version, "labels": 1200, "positives": 87, "roc_auc": auc,
            "log_loss": None if auc is None else 0.2345, "warm": auc is not None}


MODELS = {"partitions": {str(p): {
    "propensity": _model(f"propensity-v{p}-2026-01-05T00:00:00Z", 0.8123),
    "churn": _model(f"churn-v{p}", None),
    "btyd": {"version": f"btyd-v{p}", "buyers": 310,
             "bg_nbd": {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43},
             "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44}}} for p in range(3)}}
CLUSTERS = {"partitions": {str(p): [  # partition 0 not fitted yet; 1 found 2 of 3
    {"cluster": c, "archetype": ["bargain hunter", "loyal regular", "lapsed"][c],
     "size": 10 + c + p if c < 2 or p == 0 else 0,
     "description": "buys often, spends little, waits for discounts; " * 2,
     "top_categories": [["shoes", 4 + p], ["hats", 2]],
     "centroid": {"recency_days": 3.5, "frequency": 7.0, "monetary": 12.25 * (c + 1)},
     "populated": c < 2 or p == 0,
     "like_archetype": (c, p) != (1, 1),  # partition 1's loyal centre looks lapsed
     "nearest_archetype": "lapsed" if (c, p) == (1, 1) else "bargain hunter",
     "fit": {"k": 2, "silhouette": 0.6234, "seen": 3200} if p else None}
    for c in range(3)] for p in range(2)}}
PROFILE = {"customer_id": "c/1 é", "as_of": "2026-01-05T10:00:00.000Z", "partition": 2,
           "segments": ["first_time_buyer", "cart_abandoner"],
           "consent": {"marketing": True, "personalization": None},
           "cart": [{"product_id": "p-9", "quantity": 2, "price": 10.0, "category": "shoes"}],
           "pending_triggers": [{"moment": "cart_abandoned", "kind": "timer",
                                 "due": "2026-01-05T11:00:00.000Z"}],
           "next_change_due": "2026-01-12T10:00:00.000Z",
           "features": {"purchases_total": 1, "revenue_total": 42.5, "cart_items": 2,
                        "sessions_30d": 0, "last_category": "shoes"}}
TOPICS = [TopicInfo("interactions", True, 3, 123_456, 9_876_543,
                    {"retention.ms": "604800000", "cleanup.policy": "delete"}, 0),
          TopicInfo("micro-moments", False)]

VIEWS: list[tuple[str, Callable[[], str], Callable[[], Any], list[str]]] = [
    ("models", lambda: format_models(MODELS), lambda: models_tables(MODELS),
     ["propensity", "0.812", "310", "r=0.24"]),
    ("clusters", lambda: format_clusters(CLUSTERS), lambda: clusters_tables(CLUSTERS),
     ["cluster_0", "bargain hunter", "21", "shoes (9)",  # 10+11 customers, 4+5 shoes
      "not fitted yet", "silhouette 0.623", "3,200", "empty in this partition's fit",
      "unlike its name: nearest to lapsed"]),
    ("profile", lambda: format_profile(PROFILE), lambda: profile_tables(PROFILE),
     ["first_time_buyer", "purchases_total", "42.5", "cart_abandoned"]),
    ("topics", lambda: format_topics(TOPICS), lambda: topics_table(TOPICS),
     ["interactions", "123,456", "9,876,543", "missing"]),
]


@pytest.mark.parametrize(("name", "plain", "rich", "figures"), VIEWS, ids=[v[0] for v in VIEWS])
def test_a_pipe_gets_the_plain_text(name: str, plain: Callable[[], str],
                                    rich: Callable[[], Any], figures: list[str]) -> None:
    out = io.StringIO()
    show(out, plain, rich)
    assert out.getvalue() == plain() + "\n"
    assert "\x1b[" not in out.getvalue() and "│" not in out.getvalue()


@pytest.mark.parametrize(("name", "plain", "rich", "figures"), VIEWS, ids=[v[0] for v in VIEWS])
def test_a_terminal_gets_a_table_that_fits(name: str, plain: Callable[[], str],
                                           rich: Callable[[], Any], figures: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    show(out, plain, rich)
    text = ANSI.sub("", out.getvalue())
    assert "│" in text and "━" in text  # Rich's box, its header rule
    assert max(len(line) for line in text.splitlines()) <= WIDTH, text
    flat = re.sub(r"[\s│┃]+", " ", text)
    for figure in figures:  # a figure folded over two lines still reads whole
        assert figure in flat or figure in text.replace("\n", ""), (figure, text)


def test_colours_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    show(out, lambda: format_topics(TOPICS), lambda: topics_table(TOPICS))
    assert "\x1b[31mmicro-moments" in out.getvalue()  # a missing topic: red
    out = Terminal()
    show(out, lambda: format_profile(PROFILE), lambda: profile_tables(PROFILE))
    assert "\x1b[32mfirst_time_buyer" in out.getvalue()  # segments: green
