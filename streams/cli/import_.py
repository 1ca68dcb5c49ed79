"""``segstream import FORMAT FILE``: a public log as interaction events
(:mod:`streams.tools.importers`). The module is ``import_``: ``import`` is a keyword."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streams.cli.common import Commands
from streams.tools import importers
from streams.tools.progress import Progress, Shown

__all__ = ["add_parser", "run_import"]


def add_parser(commands: Commands) -> None:
    importer = commands.add_parser(
        "import", help="turn a public event log into interaction events",
        description="Read a public log in its original format and write interaction "
        "events as JSON lines in time order, with deterministic event ids. A summary of "
        "what was read, written and skipped (by reason) goes to stderr. The mappings "
        "are in the README, 'Importing real logs'.")
    importer.add_argument("format", choices=sorted(importers.FORMATS), metavar="FORMAT",
                          help="one of: " + ", ".join(sorted(importers.FORMATS)))
    importer.add_argument("file", type=Path, metavar="FILE")
    importer.add_argument("--out", type=Path, help="write here (default: stdout)")
    importer.add_argument("--progress", action="store_true", default=False,
                          help="progress bars on stderr (default: when it is a terminal)")
    importer.add_argument("--no-progress", action="store_true", default=False,
                          help="no progress bars")
    importer.set_defaults(run=run_import)


def _bars(label: str, total: int) -> Shown:
    """Rich's bar on a terminal, counting events; elsewhere none (the summary says it)."""
    from streams.terminal import BarProgress, is_terminal

    if is_terminal(sys.stderr):
        return BarProgress(sys.stderr, total, label, unit="events")
    return Progress(sys.stderr, 0, enabled=False)


def run_import(args: argparse.Namespace) -> int:
    progress = args.progress or (not args.no_progress and sys.stderr.isatty())
    bars = _bars if progress else None
    if args.out is None:
        report = importers.run_import(args.format, args.file, sys.stdout.buffer, progress=bars)
    else:
        with args.out.open("wb") as out:
            report = importers.run_import(args.format, args.file, out, progress=bars)
    print(report.summary(), file=sys.stderr)
    return 0
