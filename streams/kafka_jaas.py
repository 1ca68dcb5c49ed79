"""The user name and password of a ``sasl.jaas.config`` value: one
``PlainLoginModule`` or ``ScramLoginModule`` entry, as Kafka's ``JaasConfig`` reads it
(options quoted with ``"`` or ``'``, or bare words; a ``;`` at the end).

Variables (``${env:NAME}``) are resolved in each option after the entry is split, so
a password from the environment may hold quotes or semicolons. Errors name the
option, never its value.

>>> from pathlib import Path
>>> entry = Property("sasl.jaas.config", "org.apache.kafka.common.security.plain."
...     "PlainLoginModule required username='key' password=\\"a \\\\\\"b\\\\\\" c\\";", 4)
>>> parse_jaas(entry, Path("client.properties"))
('key', 'a "b" c')
>>> parse_jaas(Property("sasl.jaas.config", "x.OAuthBearerLoginModule required;", 4),
...            Path("client.properties"))
Traceback (most recent call last):
...
streams.kafka_properties.KafkaConfigError: client.properties:4: sasl.jaas.config: \
OAuthBearerLoginModule is not supported: PlainLoginModule or ScramLoginModule
"""

from __future__ import annotations

import re
from pathlib import Path

from streams.kafka_properties import Property, resolve

__all__ = ["parse_jaas"]

MODULES = ("PlainLoginModule", "ScramLoginModule")
FLAGS = ("required", "requisite", "sufficient", "optional")
HEAD = re.compile(r"\s*(?P<module>[\w.$]+)\s+(?P<flag>\w+)")
OPTION = re.compile(r"""\s*(?P<name>[\w.$-]+)\s*=\s*(?:"(?P<double>(?:[^"\\]|\\.)*)"|"""
                    r"""'(?P<single>(?:[^'\\]|\\.)*)'|(?P<bare>[^\s;"'=]+))""", re.S)
END = re.compile(r"\s*;?\s*")
ESCAPE = re.compile(r"\\(.)", re.S)


def parse_jaas(entry: Property, path: Path) -> tuple[str, str]:
    """``(username, password)`` of the login module in ``entry``'s value."""
    text = entry.value
    head = HEAD.match(text)
    if head is None:
        raise entry.error(path, "expected a login module and a control flag, as in "
                          "'org.apache.kafka.common.security.plain.PlainLoginModule "
                          "required username=\"...\" password=\"...\";'")
    module = head["module"].rsplit(".", 1)[-1]
    if module not in MODULES:
        raise entry.error(path, f"{module} is not supported: {' or '.join(MODULES)}")
    if head["flag"] not in FLAGS:
        raise entry.error(path, f"{head['flag']!r} is not a control flag: "
                          f"{', '.join(FLAGS)}")
    options: dict[str, str] = {}
    position = head.end()
    while (option := OPTION.match(text, position)) is not None:
        name = option["name"]
        if name not in ("username", "password"):
            raise entry.error(path, f"option {name} is not supported (only username and "
                              "password)")
        if name in options:
            raise entry.error(path, f"option {name} is given twice")
        raw = option["bare"] if option["bare"] is not None else (
            option["double"] if option["double"] is not None else option["single"])
        options[name] = ESCAPE.sub(r"\1", raw)
        position = option.end()
    if END.fullmatch(text, position) is None:
        after = f" after option {list(options)[-1]}" if options else ""
        raise entry.error(path, f"cannot read the text{after}: quote each value, and end "
                          "the entry with ';' (one login module only)")
    missing = [name for name in ("username", "password") if name not in options]
    if missing:
        raise entry.error(path, f"{module} has no {missing[0]} option")
    return (resolve(options["username"], entry, path).strip(),
            resolve(options["password"], entry, path))
