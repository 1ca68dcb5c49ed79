"""``segstream tail TOPIC``: the flags, checked, then :func:`streams.client.tail.follow`."""

from __future__ import annotations

import argparse
import sys
from typing import IO

from streams.cli.common import Commands, add_connection, connection
from streams.client.tail import ISOLATION_LEVELS, TOPICS, Filters, follow
from streams.errors import UserError

__all__ = ["add_parser", "add_tail_arguments", "run_tail"]


def add_parser(commands: Commands) -> None:
    tail = commands.add_parser(
        "tail", help="follow an output topic live",
        description="Follow micro-moments, micro-moments-suppressed, segment-changes or "
        "interactions-dlq: new records (or --from-beginning), filtered, as a readable "
        "table or JSON lines; a summary line of counts and rates on exit.",
        epilog="examples:\n  segstream tail micro-moments --moment i_want_to_buy\n"
        "  segstream tail micro-moments-suppressed --reason quiet_hours --format table\n"
        "  segstream tail segment-changes --segment lapsed --change entered --count 10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection(tail)
    add_tail_arguments(tail)
    tail.set_defaults(run=run_tail)


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", metavar="TOPIC",
                        help="one of: " + ", ".join(TOPICS) + " (the prefix is added)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="read the topic from its start (default: only new records)")
    parser.add_argument("--moment", action="append", help="only this moment (repeatable)")
    parser.add_argument("--segment", action="append",
                        help="only this segment (repeatable)")
    parser.add_argument("--customer", action="append",
                        help="only this customer id (repeatable)")
    parser.add_argument("--change", choices=("entered", "exited"),
                        help="segment changes: only entries or only exits")
    parser.add_argument("--reason", action="append",
                        help="suppressed triggers or dead letters: only this reason")
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table for people (default on a terminal), json for pipes")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="stop after N records")
    parser.add_argument("--idle", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds without a new record")
    parser.add_argument("--isolation", choices=ISOLATION_LEVELS, default="read_committed",
                        help="read_committed (default): only records of committed "
                        "transactions, each output once with a worker run with "
                        "--guarantee exactly-once; read_uncommitted: also records of "
                        "open and aborted ones")


def run_tail(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    if args.topic not in TOPICS:
        raise UserError(f"segstream tail: unknown topic {args.topic!r}; "
                        f"one of: {', '.join(TOPICS)}")
    if args.count is not None and args.count < 1:
        raise UserError("segstream tail: --count must be at least 1")
    fmt = args.format or ("table" if out.isatty() else "json")
    filters = Filters(customer=args.customer, moment=args.moment, segment=args.segment,
                      change=args.change, reason=args.reason)
    settings = connection(args)
    follow(settings.bootstrap, settings.topic(args.topic), filters,
           table=fmt == "table", count=args.count, idle=args.idle,
           from_beginning=args.from_beginning, out=out, kafka=settings.kafka,
           isolation=args.isolation)
    return 0
