"""Check that ``segstream replay --offline`` still writes the records it wrote before a
change, byte for byte (the offline records carry no processing time).

    python bench/compare_outputs.py REFERENCE_DIR [--jobs N] [--python PYTHON]

For every ``NAME.jsonl`` in REFERENCE_DIR with a ``NAME.out`` beside it (made by the
code before the change; ``NAME-until.out`` for a replay with ``--until`` given in
``NAME-until.args``), replays NAME.jsonl with this tree and compares. Prints the
seconds per log and the first differing line; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def first_difference(expected: Path, got: Path) -> str | None:
    """None when the files are equal, else where they first differ."""
    with expected.open("rb") as a, got.open("rb") as b:
        for number, (left, right) in enumerate(zip(a, b, strict=False), start=1):
            if left != right:
                return f"line {number}:\n  expected {left[:300]!r}\n  got      {right[:300]!r}"
        rest_a, rest_b = a.read(1), b.read(1)
    if rest_a or rest_b:
        return "one file is longer than the other"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    failed = 0
    for expected in sorted(args.reference.glob("*.out")):
        name = expected.stem
        extra = args.reference / f"{name}.args"
        flags = extra.read_text().split() if extra.exists() else []
        log = args.reference / f"{name.removesuffix('-until')}.jsonl"
        with tempfile.TemporaryDirectory() as tmp:
            got = Path(tmp) / "out.jsonl"
            command = [args.python, "-m", "streams.cli", "replay", "--offline", str(log),
                       "--out", str(got), *flags]
            if args.jobs:
                command += ["--jobs", str(args.jobs)]
            started = time.perf_counter()
            subprocess.run(command, check=True)
            seconds = time.perf_counter() - started
            difference = first_difference(expected, got)
        print(f"{name}: {seconds:.1f} s, {'identical' if difference is None else 'DIFFERS'}")
        if difference is not None:
            print(difference)
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
