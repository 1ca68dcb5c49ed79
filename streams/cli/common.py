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
from streams.client.worker_api import WebAccess
from streams.errors import UserError
from streams.kafka_config import Secret
from streams.settings import Settings

__all__ = ["Commands", "Parser", "add_connection", "add_definitions", "add_web_token",
           "add_worker_access", "connection", "env", "load_definitions_file",
           "parse_timestamp", "positive", "token", "worker_access"]


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


def add_web_token(parser: argparse.ArgumentParser, flag: str, what: str) -> None:
    """``--<flag>`` (``SEGSTREAM_<FLAG>``) and ``--<flag>-file`` (``..._FILE``): a
    bearer token, given or read from a file so that it need not be on a command line
    (:func:`token` reads it)."""
    name = flag.upper().replace("-", "_")
    parser.add_argument(f"--{flag}", default=env(name, None), metavar="TOKEN",
                        help=f"{what} (SEGSTREAM_{name}; on a command line others on "
                        f"the machine can read it: prefer --{flag}-file or the variable)")
    parser.add_argument(f"--{flag}-file", type=Path, default=env(f"{name}_FILE", None),
                        metavar="FILE",
                        help=f"... or the file holding it (SEGSTREAM_{name}_FILE)")


def token(args: argparse.Namespace, flag: str) -> Secret | None:
    """The token of :func:`add_web_token`'s flags, or None."""
    from streams.web_auth import read_token

    attribute = flag.replace("-", "_")
    return read_token(getattr(args, attribute), getattr(args, f"{attribute}_file"), flag)


def add_worker_access(parser: argparse.ArgumentParser) -> None:
    """What a client of the workers' HTTP API sends and trusts: their token and CA."""
    add_web_token(parser, "web-token", "the token the workers were started with "
                  "(their --web-token)")
    parser.add_argument("--web-ca", type=Path, default=env("WEB_CA", None), metavar="FILE",
                        help="for an https:// worker: the CA (PEM) that signed its "
                        "certificate (SEGSTREAM_WEB_CA; default: the system's CAs)")


def worker_access(args: argparse.Namespace) -> WebAccess:
    """The token and CA of :func:`add_worker_access`'s flags."""
    return WebAccess(token(args, "web-token"), args.web_ca)


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
