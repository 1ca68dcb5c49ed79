"""``segstream report``: one self-contained HTML page of charts (segment sizes,
entries and exits, triggers by moment and outcome, overlap, timing, lift) from an
offline replay of event logs or from an outputs file; with ``--compare`` two
definitions files side by side. Numbers: :mod:`streams.tools.report`; page:
:mod:`streams.tools.report_html`."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from segments.definitions import Definitions
from streams.cli.common import Commands, add_definitions, load_definitions_file, parse_timestamp
from streams.cli.lift import add_window_arguments, parse_window
from streams.cli.replay import add_engine_arguments, default_partitions, run_offline
from streams.errors import UserError
from streams.terminal import BarProgress, console, is_terminal
from streams.tools.eventlog import read_jsonl

if TYPE_CHECKING:
    from streams.tools.report import ReportBuilder

__all__ = ["add_parser", "run_report"]


def add_parser(commands: Commands) -> None:
    report = commands.add_parser(
        "report", help="an HTML report of segments, triggers, overlap and lift",
        description="Write one self-contained HTML file (no network needed to open it) "
        "with segment sizes over time, entries and exits, triggers by moment and by "
        "outcome (sent or why withheld), the segment overlap at the end, time from event "
        "to trigger and time left to act, and lift per moment against the holdout. "
        "From --events alone it replays them through the engine here, as `segstream "
        "replay --offline` does; from --outputs (what `replay --offline --out` or the "
        "worker wrote) it reads those, and the events, if given, for the lift.",
        epilog="examples:\n  segstream report --events events.jsonl --out report.html\n"
        "  segstream report --events events.jsonl --compare new.toml --out compare.html\n"
        "  segstream report --outputs outputs.jsonl --events events.jsonl --out r.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("--events", type=Path, action="append", default=[], metavar="FILE",
                        help="interaction events (JSON lines, gzip or not; repeatable): "
                        "replayed here, unless --outputs is given")
    report.add_argument("--outputs", type=Path, action="append", default=[], metavar="FILE",
                        help="output records to read instead of replaying (repeatable)")
    add_definitions(report)
    report.add_argument("--compare", type=Path, metavar="OTHER.toml",
                        help="also replay the events with these definitions and show "
                        "both side by side (needs --events)")
    report.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the HTML file to write")
    report.add_argument("--save-outputs", type=Path, metavar="FILE",
                        help="also write the replay's output records here (JSON lines)")
    report.add_argument("--until", type=parse_timestamp,
                        help="replay: advance the clock to this instant at the end")
    add_engine_arguments(report, "replay: ")
    report.set_defaults(partitions=None)  # given or not: --outputs alone refuses them
    add_window_arguments(report)
    report.add_argument("--title", default="segstream report", help="the page's title")
    report.add_argument("--progress", action="store_true", default=False,
                        help="progress on stderr (default: when stderr is a terminal)")
    report.add_argument("--no-progress", action="store_true", default=False,
                        help="no progress")
    report.set_defaults(run=run_report)


def _check(args: argparse.Namespace) -> None:
    """Every user error before any work: one line each."""
    if not args.events and not args.outputs:
        raise UserError("segstream report: give --events FILE (to replay them) or "
                        "--outputs FILE (records already written)")
    if args.compare is not None and not args.events:
        raise UserError("segstream report: --compare replays the events: give --events")
    if args.save_outputs is not None and args.outputs:
        raise UserError("segstream report: --save-outputs applies to a replay, not with "
                        "--outputs")
    replay_only = [flag for flag, value in (("--until", args.until),
                                            ("--partitions", args.partitions),
                                            ("--jobs", args.jobs)) if value is not None]
    if args.outputs and args.compare is None and replay_only:
        verb = "applies" if len(replay_only) == 1 else "apply"
        raise UserError(f"segstream report: {', '.join(replay_only)} {verb} to a replay; "
                        "--outputs records are read as they were written")
    if args.partitions is None:
        args.partitions = default_partitions()
    for path in [*args.events, *args.outputs]:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if args.out.is_dir() or not args.out.parent.is_dir():
        raise UserError(f"--out {args.out}: not a file in an existing directory")
    if not isinstance(args.window, int):  # a Namespace built by hand
        try:
            args.window = parse_window(str(args.window))
        except argparse.ArgumentTypeError as exc:
            raise UserError(f"--window: {exc}") from exc


def _say(text: str, progress: bool) -> None:
    if not progress:
        return
    if is_terminal(sys.stderr):  # the step in bold; its details plain
        from rich.text import Text

        console(sys.stderr).print(Text.assemble(("segstream report: ", "header"), text))
    else:
        print(f"segstream report: {text}", file=sys.stderr, flush=True)


def _replay(args: argparse.Namespace, definitions: Definitions, progress: bool,
            save: IO[bytes] | None) -> tuple[ReportBuilder, dict[str, Any]]:
    from streams.tools.report import LineSink, ReportBuilder

    builder = ReportBuilder(definitions)
    sink = LineSink(builder, copy=save)
    summary = run_offline(args.events, definitions, cast(IO[bytes], sink), args, progress)
    sink.flush()
    return builder, summary


def _read(paths: list[Path], definitions: Definitions, progress: bool) -> ReportBuilder:
    from streams.tools.report import BadRecord, ReportBuilder

    builder = ReportBuilder(definitions)
    # on a terminal a bar counting the records (and their rate); elsewhere a line
    # every 100,000 records
    bar = (BarProgress(sys.stderr, 0, "reading outputs", unit="events")
           if progress and is_terminal(sys.stderr) else None)
    try:
        for path in paths:
            for line, record in enumerate(read_jsonl(path), 1):
                try:
                    builder.add(record)
                except BadRecord as exc:
                    raise UserError(f"{path}:{line}: {exc}") from None
                if bar is not None:
                    if not builder.records & 1023:
                        bar.show(time.monotonic(), builder.records, builder.records)
                elif progress and builder.records % 100_000 == 0:
                    _say(f"{builder.records:,} output records read", progress)
        if bar is not None:
            bar.show(time.monotonic(), builder.records, builder.records, final=True)
    finally:
        if bar is not None:
            bar.close()
    return builder


def run_report(args: argparse.Namespace) -> int:
    """Write the page; its path on stdout; return 0."""
    from streams.tools.report import compare
    from streams.tools.report_html import render

    _check(args)
    progress = args.progress or (not args.no_progress and sys.stderr.isatty())
    started = time.perf_counter()
    definitions = load_definitions_file(args.definitions)
    other = None if args.compare is None else load_definitions_file(args.compare)
    summary: dict[str, Any] = {}
    with ExitStack() as stack:
        save = (None if args.save_outputs is None
                else stack.enter_context(args.save_outputs.open("wb")))
        if args.outputs:
            builder = _read(args.outputs, definitions, progress)
        else:
            _say(f"replaying {', '.join(map(str, args.events))}", progress)
            builder, summary = _replay(args, definitions, progress, save)

    def events() -> Any:
        return chain.from_iterable(read_jsonl(p) for p in args.events) if args.events else None

    _say("counting" + (" and computing the lift" if args.events else ""), progress)
    report = builder.finish(events(), window_ms=args.window,
                            include_censored=args.include_censored, summary=summary)
    comparison = None
    if other is not None:
        _say(f"replaying with {args.compare}", progress)
        second, second_summary = _replay(args, other, progress, None)
        second_report = second.finish(summary=second_summary)
        first_name = "shipped definitions" if args.definitions is None else str(
            args.definitions.name)
        names = (first_name, str(args.compare.name))
        if names[0] == names[1]:
            names = (str(args.definitions), str(args.compare))
        comparison = compare(report, second_report, names,
                             (builder.last_segments, second.last_segments))
    page = render(report, comparison, title=args.title)
    try:
        args.out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --out {args.out}: {exc.strerror}") from None
    _say(f"{args.out} written in {time.perf_counter() - started:.1f}s "
         f"({len(page) / 1e6:.1f} MB)", progress)
    print(args.out)
    return 0
