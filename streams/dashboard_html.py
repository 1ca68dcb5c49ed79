"""The live page ``/dashboard``: one self-contained HTML file (plotly.js inline, no
network), that polls ``/dashboard/data`` every second and draws what it says.

The page holds no figures, so it is served without the web token. The token reaches
the page in the address's fragment (``/dashboard#token=…``), which a browser never
sends to a server (so no server or proxy logs it); the page keeps it in the tab's
session storage, removes it from the address bar and sends it as ``Authorization:
Bearer`` on every poll. Without one, or refused, it asks for it.

Every figure is written with ``textContent`` (never parsed as HTML). The elements the
tests read have ids: ``consumed``, ``events-per-second``, ``lag``, the tables
``workers``, ``dead-letters``, ``segments``, ``triggers``, ``recent-sent``,
``recent-withheld``, ``clusters``.
"""

from __future__ import annotations

import functools

from plotly.offline import get_plotlyjs

__all__ = ["POLL_MS", "page"]

#: how often the page asks for the figures
POLL_MS = 1000

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1280px; padding: .5em 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: .3em 0; } h2 { font-size: 1.1em; margin: 1em 0 .3em; }
#status { color: #555; font-size: .9em; } #status.error { color: #b00; }
.tiles { display: flex; gap: 1em; flex-wrap: wrap; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: .4em .9em; flex: 1; }
.tile .label { color: #666; font-size: .8em; } .tile .value { font-size: 1.5em; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 2em; }
table { border-collapse: collapse; font-size: .85em; width: 100%; }
th, td { border-bottom: 1px solid #eee; padding: .15em .5em; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f6f6f6; }
td.error { color: #b00; text-align: left; }
#auth { display: none; border: 1px solid #e0b000; background: #fff8e0; padding: .6em; }
#rate-chart { height: 220px; }
"""

_BODY = """
<h1>segstream: the live group</h1>
<div id="status">connecting…</div>
<form id="auth">This worker needs its web token:
  <input id="token" type="password" autocomplete="off" size="40">
  <button type="submit">show the figures</button></form>
<div class="tiles">
  <div class="tile"><div class="label">events/s</div>
    <div class="value" id="events-per-second">-</div></div>
  <div class="tile"><div class="label">lag (records)</div>
    <div class="value" id="lag">-</div></div>
  <div class="tile"><div class="label">consumed</div>
    <div class="value" id="consumed">-</div></div>
  <div class="tile"><div class="label">applied</div>
    <div class="value" id="applied">-</div></div>
  <div class="tile"><div class="label">duplicates</div>
    <div class="value" id="duplicates">-</div></div>
  <div class="tile"><div class="label">dead letters</div>
    <div class="value" id="dead-lettered">-</div></div>
  <div class="tile"><div class="label">workers answering</div>
    <div class="value" id="workers-answering">-</div></div>
</div>
<div id="rate-chart"></div>
<h2>Workers</h2><table id="workers"></table>
<div class="grid">
  <div><h2>Segment sizes (customers now)</h2><table id="segments"></table></div>
  <div><h2>Triggers by moment and outcome</h2><table id="triggers"></table>
       <h2>Dead letters by reason</h2><table id="dead-letters"></table></div>
  <div><h2>Latest triggers sent</h2><table id="recent-sent"></table></div>
  <div><h2>Latest triggers withheld</h2><table id="recent-withheld"></table></div>
</div>
<h2>Discovered clusters</h2><table id="clusters"></table>
"""

_SCRIPT = """
"use strict";
const KEY = "segstream-web-token";
let timer = null;

function takeToken() {  // keep it in this tab only, and out of the address bar and history
  const found = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!found) return false;
  sessionStorage.setItem(KEY, decodeURIComponent(found[1]));
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}
const number = new Intl.NumberFormat("en-US", {maximumFractionDigits: 1});
const show = (v) => (v === null || v === undefined) ? "-" :
  (typeof v === "number" ? number.format(v) : String(v));
const history_ = {t: [], rate: [], lag: []};

function text(id, value) { document.getElementById(id).textContent = show(value); }

function table(id, header, rows) {
  const t = document.getElementById(id);
  const head = document.createElement("tr");
  for (const h of header) {
    const th = document.createElement("th"); th.textContent = h; head.appendChild(th);
  }
  const body = rows.map((row) => {
    const tr = document.createElement("tr");
    for (const cell of row) {
      const td = document.createElement("td");
      if (cell && typeof cell === "object") { td.textContent = cell.error; td.className = "error"; }
      else td.textContent = show(cell);
      tr.appendChild(td);
    }
    return tr;
  });
  t.replaceChildren(head, ...body);
}

function status(message, error) {
  const s = document.getElementById("status");
  s.textContent = message; s.className = error ? "error" : "";
}

function draw(d) {
  const t = d.totals;
  text("events-per-second", t.events_per_second); text("lag", t.lag);
  text("consumed", t.consumed); text("applied", t.applied);
  text("duplicates", t.duplicates); text("dead-lettered", t.dead_lettered);
  text("workers-answering", t.workers_answering + " of " + t.workers);
  table("workers", ["worker", "partitions", "consumed", "applied", "duplicates",
                    "dead letters", "events/s", "lag"],
        d.workers.map((w) => w.error ? [w.url, {error: w.error}, "", "", "", "", "", ""] :
          [w.url, w.partitions.join(", "), w.totals.consumed, w.totals.applied,
           w.totals.duplicates, w.totals.dead_lettered, w.events_per_second, w.lag_total]));
  table("segments", ["segment", "customers"], Object.entries(d.segments));
  const outcomes = [...new Set(Object.values(d.triggers).flatMap(Object.keys))].sort();
  table("triggers", ["moment", ...outcomes],
        Object.entries(d.triggers).map(([m, o]) => [m, ...outcomes.map((k) => o[k] || 0)]));
  table("dead-letters", ["reason", "records"], Object.entries(d.dead_letters));
  const trigger = (r) => [r.at, r.moment, r.customer_id, r.outcome, r.score];
  const columns = ["at", "moment", "customer", "outcome", "score"];
  table("recent-sent", columns, d.recent_sent.map(trigger));
  table("recent-withheld", columns, d.recent_withheld.map(trigger));
  const unlike = (c) => (c.unlike_name || []).map(
    (u) => `nearest to ${u.nearest} on partition ${u.partition}`).join("; ") || "yes";
  table("clusters", ["cluster", "name", "customers", "what they are", "like its name",
                     "top categories"],
        d.clusters.map((c) => [c.cluster, c.archetype, c.size, c.description, unlike(c),
                               c.top_categories.map((kv) => kv[0]).join(", ")]));
  const now = new Date();
  history_.t.push(now); history_.rate.push(t.events_per_second); history_.lag.push(t.lag);
  for (const k of Object.keys(history_)) history_[k] = history_[k].slice(-300);
  Plotly.react("rate-chart", [
    {x: history_.t, y: history_.rate, name: "events/s", mode: "lines"},
    {x: history_.t, y: history_.lag, name: "lag", mode: "lines", yaxis: "y2"}],
    {margin: {t: 10, b: 30, l: 50, r: 50}, legend: {orientation: "h"},
     yaxis: {title: "events/s", rangemode: "tozero"},
     yaxis2: {title: "lag", overlaying: "y", side: "right", rangemode: "tozero"}},
    {displaylogo: false, responsive: true});
  status("updated " + now.toISOString().slice(11, 19) + " UTC, every POLL_MS ms, from " +
         t.workers_answering + " of " + t.workers + " workers");
}

async function poll() {
  const token = sessionStorage.getItem(KEY);
  const headers = token ? {Authorization: "Bearer " + token} : {};
  try {
    const response = await fetch("/dashboard/data", {headers, cache: "no-store"});
    if (response.status === 401 || response.status === 403) {
      document.getElementById("auth").style.display = "block";
      status(response.status === 401 ? "this worker needs its web token"
                                     : "the worker refused this token", true);
      return;  // until a token is given
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    document.getElementById("auth").style.display = "none";
    draw(await response.json());
  } catch (error) {
    status("cannot read the figures: " + error.message, true);
  }
  timer = setTimeout(poll, POLL_MS);
}

function restart() { clearTimeout(timer); poll(); }

document.getElementById("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  restart();
});
window.addEventListener("hashchange", () => { if (takeToken()) restart(); });
takeToken();
poll();
"""


@functools.cache
def page() -> str:
    """The whole page (about 5 MB, mostly plotly.js), built once."""
    script = _SCRIPT.replace("POLL_MS", str(POLL_MS))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>segstream dashboard</title>"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<style>{_STYLE}</style>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
            f"{_BODY}<script type=\"text/javascript\">{script}</script></body></html>\n")
