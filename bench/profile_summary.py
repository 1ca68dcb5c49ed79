"""Summarise a py-spy profile (``py-spy record -f raw``) as the tables bench/README.md shows.

Usage: ``python bench/profile_summary.py PROFILE.txt [--top 25] [--group]``. Prints the
functions with the most samples inclusive (on the stack) and exclusive (at the top),
as shares of all samples; ``--group`` adds the share per area (the core's modules,
River, SciPy, Faust/mode/aiokafka, orjson, the rest).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")

AREAS = (
    ("core: rules (expressions, engine)", ("segments/expressions", "segments/engine",
                                           "<rule")),
    ("core: features, state, schedule", ("segments/features", "segments/state",
                                         "segments/schedule", "segments/buckets",
                                         "segments/timefmt", "segments/due",
                                         "segments/partition", "segments/rfm")),
    ("core: moments and records", ("segments/moments", "segments/records")),
    ("core: models", ("segments/models", "segments/btyd", "river/", "scipy/")),
    ("core: gate (decode, validate)", ("segments/gate", "fastjsonschema", "jsonschema_rs",
                                       "<string>")),
    ("core: codec and processor", ("segments/codec", "segments/processor")),
    ("Faust, mode, aiokafka", ("faust/", "mode/", "aiokafka/")),
    ("adapter (streams/)", ("streams/",)),
)


def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    return [f for f in stack.split(";") if f], int(count)


def label(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/work/main/", "/segments/", "/streams/"):
        if marker in path:
            path = path.split(marker, 1)[1] if marker.endswith("/") and marker != \
                "/segments/" and marker != "/streams/" else path[path.index(marker) + 1:]
            break
    return f"{match.group('function')} ({path})"


def area(frame: str) -> str | None:
    for name, markers in AREAS:
        if any(m in frame for m in markers):
            return name
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--group", action="store_true")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        total += count
        labels = [label(f) for f in stack]
        for name in set(labels):
            inclusive[name] += count
        if labels:
            exclusive[labels[-1]] += count
        # an area owns a sample by the innermost frame that belongs to any area
        owner = next((a for f in reversed(stack) if (a := area(f))), "other")
        areas[owner] += count
    print(f"{total:,} samples")
    print("\n| inclusive | function |\n|---:|---|")
    for name, n in inclusive.most_common(args.top):
        print(f"| {100 * n / total:.1f} % | `{name}` |")
    print("\n| exclusive | function |\n|---:|---|")
    for name, n in exclusive.most_common(args.top):
        print(f"| {100 * n / total:.1f} % | `{name}` |")
    if args.group:
        print("\n| area (innermost frame) | share |\n|---|---:|")
        for name, n in areas.most_common():
            print(f"| {name} | {100 * n / total:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
