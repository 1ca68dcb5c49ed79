"""segstream's domain core: state, features, rules, moments. No Kafka, no Faust.

Data flows one way: :mod:`~segments.gate` (decode, validate) -> :mod:`~segments.state`
(update) -> :mod:`~segments.engine` (evaluate) -> :mod:`~segments.records` (emit), driven
by :class:`~segments.processor.Processor`.
"""

from segments.definitions import Definitions, load_default, load_definitions, parse_definitions
from segments.engine import Engine
from segments.gate import Gate, GateConfig
from segments.processor import MemoryStore, Processor, Source

__all__ = [
    "Definitions",
    "Engine",
    "Gate",
    "GateConfig",
    "MemoryStore",
    "Processor",
    "Source",
    "load_default",
    "load_definitions",
    "parse_definitions",
]
