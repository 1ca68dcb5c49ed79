"""What the commands share: the parser that reports a bad flag as a :class:`UserError`,
defaults from ``SEGSTREAM_*`` variables, the connection and definitions flags, the
argument types, and loading a definitions file.

>>> parse_timestamp("2026-01-01T00:00:00Z"), parse_timestamp("1767225600000")
(1767225600000, 1767225600000)
>>> positive("3")
3
>>> Parser(prog="segstream x").parse_args(["--nope"])
Traceback (most recent call last):
...
streams.errors.UserError: segstream x: unrecognized arguments: --nope
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from segments.definitions import Definitions, DefinitionsError, load_default, load_definitions
from segments.timefmt import TimestampError, parse_ts
from streams.client.connect import DEFAULT_BOOTSTRAP, resolve_settings
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["Commands", "Parser", "add_connection", "add_definitions",
           "connection", "env", "load_definitions_file", "parse_timestamp", "positive"]


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one-line :class:`UserError` s (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


Commands = argparse._SubParsersAction  # what each command module adds its parser to


def env(name: str, default: Any) -> Any:
    """``SEGSTREAM_<name>``, or ``default``."""
    return os.environ.get(f"SEGSTREAM_{name}", default)


def add_connection(parser: argparse.ArgumentParser) -> None:
    """``--bootstrap``, ``--kafka-config`` and ``--topic-prefix``."""
    parser.add_argument("--bootstrap", default=None,
                        help="Kafka bootstrap servers (default: bootstrap.servers of "
                        f"--kafka-config, else SEGSTREAM_BOOTSTRAP, else {DEFAULT_BOOTSTRAP})")
    parser.add_argument("--kafka-config", type=Path, default=env("KAFKA_CONFIG", None),
                        metavar="FILE",
                        help="a Kafka client.properties file: security.protocol, "
                        "sasl.mechanism, sasl.jaas.config, ssl.truststore.location ... "
                        "(SEGSTREAM_KAFKA_CONFIG; secrets may be ${env:NAME}; see README, "
                        "Security)")
    parser.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""),
                        help="prefix of every topic name (SEGSTREAM_TOPIC_PREFIX)")


def connection(args: argparse.Namespace) -> Settings:
    """The settings named by :func:`add_connection`'s flags
    (:func:`streams.client.connect.resolve_settings`)."""
    return resolve_settings(args.bootstrap, args.kafka_config, args.topic_prefix)


def add_definitions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--definitions", type=Path, default=env("DEFINITIONS", None),
                        help="segments and moments TOML file (default: the shipped one)")


def load_definitions_file(path: Path | None) -> Definitions:
    """The definitions in ``path`` (the shipped ones for ``None``); errors in one line."""
    try:
        return load_default() if path is None else load_definitions(path)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: no such definitions file") from exc
    except DefinitionsError as exc:
        raise UserError(str(exc)) from exc


def parse_timestamp(text: str) -> int:
    """RFC 3339 with an offset, or epoch milliseconds."""
    try:
        return parse_ts(int(text) if text.isdigit() else text)
    except TimestampError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _at_least(text: str, convert: Callable[[str], Any], accept: Callable[[Any], bool],
              what: str) -> Any:
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1."""
    return int(_at_least(text, int, lambda v: v >= 1, "a whole number of at least 1"))


def non_negative(text: str) -> int:
    """A whole number of at least 0."""
    return int(_at_least(text, int, lambda v: v >= 0, "a whole number of at least 0"))


def seconds(text: str) -> float:
    """A duration in seconds, more than 0."""
    return float(_at_least(text, float, lambda v: 0 < v < float("inf"),
                           "a number of seconds above 0"))
