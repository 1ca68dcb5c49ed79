"""``segstream``: the command line. Flags fall back to ``SEGSTREAM_*`` variables."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from segments.definitions import Definitions, DefinitionsError, load_default, load_definitions
from segments.records import INTERACTIONS
from segments.timefmt import TimestampError, parse_ts
from streams.errors import UserError
from streams.tools.importers import FORMATS
from streams.tools.lift import add_lift_arguments, run_lift
from streams.models_view import add_arguments as add_model_view_arguments
from streams.models_view import run_clusters, run_models
from streams.profile import add_profile_arguments, run_profile
from streams.replay import add_replay_arguments, options_from_args
from streams.settings import Settings
from streams.tail import add_tail_arguments, run_tail

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def _env(name: str, default: Any) -> Any:
    return os.environ.get(f"SEGSTREAM_{name}", default)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=_env("BOOTSTRAP", "localhost:9092"),
                        help="Kafka bootstrap servers (SEGSTREAM_BOOTSTRAP)")
    parser.add_argument("--topic-prefix", default=_env("TOPIC_PREFIX", ""),
                        help="prefix of every topic name (SEGSTREAM_TOPIC_PREFIX)")


def _definitions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--definitions", type=Path, default=_env("DEFINITIONS", None),
                        help="segments and moments TOML file (default: the shipped one)")


def _timestamp(text: str) -> int:
    try:
        return parse_ts(int(text) if text.isdigit() else text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segstream", description=(
        "Real-time behavioral segmentation and micro-moment triggers on Kafka."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    worker = commands.add_parser("worker", help="run the pipeline (the main job)",
                                 description="Consume interactions, keep customer state, "
                                 "emit segment changes and micro-moment triggers.")
    _connection(worker)
    _definitions(worker)
    worker.add_argument("--data-dir", type=Path, default=_env("DATA_DIR", "segstream-data"),
                        help="local working directory of the worker (SEGSTREAM_DATA_DIR)")
    worker.add_argument("--web-host", default=_env("WEB_HOST", "127.0.0.1"),
                        help="address of the worker's HTTP API (SEGSTREAM_WEB_HOST)")
    worker.add_argument("--web-port", type=int, default=int(_env("WEB_PORT", 6066)),
                        help="port of the worker's HTTP API (/health, /stats)")
    worker.add_argument("--partitions", type=int, default=int(_env("PARTITIONS", 3)),
                        help="partitions of the topics it creates (default 3)")
    worker.add_argument("--replication-factor", type=_positive,
                        default=int(_env("REPLICATION_FACTOR", 1)),
                        help="replicas of the topics it creates (default 1; use 3 on a "
                        "real cluster)")
    worker.add_argument("--clock", choices=("live", "event"), default=_env("CLOCK", "live"),
                        help="live: event time or wall clock, whichever is later; "
                        "event: event time only (deterministic replays)")
    worker.add_argument("--max-event-bytes", type=int, default=64 * 1024,
                        help="larger records go to the dead-letter topic (default 65536)")
    worker.add_argument("--linger-ms", type=int, default=int(_env("LINGER_MS", 1)),
                        help="how long the producer waits to batch output and changelog "
                        "records (SEGSTREAM_LINGER_MS, default 1): more batches fewer, "
                        "larger requests at the cost of that much latency")
    worker.add_argument("--model-checkpoint-updates", type=_positive, default=1000,
                        help="checkpoint a partition's models after this many updates "
                        "(default 1000)")
    worker.add_argument("--model-checkpoint-seconds", type=float, default=30.0,
                        help="... or this long after an update (default 30)")
    worker.add_argument("--loglevel", default=_env("LOGLEVEL", "warning"))

    topics = commands.add_parser("topics", help="create the contract's topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True,
                                            parser_class=_Parser)
    create = topics_commands.add_parser("create", help="create missing topics")
    _connection(create)
    create.add_argument("--partitions", type=_positive, default=3)
    create.add_argument("--replication-factor", type=_positive,
                        default=int(_env("REPLICATION_FACTOR", 1)),
                        help="replicas of each topic (default 1; use 3 on a real cluster)")
    describe = topics_commands.add_parser(
        "describe", help="partitions, records, bytes, configs and the worker's lag")
    _connection(describe)
    describe.add_argument("--format", choices=("table", "json"), default="table")

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
    _connection(replay)
    replay.add_argument("--offline", action="store_true",
                        help="run the engine here, with no broker")
    _definitions(replay)
    replay.add_argument("--until", type=_timestamp,
                        help="into Kafka: stop at the first event at or after this "
                        "instant; offline: also advance the clock to it at the end")
    replay.add_argument("--out", type=Path,
                        help="offline: write outputs here (default: stdout)")
    replay.add_argument("--partitions", type=_positive, default=int(_env("PARTITIONS", 3)),
                        help="offline: partitions of the interactions topic to emulate "
                        "(each has its own clock and RFM population; default 3, as the "
                        "worker creates)")
    replay.add_argument("--progress", action="store_true", help="progress on stderr")
    add_replay_arguments(replay)

    importer = commands.add_parser(
        "import", help="turn a public event log into interaction events",
        description="Read a public log in its original format and write interaction "
        "events as JSON lines in time order, with deterministic event ids. A summary of "
        "what was read, written and skipped (by reason) goes to stderr. The mappings "
        "are in the README, 'Importing real logs'.")
    importer.add_argument("format", choices=sorted(FORMATS), metavar="FORMAT",
                          help="one of: " + ", ".join(sorted(FORMATS)))
    importer.add_argument("file", type=Path, metavar="FILE")
    importer.add_argument("--out", type=Path, help="write here (default: stdout)")

    lift = commands.add_parser(
        "lift", help="conversion of triggered customers versus the holdout, per moment",
        description="From the trigger records (worker topics dumped to JSON lines, or "
        "`replay --offline` output) and the interaction log: per moment, the conversion "
        "rate within a window after each trigger for treated customers versus the "
        "holdout control group, the difference with a 95% confidence interval "
        "(Newcombe), and revenue per exposure. See docs/lift.md.")
    add_lift_arguments(lift)

    tail = commands.add_parser(
        "tail", help="follow an output topic live",
        description="Follow micro-moments, micro-moments-suppressed, segment-changes or "
        "interactions-dlq: new records (or --from-beginning), filtered, as a readable "
        "table or JSON lines; a summary line of counts and rates on exit.",
        epilog="examples:\n  segstream tail micro-moments --moment i_want_to_buy\n"
        "  segstream tail micro-moments-suppressed --reason quiet_hours --format table\n"
        "  segstream tail segment-changes --segment lapsed --change entered --count 10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _connection(tail)
    add_tail_arguments(tail)

    profile = commands.add_parser(
        "profile", help="one customer's current segments, features and scores",
        description="Ask a worker for a customer's current state: segments, every "
        "feature, scores, cart, consent, pending triggers. The request is routed to the "
        "worker that owns the key.")
    add_profile_arguments(profile)
    models = commands.add_parser(
        "models", help="the online models: versions, progressive ROC AUC, BG/NBD fits",
        description="Ask the workers' web API (GET /models) for each partition's models.")
    add_model_view_arguments(models)
    clusters = commands.add_parser(
        "clusters", help="the discovered microsegments, described for a marketer",
        description="Ask the workers' web API (GET /clusters): each cluster's archetype, "
        "centre in plain feature values, size and top categories.")
    add_model_view_arguments(clusters)

    simulate = commands.add_parser(
        "simulate", help="a realistic synthetic interaction log, to a file or Kafka",
        description="Seeded synthetic customers drawn from behavioural personas (loyal "
        "regular, bargain hunter, window shopper, lapsing customer, mobile-first, "
        "researcher), as JSON lines in time order. The same seed gives the same bytes.")
    simulate.add_argument("--customers", type=_positive, default=1000)
    simulate.add_argument("--days", type=float, default=30.0, help="span (default 30)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--start", type=_start, default="2026-01-05T00:00:00Z",
                          help="first instant: RFC 3339, epoch ms, or 'now' (default "
                          "2026-01-05)")
    simulate.add_argument("--out", type=Path, help="write here (default: stdout)")
    simulate.add_argument("--kafka", action="store_true",
                          help="produce into the interactions topic instead of writing")
    simulate.add_argument("--rate", type=float, default=None, metavar="EVENTS_PER_S",
                          help="with --kafka: at most this many events per second "
                          "(default: as fast as possible)")
    _connection(simulate)
    return parser


def _start(text: str) -> int:
    if text == "now":
        import time
        return time.time_ns() // 1_000_000
    return _timestamp(text)


def _load_definitions(path: Path | None) -> Definitions:
    try:
        return load_default() if path is None else load_definitions(path)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such definitions file") from exc
    except DefinitionsError as exc:
        raise UserError(str(exc)) from exc


def _run_worker(args: argparse.Namespace) -> int:
    import faust

    from streams.app import create_app
    from streams.topics import ensure_topics

    settings = Settings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix,
                        data_dir=args.data_dir, web_host=args.web_host, web_port=args.web_port,
                        partitions=args.partitions, clock=args.clock,
                        replication_factor=args.replication_factor,
                        definitions=args.definitions, max_event_bytes=args.max_event_bytes,
                        linger_ms=args.linger_ms, loglevel=args.loglevel,
                        checkpoint_updates=args.model_checkpoint_updates,
                        checkpoint_seconds=args.model_checkpoint_seconds)
    definitions = _load_definitions(args.definitions)
    partitions = ensure_topics(settings)
    app = create_app(settings, definitions, partitions)
    worker = faust.Worker(app, loglevel=settings.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0


def _run_topics(args: argparse.Namespace) -> int:
    from streams.topics import describe_topics, ensure_topics, format_topics

    if args.topics_command == "describe":
        infos = describe_topics(Settings(bootstrap=args.bootstrap,
                                         topic_prefix=args.topic_prefix))
        if args.format == "json":
            import dataclasses
            import json
            print(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
        else:
            print(format_topics(infos))
        return 0

    settings = Settings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix,
                        partitions=args.partitions,
                        replication_factor=args.replication_factor)
    partitions = ensure_topics(settings)
    print(f"topics ready with {partitions} partitions (prefix {settings.topic_prefix!r})")
    return 0


def _run_replay(args: argparse.Namespace) -> int:
    for path in args.files:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if args.offline:
        return _run_offline_replay(args)
    from streams.replay import replay_to_kafka

    unused = [flag for flag, value in (("--out", args.out), ("--definitions", args.definitions))
              if value is not None]
    if unused:
        raise UserError(f"segstream replay: {unused[0]} applies only with --offline")
    topic = Settings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix).topic(
        INTERACTIONS)
    summary = replay_to_kafka(args.files, args.bootstrap, topic, options_from_args(args))
    print(summary.summary(), file=sys.stderr)
    return 0


def _run_offline_replay(args: argparse.Namespace) -> int:
    from streams.tools.offline import replay_offline

    broker_only = [flag for flag, value in (
        ("--speed", args.speed), ("--rate", args.rate), ("--from", args.start),
        ("--key", args.key), ("--checkpoint", args.checkpoint)) if value is not None]
    if broker_only or args.skip:
        raise UserError(f"segstream replay: {(broker_only or ['--skip'])[0]} applies only "
                        "to a replay into Kafka, not with --offline")
    definitions = _load_definitions(args.definitions)
    if args.out is None:
        replay_offline(args.files, definitions, sys.stdout.buffer, until=args.until,
                       partitions=args.partitions, progress=args.progress)
    else:
        with args.out.open("wb") as out:
            replay_offline(args.files, definitions, out, until=args.until,
                           partitions=args.partitions, progress=args.progress)
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from streams.tools.importers import run_import

    if args.out is None:
        report = run_import(args.format, args.file, sys.stdout.buffer)
    else:
        with args.out.open("wb") as out:
            report = run_import(args.format, args.file, out)
    print(report.summary(), file=sys.stderr)
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    import tempfile

    import orjson

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
        out = sys.stdout.buffer if args.out is None else args.out.open("wb")
        try:
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
        finally:
            if args.out is not None:
                out.close()
        return 0
    from streams.replay import ReplayOptions, replay_to_kafka

    with tempfile.TemporaryDirectory(prefix="segstream-simulate-") as tmp:
        log = Path(tmp) / "simulated.jsonl"
        with log.open("wb") as out:
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
        topic = Settings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix).topic(
            INTERACTIONS)
        summary = replay_to_kafka([log], args.bootstrap, topic,
                                  ReplayOptions(rate=args.rate, progress=sys.stderr.isatty()))
    print(summary.summary(), file=sys.stderr)
    return 0


_COMMANDS = {"worker": _run_worker, "topics": _run_topics, "replay": _run_replay,
             "simulate": _run_simulate, "import": _run_import, "lift": run_lift,
             "tail": run_tail, "profile": run_profile, "models": run_models,
             "clusters": run_clusters}


def main(argv: Sequence[str] | None = None) -> int:
    from streams.topics import BrokerUnavailable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # the tools report a broker problem in one line of their own; kafka-python's
    # own error records would repeat it (the worker sets its levels itself)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        args = build_parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except (UserError, BrokerUnavailable) as exc:
        print(f"segstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
