"""``segstream topics create`` and ``segstream topics describe``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from streams.cli.common import Commands, Parser, add_connection, connection, env, positive

__all__ = ["add_parser", "run_topics"]


def add_parser(commands: Commands) -> None:
    topics = commands.add_parser("topics", help="create the contract's topics")
    topics_commands = topics.add_subparsers(dest="topics_command", required=True,
                                            parser_class=Parser)
    create = topics_commands.add_parser("create", help="create missing topics")
    add_connection(create)
    create.add_argument("--partitions", type=positive, default=3)
    create.add_argument("--replication-factor", type=positive,
                        default=int(env("REPLICATION_FACTOR", 1)),
                        help="replicas of each topic (default 1; use 3 on a real cluster)")
    describe = topics_commands.add_parser(
        "describe", help="partitions, records, bytes, configs and the worker's lag")
    add_connection(describe)
    describe.add_argument("--format", choices=("table", "json"), default="table")
    topics.set_defaults(run=run_topics)


def run_topics(args: argparse.Namespace) -> int:
    from streams.client.topics import describe_topics, ensure_topics, format_topics, topics_table
    from streams.terminal import show

    if args.topics_command == "describe":
        infos = describe_topics(connection(args))
        if args.format == "json":
            import json
            print(json.dumps([dataclasses.asdict(i) for i in infos], indent=2))
        else:
            show(sys.stdout, lambda: format_topics(infos), lambda: topics_table(infos))
        return 0

    settings = dataclasses.replace(connection(args), partitions=args.partitions,
                                   replication_factor=args.replication_factor)
    partitions = ensure_topics(settings)
    print(f"topics ready with {partitions} partitions (prefix {settings.topic_prefix!r})")
    return 0
