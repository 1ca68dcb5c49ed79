"""``segstream simulate``: a synthetic log (:mod:`streams.tools.simulate`) to a file, or
with ``--kafka`` into ``interactions`` through the broker replay."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from segments.records import INTERACTIONS
from streams.cli.common import Commands, add_connection, connection, parse_timestamp, positive
from streams.errors import UserError

__all__ = ["add_parser", "run_simulate"]


def add_parser(commands: Commands) -> None:
    simulate = commands.add_parser(
        "simulate", help="a realistic synthetic interaction log, to a file or Kafka",
        description="Seeded synthetic customers drawn from behavioural personas (loyal "
        "regular, bargain hunter, window shopper, lapsing customer, mobile-first, "
        "researcher), as JSON lines in time order. The same seed gives the same bytes.")
    simulate.add_argument("--customers", type=positive, default=1000)
    simulate.add_argument("--days", type=float, default=30.0, help="span (default 30)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--start", type=_start, default="2026-01-05T00:00:00Z",
                          help="when the sessions start: RFC 3339, epoch ms, or 'now' "
                          "(default 2026-01-05); each customer's consent is recorded "
                          "up to a day before")
    simulate.add_argument("--out", type=Path, help="write here (default: stdout)")
    simulate.add_argument("--kafka", action="store_true",
                          help="produce into the interactions topic instead of writing")
    simulate.add_argument("--rate", type=float, default=None, metavar="EVENTS_PER_S",
                          help="with --kafka: at most this many events per second "
                          "(default: as fast as possible)")
    add_connection(simulate)
    simulate.set_defaults(run=run_simulate)


def _start(text: str) -> int:
    if text == "now":
        import time
        return time.time_ns() // 1_000_000
    return parse_timestamp(text)


def _write(events: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    import orjson

    for event in events:
        out.write(orjson.dumps(event) + b"\n")


def run_simulate(args: argparse.Namespace) -> int:
    import tempfile

    from streams.tools.simulate import simulate

    if args.days <= 0:
        raise UserError("segstream simulate: --days must be positive")
    if args.rate is not None and (args.rate <= 0 or not args.kafka):
        raise UserError("segstream simulate: --rate must be positive and needs --kafka")
    if args.kafka and args.out is not None:
        raise UserError("segstream simulate: --out and --kafka exclude each other")
    events = simulate(customers=args.customers, days=args.days, seed=args.seed,
                      start=args.start)
    if not args.kafka:
        if args.out is None:
            _write(events, sys.stdout.buffer)
        else:
            with args.out.open("wb") as out:
                _write(events, out)
        return 0
    from streams.client.replay import ReplayOptions, replay_to_kafka

    settings = connection(args)  # a bad --kafka-config stops it before the log is made
    with tempfile.TemporaryDirectory(prefix="segstream-simulate-") as tmp:
        log = Path(tmp) / "simulated.jsonl"
        with log.open("wb") as out:
            _write(events, out)
        summary = replay_to_kafka([log], settings.bootstrap, settings.topic(INTERACTIONS),
                                  ReplayOptions(rate=args.rate, progress=sys.stderr.isatty()),
                                  kafka=settings.kafka)
    print(summary.summary(), file=sys.stderr)
    return 0
