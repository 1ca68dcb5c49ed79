"""``segstream profile CUSTOMER_ID``: one customer's state (:mod:`streams.client.profile`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from streams.cli.common import Commands, add_worker_access, worker_access
from streams.client.profile import fetch_profile, format_profile, profile_tables
from streams.client.worker_api import default_worker
from streams.terminal import show

__all__ = ["add_parser", "add_profile_arguments", "run_profile"]


def add_parser(commands: Commands) -> None:
    profile = commands.add_parser(
        "profile", help="one customer's current segments, features and scores",
        description="Ask a worker for a customer's current state: segments, every "
        "feature, scores, cart, consent, pending triggers. The request is routed to the "
        "worker that owns the key.")
    add_profile_arguments(profile)
    profile.set_defaults(run=run_profile)


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer", metavar="CUSTOMER_ID")
    parser.add_argument("--worker", default=default_worker(),
                        help="any worker's web address (SEGSTREAM_WORKER_URL, "
                        "default http://127.0.0.1:6066)")
    add_worker_access(parser)
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table for people (default on a terminal), json for programs")


def run_profile(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    document = fetch_profile(args.worker, args.customer, access=worker_access(args))
    fmt = args.format or ("table" if out.isatty() else "json")
    if fmt == "json":
        print(json.dumps(document, indent=2), file=out)
    else:
        show(out, lambda: format_profile(document), lambda: profile_tables(document))
    return 0
