"""The page of ``segstream report``: the tables of :mod:`streams.tools.report` drawn
with Plotly, in one HTML file that needs no network (plotly.js inline, once; the
styles inline).

Each chart is a Plotly figure in a ``<div>`` whose id is its name in :data:`FIGURES`;
the tests read the figures' data back out of the page and compare it with the
outputs. Only the tables of numbers are written here by hand, escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from streams.tools.lift import MomentLift, wilson_interval
from streams.tools.report import DURATION_BINS, SENT, Comparison, Report

__all__ = ["FIGURES", "render"]

#: every chart's div id, in the page's order (the compare-* ones only with --compare;
#: event-to-trigger and lift-* only with the events)
FIGURES = ("segment-sizes", "segment-flows", "triggers-sent-by-moment",
           "triggers-by-outcome", "trigger-outcomes", "segment-overlap", "event-to-trigger",
           "time-to-act", "lift-rates", "lift-difference", "compare-sizes",
           "compare-members", "compare-churn", "compare-triggers")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1em 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em;
     border-bottom: 1px solid #ddd; padding-bottom: .2em; }
p.note { color: #555; font-size: .92em; max-width: 60em; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
"""
_CONFIG = {"displaylogo": False, "responsive": True}
_OUTCOME_COLOURS = {SENT: "#2ca02c", "holdout": "#7f7f7f"}


def _figure(name: str, figure: go.Figure, height: int = 450, top: int = 60) -> str:
    figure.update_layout(height=height, margin={"t": top, "l": 60, "r": 20, "b": 60},
                         template="plotly_white")
    return str(pio.to_html(figure, full_html=False, include_plotlyjs=False,
                           div_id=name, config=_CONFIG))


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _per(report: Report) -> str:
    return "hour (UTC)" if report.bucket == "hour" else "day (UTC)"


# ------------------------------------------------------------------- the sections

def _sizes(report: Report) -> str:
    groups = list(report.groups.items())
    figure = make_subplots(rows=max(len(groups), 1), cols=1, shared_xaxes=True,
                           subplot_titles=[title for title, _ in groups],
                           vertical_spacing=0.12 / max(len(groups), 1))
    for row, (title, segments) in enumerate(groups, start=1):
        for segment in segments:
            figure.add_trace(go.Scatter(
                x=report.buckets, y=report.sizes[segment], name=segment, mode="lines",
                legendgroup=title, legendgrouptitle_text=title), row=row, col=1)
    figure.update_layout(title=f"Customers in each segment at the end of each "
                         f"{_per(report)}", legend={"groupclick": "toggleitem"})
    return _figure("segment-sizes", figure, height=max(450, 260 * len(groups)), top=100)


def _flows(report: Report) -> str:
    figure = go.Figure()
    busiest = sorted(report.segments, key=lambda s: -(sum(report.entries[s])
                                                      + sum(report.exits[s])))[:5]
    for segment in report.segments:
        visible: bool | str = True if segment in busiest else "legendonly"
        figure.add_trace(go.Bar(x=report.buckets, y=report.entries[segment],
                                name=f"{segment} entered", legendgroup=segment,
                                visible=visible))
        figure.add_trace(go.Bar(x=report.buckets, y=[-n for n in report.exits[segment]],
                                name=f"{segment} exited", legendgroup=segment,
                                visible=visible, customdata=report.exits[segment],
                                hovertemplate="%{customdata} exited<extra>%{fullData.name}"
                                "</extra>"))
    figure.update_layout(barmode="relative", title=f"Entries (up) and exits (down) per "
                         f"{_per(report)}; the five busiest segments shown, click the "
                         "legend for the others")
    return _figure("segment-flows", figure, height=550)


def _triggers(report: Report) -> str:
    if not report.moments:
        return _note("No micro-moment records in these outputs: no moment's condition held "
                     "(the shipped moments start from views, searches, carts and content, "
                     "which a purchases-only log lacks).")
    sent = go.Figure([go.Bar(x=report.buckets, y=report.sent_by_moment[m], name=m)
                      for m in report.moments])
    sent.update_layout(barmode="stack", title=f"Triggers sent per {_per(report)}, by moment")
    outcome = go.Figure([go.Bar(x=report.buckets, y=report.by_outcome[o], name=o,
                                marker_color=_OUTCOME_COLOURS.get(o))
                         for o in report.outcomes])
    outcome.update_layout(barmode="stack", title=f"Every trigger per {_per(report)}, by "
                          "outcome: sent, or why it was withheld")
    z = [[report.trigger_totals.get((m, o), 0) for o in report.outcomes]
         for m in report.moments]
    totals = go.Figure(go.Heatmap(z=z, x=report.outcomes, y=report.moments,
                                  text=[[f"{n:,}" for n in row] for row in z],
                                  texttemplate="%{text}", colorscale="Blues"))
    totals.update_layout(title="Triggers over the whole log, moment by outcome")
    return (_figure("triggers-sent-by-moment", sent)
            + _figure("triggers-by-outcome", outcome)
            + _note("sent: on the micro-moments topic; every other outcome is a record on "
                    "micro-moments-suppressed. holdout is the control group of the lift "
                    "below. A quiet_hours trigger that is held (held_until) is counted "
                    "again, under its own outcome, when it fires.")
            + _figure("trigger-outcomes", totals, height=120 + 40 * len(report.moments)))


def _overlap(report: Report) -> str:
    segments = [s for s in report.segments if report.final_members.get(s, 0) > 0]
    z = [[report.share(a, b) for b in segments] for a in segments]
    both = [[report.overlap.get((a, b), 0) for b in segments] for a in segments]
    figure = go.Figure(go.Heatmap(
        z=z, x=segments, y=segments, customdata=both, zmin=0, zmax=1, colorscale="Viridis",
        text=[[f"{100 * v:.0f}%" if v is not None else "" for v in row] for row in z],
        texttemplate="%{text}",
        hovertemplate="%{customdata:,} of %{y} also in %{x}: %{z:.1%}<extra></extra>"))
    figure.update_layout(title="Share of the customers in segment A (row) also in B "
                         "(column), at the end of the log",
                         yaxis={"autorange": "reversed"}, xaxis={"tickangle": -45})
    sizes = _table(["segment", "customers at the end"],
                   [(s, f"{report.final_members[s]:,}") for s in segments])
    return (_figure("segment-overlap", figure, height=200 + 28 * len(segments))
            + sizes)


def _durations(name: str, title: str, bins: dict[str, list[int]]) -> str:
    labels = [label for label, _ in DURATION_BINS]
    figure = go.Figure([go.Bar(x=labels, y=counts, name=moment)
                        for moment, counts in bins.items()])
    figure.update_layout(barmode="group", title=title, xaxis={"type": "category"},
                         yaxis={"title": "triggers"})
    return _figure(name, figure)


def _timings(report: Report) -> str:
    parts = []
    if report.event_to_trigger is None:
        parts.append(_note("Time from event to trigger: needs the events (--events)."))
    else:
        parts.append(_durations(
            "event-to-trigger", "Time from the event that caused a trigger to the trigger "
            "(event time), per moment", report.event_to_trigger))
        parts.append(_note("0 for a trigger on its event; a delayed moment waits its delay; "
                           "a trigger held through quiet hours waits until they end."
                           + (f" {report.unmatched_causes:,} triggers name an event not in "
                              "the events given; they are left out."
                              if report.unmatched_causes else "")))
    parts.append(_durations("time-to-act", "Time left to act on a trigger (expires_at - "
                            "at), per moment", report.to_act))
    return "".join(parts)


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _rate_bars(rows: list[MomentLift], group: str) -> go.Bar:
    rates: list[float | None] = []
    low: list[float | None] = []
    high: list[float | None] = []
    for row in rows:
        stats = row.treated if group == "treated" else row.control
        if stats.exposures:
            rate = stats.conversions / stats.exposures
            lo, hi = wilson_interval(stats.conversions, stats.exposures)
            rates.append(rate)
            low.append(rate - lo)
            high.append(hi - rate)
        else:
            rates.append(None)
            low.append(None)
            high.append(None)
    name = "treated (sent)" if group == "treated" else "control (holdout)"
    return go.Bar(x=[r.moment for r in rows], y=rates, name=name,
                  error_y={"type": "data", "symmetric": False, "array": high,
                           "arrayminus": low})


def _lift(report: Report) -> str:
    if report.lift is None:
        return _note("Lift: needs the events (--events), for the purchases after each "
                     "trigger.")
    rows = report.lift
    window = report.lift_window_ms / 3_600_000
    rates = go.Figure([_rate_bars(rows, "treated"), _rate_bars(rows, "control")])
    rates.update_layout(barmode="group", yaxis={"tickformat": ".0%", "title": "converted"},
                        title=f"Conversion within {window:g} h of a trigger: treated versus "
                        "held out (95% Wilson intervals)")
    shown = [r for r in rows if r.diff is not None]
    diff = go.Figure(go.Scatter(
        x=[r.moment for r in shown], y=[100 * r.diff for r in shown if r.diff is not None],
        mode="markers", marker={"size": 11}, name="treated - control",
        error_y={"type": "data", "symmetric": False,
                 "array": [100 * (r.ci_high - r.diff) for r in shown
                           if r.ci_high is not None and r.diff is not None],
                 "arrayminus": [100 * (r.diff - r.ci_low) for r in shown
                                if r.ci_low is not None and r.diff is not None]}))
    diff.add_hline(y=0, line_dash="dot")
    diff.update_layout(yaxis={"title": "percentage points"},
                       title="Lift: treated minus control conversion, with its 95% "
                       "interval (Newcombe)")
    table = _table(
        ["moment", "treated n", "treated conv", "treated rate", "control n", "control conv",
         "control rate", "diff pp", "95% CI pp", "relative", "censored"],
        [(r.moment, f"{r.treated.exposures:,}", f"{r.treated.conversions:,}",
          _pct(r.treated.rate), f"{r.control.exposures:,}", f"{r.control.conversions:,}",
          _pct(r.control.rate), _pp(r.diff),
          "-" if r.ci_low is None else f"[{_pp(r.ci_low)}, {_pp(r.ci_high)}]",
          "-" if r.relative is None else f"{100 * r.relative:+.1f}%", f"{r.censored:,}")
         for r in rows])
    return (_figure("lift-rates", rates) + _figure("lift-difference", diff) + table
            + _note("As `segstream lift` computes it (docs/lift.md): a trigger converts "
                    "when its customer buys within the window after it; exposures whose "
                    "window ends after the log are censored and left out."))


def _compare(comparison: Comparison) -> str:
    first, second = comparison.names
    segments, moments = comparison.segments, comparison.moments

    def pair(name: str, title: str, values: tuple[dict[str, int], dict[str, int]],
             keys: list[str]) -> str:
        figure = go.Figure([go.Bar(x=keys, y=[values[0][k] for k in keys], name=first),
                            go.Bar(x=keys, y=[values[1][k] for k in keys], name=second)])
        figure.update_layout(barmode="group", title=title, xaxis={"tickangle": -45})
        return _figure(name, figure)

    members = go.Figure([
        go.Bar(x=segments, y=[comparison.only[0][s] for s in segments],
               name=f"only with {first}"),
        go.Bar(x=segments, y=[comparison.both[s] for s in segments], name="with both"),
        go.Bar(x=segments, y=[comparison.only[1][s] for s in segments],
               name=f"only with {second}")])
    members.update_layout(barmode="stack", xaxis={"tickangle": -45},
                          title="Who is in each segment at the end: under one definitions "
                          "file, the other, or both")
    return (pair("compare-sizes", "Customers in each segment at the end of the log",
                 comparison.final_members, segments)
            + _figure("compare-members", members)
            + pair("compare-churn", "Churn of members: entries plus exits over the log",
                   comparison.churn, segments)
            + pair("compare-triggers", "Triggers sent per moment", comparison.sent, moments))


def _summary(report: Report, title: str) -> str:
    rows: list[tuple[str, str]] = [
        ("output records read", f"{report.records:,}"),
        ("customers with a segment change", f"{report.customers:,}"),
        ("from", report.buckets[0] if report.buckets else "-"),
        ("to", report.buckets[-1] if report.buckets else "-"),
        ("triggers", f"{sum(report.trigger_totals.values()):,}"),
        ("triggers sent", f"{sum(report.by_outcome.get(SENT, ())):,}"),
        ("definitions versions", ", ".join(report.definitions_versions) or "-"),
    ]
    rows += [(f"replay: {k}", f"{v:,}" if isinstance(v, int) else str(v))
             for k, v in report.summary.items()]
    dead = (_table(["dead letters by reason", "records"],
                   [(r, f"{n:,}") for r, n in report.dead_letters.items()])
            if report.dead_letters else "")
    return f"<h1>{html.escape(title)}</h1>" + _table(["the log", ""], rows) + dead


def render(report: Report, comparison: Comparison | None = None, *,
           title: str = "segstream report") -> str:
    """The whole page."""
    sections = [
        _summary(report, title),
        "<h2>Segments</h2>", _sizes(report), _flows(report),
        "<h2>Triggers</h2>", _triggers(report),
        "<h2>Segment overlap</h2>", _overlap(report),
        "<h2>Timing</h2>", _timings(report),
        "<h2>Lift per moment (holdout)</h2>", _lift(report),
    ]
    if comparison is not None:
        sections += [f"<h2>{html.escape(comparison.names[0])} versus "
                     f"{html.escape(comparison.names[1])}</h2>", _compare(comparison)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
            + "\n".join(sections) + "</body></html>\n")
