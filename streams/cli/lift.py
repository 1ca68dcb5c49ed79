"""``segstream lift``: the lift report (:mod:`streams.tools.lift`) over files."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import chain
from pathlib import Path

from segments.definitions import parse_duration
from streams.cli.common import Commands
from streams.errors import UserError
from streams.tools.eventlog import read_jsonl
from streams.tools.lift import DEFAULT_WINDOW_MS, format_table, lift_report, to_json

__all__ = ["add_lift_arguments", "add_parser", "add_window_arguments", "parse_window", "run_lift"]


def add_parser(commands: Commands) -> None:
    lift = commands.add_parser(
        "lift", help="conversion of triggered customers versus the holdout, per moment",
        description="From the trigger records (worker topics dumped to JSON lines, or "
        "`replay --offline` output) and the interaction log: per moment, the conversion "
        "rate within a window after each trigger for treated customers versus the "
        "holdout control group, the difference with a 95% confidence interval "
        "(Newcombe), and revenue per exposure. See docs/lift.md.")
    add_lift_arguments(lift)
    lift.set_defaults(run=run_lift)


def parse_window(text: str) -> int:
    """A conversion window (``30m``, ``24h``, ``7d``) in ms, above 0."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
    return value


def add_lift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outputs", type=Path, action="append", required=True,
                        metavar="FILE", help="output records of the worker or of "
                        "`replay --offline` (JSON lines, gzip or not; repeatable)")
    parser.add_argument("--events", type=Path, action="append", required=True,
                        metavar="FILE", help="interaction events log (JSON lines, gzip "
                        "or not; repeatable)")
    add_window_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output format (default table)")


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """``--window`` and ``--include-censored`` (also ``segstream report``'s)."""
    parser.add_argument("--window", type=parse_window, default=DEFAULT_WINDOW_MS,
                        metavar="DURATION", help="conversion window after a trigger, "
                        "e.g. 30m, 24h, 7d (default 24h)")
    parser.add_argument("--include-censored", action="store_true",
                        help="keep exposures whose window ends after the log's last event")


def run_lift(args: argparse.Namespace) -> int:
    """Print the report to stdout; return 0."""
    for path in [*args.outputs, *args.events]:
        if not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    window = args.window
    if not isinstance(window, int):  # a Namespace built by hand
        try:
            window = parse_window(str(window))
        except argparse.ArgumentTypeError as exc:
            raise UserError(f"--window: {exc}") from exc
    unreadable = [0]  # interaction lines the worker would dead-letter
    rows = lift_report(chain.from_iterable(read_jsonl(Path(p)) for p in args.outputs),
                       chain.from_iterable(read_jsonl(Path(p), unreadable)
                                           for p in args.events),
                       window_ms=window, include_censored=args.include_censored)
    if unreadable[0]:
        print(f"segstream lift: {unreadable[0]:,} event lines are not JSON objects; "
              "skipped, as the worker dead-letters them", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(json.dumps(to_json(rows), indent=2) + "\n")
    else:
        sys.stdout.write(format_table(rows) + "\n")
    return 0
