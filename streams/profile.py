"""``segstream profile CUSTOMER_ID``: one customer's current state, from the worker.

Asks the worker's web API (``GET /profile/<id>``); the worker that receives the request
forwards it to the worker owning the key (Faust ``table_route``), so any worker's
address will do.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
from typing import IO, Any

from streams.errors import UserError
from streams.worker_api import default_worker, get_json

__all__ = ["add_profile_arguments", "fetch_profile", "format_profile", "run_profile"]


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer", metavar="CUSTOMER_ID")
    parser.add_argument("--worker", default=default_worker(),
                        help="any worker's web address (SEGSTREAM_WORKER_URL, "
                        "default http://127.0.0.1:6066)")
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table for people (default on a terminal), json for programs")


def fetch_profile(worker: str, customer: str, timeout: float = 10.0) -> dict[str, Any]:
    try:
        return get_json(worker, f"/profile/{urllib.parse.quote(customer, safe='')}", timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UserError(f"no customer {customer!r}: the worker holds no state for it "
                            "(never seen, or erased)") from exc
        raise UserError(f"worker at {worker} answered HTTP {exc.code} for {customer!r}") from exc


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


def run_profile(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    document = fetch_profile(args.worker, args.customer)
    fmt = args.format or ("table" if out.isatty() else "json")
    if fmt == "json":
        print(json.dumps(document, indent=2), file=out)
    else:
        print(format_profile(document), file=out)
    return 0
