"""``segstream profile CUSTOMER_ID``: one customer's current state, from the worker.

Asks the worker's web API (``GET /profile/<id>``); the worker that receives the request
forwards it to the worker owning the key (Faust ``table_route``), so any worker's
address will do.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from typing import TYPE_CHECKING, Any

from streams.client.worker_api import WebAccess, get_json, said
from streams.errors import UserError

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["fetch_profile", "format_profile", "profile_tables"]


def fetch_profile(worker: str, customer: str, timeout: float = 10.0,
                  access: WebAccess | None = None) -> dict[str, Any]:
    try:
        return get_json(worker, f"/profile/{urllib.parse.quote(customer, safe='')}", timeout,
                        access)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UserError(f"no customer {customer!r}: the worker holds no state for it "
                            "(never seen, or erased)") from exc
        raise UserError(f"worker at {worker} answered HTTP {exc.code} for {customer!r}"
                        f"{said(exc)}") from exc


def _fields(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of the state, segments first; the features come apart."""
    fields = [("customer", f"{document['customer_id']}   (as of {document['as_of']}, "
                           f"partition {document.get('partition')})"),
              ("segments", ", ".join(document["segments"]) or "-")]
    consent = document.get("consent", {})
    fields.append(("consent", f"marketing={consent.get('marketing')} "
                              f"personalization={consent.get('personalization')}"))
    for item in document.get("cart", []):
        fields.append(("cart", f"{item['product_id']} x{item['quantity']} "
                               f"@ {item['price']} ({item['category'] or '-'})"))
    for pending in document.get("pending_triggers", []):
        fields.append(("pending", f"{pending['moment']} ({pending['kind']}) "
                                  f"due {pending['due']}"))
    if document.get("next_change_due"):
        fields.append(("next due", str(document["next_change_due"])))
    return fields


def _features(document: dict[str, Any]) -> dict[str, Any]:
    """The features that have a value."""
    return {k: v for k, v in document.get("features", {}).items()
            if v not in (None, 0, 0.0, False)}


def format_profile(document: dict[str, Any]) -> str:
    """A readable view: segments first, then the features that have a value."""
    lines = [f"{label:<10} {value}" for label, value in _fields(document)]
    lines.append("features")
    features = _features(document)
    width = max((len(k) for k in features), default=0)
    lines.extend(f"  {name:<{width}}  {value}" for name, value in features.items())
    return "\n".join(lines)


def profile_tables(document: dict[str, Any]) -> RenderableType:
    """:func:`format_profile` for a terminal: the state, segments in green, then the
    features' table."""
    from rich.console import Group
    from rich.text import Text

    from streams.terminal import table

    rows: list[list[str | Text]] = [
        [label, Text(value, style="entered") if label == "segments" else value]
        for label, value in _fields(document)]
    features = [[name, str(value)] for name, value in _features(document).items()]
    (label, who), *rest = rows
    return Group(table((str(label), who), rest),
                 table(("feature", "value"), features, right=(1,)))
