"""``segstream profile CUSTOMER_ID``: one customer's current state, from the worker.

Asks the worker's web API (``GET /profile/<id>``); the worker that receives the request
forwards it to the worker owning the key (Faust ``table_route``), so any worker's
address will do.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from typing import Any

from streams.client.worker_api import WebAccess, get_json, said
from streams.errors import UserError

__all__ = ["fetch_profile", "format_profile"]


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


def format_profile(document: dict[str, Any]) -> str:
    """A readable view: segments first, then the features that have a value."""
    lines = [f"customer   {document['customer_id']}   (as of {document['as_of']}, "
             f"partition {document.get('partition')})",
             f"segments   {', '.join(document['segments']) or '-'}"]
    consent = document.get("consent", {})
    lines.append(f"consent    marketing={consent.get('marketing')} "
                 f"personalization={consent.get('personalization')}")
    for item in document.get("cart", []):
        lines.append(f"cart       {item['product_id']} x{item['quantity']} "
                     f"@ {item['price']} ({item['category'] or '-'})")
    for pending in document.get("pending_triggers", []):
        lines.append(f"pending    {pending['moment']} ({pending['kind']}) due {pending['due']}")
    if document.get("next_change_due"):
        lines.append(f"next due   {document['next_change_due']}")
    lines.append("features")
    features = {k: v for k, v in document.get("features", {}).items()
                if v not in (None, 0, 0.0, False)}
    width = max((len(k) for k in features), default=0)
    lines.extend(f"  {name:<{width}}  {value}" for name, value in features.items())
    return "\n".join(lines)
