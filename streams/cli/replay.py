"""``segstream replay FILE…``: event logs into ``interactions`` (the broker replay,
:mod:`streams.client.replay`), or through the engine here with ``--offline``
(:mod:`streams.tools.offline`). The flags, and which of them go with which mode."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any

from segments.definitions import Definitions
from segments.records import INTERACTIONS
from streams.cli.common import (
    Commands,
    add_connection,
    add_definitions,
    connection,
    env,
    load_definitions_file,
    parse_timestamp,
    positive,
)
from streams.client.replay import ReplayOptions
from streams.errors import UserError

__all__ = ["add_engine_arguments", "add_parser", "add_replay_arguments", "options_from_args",
           "parse_speed", "run_offline", "run_replay"]


def add_parser(commands: Commands) -> None:
    replay = commands.add_parser(
        "replay", help="replay JSON-lines event logs into Kafka, or offline",
        description="Produce event logs (JSON lines, gzip or not; several files are "
        "merged in time order) into the interactions topic, keyed by customer id, "
        "unchanged byte for byte. With --offline the engine runs here instead and "
        "writes its outputs as JSON lines.",
        epilog="examples:\n  segstream replay events.jsonl.gz --speed 60x\n"
        "  segstream replay day1.jsonl day2.jsonl --rate 5000 --checkpoint replay.ckpt\n"
        "  segstream replay --offline events.jsonl --until 2026-12-01T00:00:00Z",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_connection(replay)
    replay.add_argument("--offline", action="store_true",
                        help="run the engine here, with no broker")
    add_definitions(replay)
    replay.add_argument("--until", type=parse_timestamp,
                        help="into Kafka: stop at the first event at or after this "
                        "instant; offline: also advance the clock to it at the end")
    replay.add_argument("--out", type=Path,
                        help="offline: write outputs here (default: stdout)")
    add_engine_arguments(replay, "offline: ")
    replay.add_argument("--progress", action="store_true", help="progress on stderr")
    add_replay_arguments(replay)
    replay.set_defaults(run=run_replay)


def default_partitions() -> int:
    """``SEGSTREAM_PARTITIONS``, else 3: what the worker creates."""
    return int(env("PARTITIONS", 3))


def add_engine_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--partitions`` and ``--jobs`` of a replay through the engine here (also
    ``segstream report``'s); :func:`run_offline` reads them."""
    parser.add_argument("--partitions", type=positive, default=default_partitions(),
                        help=f"{prefix}partitions of the interactions topic to emulate "
                        "(each has its own clock and RFM population; default 3, as the "
                        "worker creates)")
    parser.add_argument("--jobs", type=positive, default=None,
                        help=f"{prefix}processes to share the partitions among (default: "
                        "twice the CPUs, at most --partitions); the records are the same, "
                        "in the same order, as with one")


def run_offline(files: list[Path], definitions: Definitions, out: IO[bytes],
                args: argparse.Namespace, progress: bool) -> dict[str, int]:
    """The engine over ``files`` with the flags of :func:`add_engine_arguments` (and
    ``--until``), outputs to ``out``; the replay's summary."""
    from streams.tools.offline import replay_offline

    # More processes than cores lets the system even out partitions that do not divide
    # among the cores (3 partitions on 2 cores: 19.6 s for Online Retail II, 23.3 s
    # with 2 jobs); each job holds its own models, so not unboundedly many.
    jobs = args.jobs or 2 * len(os.sched_getaffinity(0))
    return replay_offline(files, definitions, out, until=args.until,
                          partitions=args.partitions, progress=progress, jobs=jobs)


def parse_speed(text: str) -> float | None:
    """``max`` -> None; ``1x``, ``60x``, ``60``, ``0.5x`` -> the factor."""
    cleaned = text.strip().lower()
    if cleaned == "max":
        return None
    number = cleaned[:-1] if cleaned.endswith("x") else cleaned
    try:
        speed = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid speed {text!r}: use 'max' or a factor such as 1x, 60x, 0.5x") from None
    if not speed > 0 or speed == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid speed {text!r}: must be above 0")
    return speed


def _positive_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: events per second above 0")
    return rate


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: a whole number >= 0")
    return int(text)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a broker replay; a flag the parser already has is left alone.

    Adds ``--speed --rate --from --key --skip --checkpoint`` and ``--no-progress``;
    ``--until`` and ``--progress`` too when the parser lacks them.
    """
    existing = parser._option_string_actions  # the one way argparse tells

    def add(flag: str, **kwargs: Any) -> None:
        if flag not in existing:
            parser.add_argument(flag, **kwargs)

    add("--speed", type=parse_speed, default=None, metavar="max|FACTORx",
        help="max (default): as fast as possible; 1x: real time from the events' "
        "timestamps; 60x: sixty times faster")
    add("--rate", type=_positive_rate, default=None, metavar="EVENTS_PER_S",
        help="at most this many events per second")
    add("--from", dest="start", type=parse_timestamp, default=None, metavar="TIMESTAMP",
        help="skip events before this instant (RFC 3339 or epoch ms)")
    add("--until", type=parse_timestamp, default=None, metavar="TIMESTAMP",
        help="stop at the first event at or after this instant")
    add("--key", default=None, metavar="CUSTOMER_ID", help="only this customer's events")
    add("--skip", type=_non_negative, default=0, metavar="N",
        help="skip the first N records of the merged files")
    add("--checkpoint", type=Path, default=None, metavar="FILE",
        help="record progress here every few seconds; resume from it when it exists")
    add("--progress", action="store_true", default=False,
        help="progress line on stderr (default: when stderr is a terminal)")
    add("--no-progress", action="store_true", default=False, help="no progress line")


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    """ReplayOptions from the flags of :func:`add_replay_arguments`."""
    progress = bool(getattr(args, "progress", False))
    if not progress and not getattr(args, "no_progress", False):
        progress = sys.stderr.isatty()
    return ReplayOptions(speed=getattr(args, "speed", None), rate=getattr(args, "rate", None),
                         start=getattr(args, "start", None), until=getattr(args, "until", None),
                         key=getattr(args, "key", None), skip=getattr(args, "skip", 0) or 0,
                         checkpoint=getattr(args, "checkpoint", None), progress=progress)


def run_replay(args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if args.offline:
        return _run_offline_replay(args)
    from streams.client.replay import replay_to_kafka

    unused = [flag for flag, value in (("--out", args.out), ("--definitions", args.definitions),
                                       ("--jobs", args.jobs)) if value is not None]
    if unused:
        raise UserError(f"segstream replay: {unused[0]} applies only with --offline")
    settings = connection(args)
    summary = replay_to_kafka(args.files, settings.bootstrap, settings.topic(INTERACTIONS),
                              options_from_args(args), kafka=settings.kafka)
    print(summary.summary(), file=sys.stderr)
    return 0


def _run_offline_replay(args: argparse.Namespace) -> int:
    broker_only = [flag for flag, value in (
        ("--speed", args.speed), ("--rate", args.rate), ("--from", args.start),
        ("--key", args.key), ("--checkpoint", args.checkpoint)) if value is not None]
    if broker_only or args.skip:
        raise UserError(f"segstream replay: {(broker_only or ['--skip'])[0]} applies only "
                        "to a replay into Kafka, not with --offline")
    definitions = load_definitions_file(args.definitions)
    if args.out is None:
        run_offline(args.files, definitions, sys.stdout.buffer, args, args.progress)
    else:
        with args.out.open("wb") as out:
            run_offline(args.files, definitions, out, args, args.progress)
    return 0
