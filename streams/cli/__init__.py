"""``segstream``: the command line, one module per command; flags fall back to
``SEGSTREAM_*`` variables (:mod:`streams.cli.common`).

Every command module adds its parser (``add_parser``) and names the function that runs
it (``run``). A user error, from a bad flag to an unreachable broker, is one line on
stderr and exit code 2. Only ``segstream worker`` imports Faust, when it runs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from streams.cli import (
    import_,
    lift,
    models,
    profile,
    replay,
    report,
    simulate,
    tail,
    topics,
    worker,
)
from streams.cli.common import Parser
from streams.errors import UserError

__all__ = ["build_parser", "main"]


def build_parser() -> Parser:
    parser = Parser(prog="segstream", description=(
        "Real-time behavioral segmentation and micro-moment triggers on Kafka."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    worker.add_parser(commands)
    topics.add_parser(commands)
    replay.add_parser(commands)
    import_.add_parser(commands)
    lift.add_parser(commands)
    report.add_parser(commands)
    tail.add_parser(commands)
    profile.add_parser(commands)
    models.add_parsers(commands)
    simulate.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from streams.client.topics import BrokerUnavailable

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # the tools report a broker problem in one line of their own; kafka-python's
    # own error records would repeat it (the worker sets its levels itself)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except (UserError, BrokerUnavailable) as exc:
        print(f"segstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
