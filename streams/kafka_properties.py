"""A Java ``client.properties`` file as (key, value, line) entries, with the
``${env:NAME}`` variables of Kafka's ``EnvVarConfigProvider`` resolved on request.

The file is read as UTF-8 with :mod:`javaproperties` (Java's syntax: ``=``, ``:`` or a
space between key and value, ``#``/``!`` comments, ``\\`` continuations and escapes).
Errors are :class:`KafkaConfigError` s naming the file and the line, never the value,
which may be a secret.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "client.properties"
>>> _ = path.write_text("# managed Kafka\\nsecurity.protocol = SASL_SSL\\n"
...                     "sasl.jaas.config=a \\\\\\n  b\\n")
>>> [(p.key, p.value, p.line) for p in read_properties(path)]
[('security.protocol', 'SASL_SSL', 2), ('sasl.jaas.config', 'a b', 3)]
>>> resolve("${env:HOME}", read_properties(path)[0], path) == os.environ["HOME"]
True
>>> resolve("${env:NO_SUCH_VARIABLE_HERE}", read_properties(path)[0], path)
Traceback (most recent call last):
...
streams.kafka_properties.KafkaConfigError: ...client.properties:2: security.protocol: the \
environment variable NO_SUCH_VARIABLE_HERE is not set
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import javaproperties

from streams.errors import UserError

__all__ = ["KafkaConfigError", "Property", "read_properties", "resolve"]

# Kafka's variable syntax: ${provider:[path:]key}; only the env provider is read here
VARIABLE = re.compile(r"\$\{([^}:]*):([^}]*)\}")


class KafkaConfigError(UserError):
    """A Kafka client configuration file that cannot be used, in one line."""


@dataclass(frozen=True)
class Property:
    key: str
    value: str
    line: int  # where the entry starts, from 1

    def error(self, path: Path, problem: str) -> KafkaConfigError:
        """``path:line: key: problem``."""
        return KafkaConfigError(f"{path}:{self.line}: {self.key}: {problem}")


def read_properties(path: Path) -> list[Property]:
    """The entries of ``path`` in order; a key given twice is an error (Java would
    quietly keep the last, which hides a mistake in a security setting)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KafkaConfigError(f"{path}: no such Kafka client configuration file "
                               "(--kafka-config, SEGSTREAM_KAFKA_CONFIG)") from None
    except UnicodeDecodeError as exc:
        line = text_line(path.read_bytes()[:exc.start])
        raise KafkaConfigError(f"{path}:{line}: not UTF-8 text") from None
    except OSError as exc:
        raise KafkaConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    found: list[Property] = []
    first: dict[str, int] = {}
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                if element.key in first:
                    raise KafkaConfigError(f"{path}:{line}: {element.key} is given twice "
                                           f"(first on line {first[element.key]})")
                first[element.key] = line
                found.append(Property(element.key, element.value, line))
            line += element.source.count("\n")
    except javaproperties.InvalidUEscapeError:
        raise KafkaConfigError(f"{path}:{line}: an invalid \\u escape") from None
    return found


def text_line(prefix: bytes) -> int:
    """The line the text after ``prefix`` is on."""
    return prefix.count(b"\n") + 1


def resolve(value: str, entry: Property, path: Path) -> str:
    """``value`` with each ``${env:NAME}`` replaced by that environment variable."""

    def substitute(match: re.Match[str]) -> str:
        provider, name = match.groups()
        if provider != "env":
            raise entry.error(path, f"only ${{env:NAME}} variables are read here, not "
                              f"${{{provider}:...}}")
        if name not in os.environ:
            raise entry.error(path, f"the environment variable {name} is not set")
        return os.environ[name]

    return VARIABLE.sub(substitute, value)
