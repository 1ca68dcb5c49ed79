"""What a person sees on a terminal, decided in one place for every command.

An output that is a terminal gets Rich: progress bars with rate and ETA, tables that
fit its width, colour for entered/exited and sent/withheld (``NO_COLOR`` and
``TERM=dumb`` are honoured by Rich). Anything else (a pipe, a file, a test's
``StringIO``) keeps the plain text each command wrote before, so scripts reading it
see no escape codes. ``--format json`` never comes here.

Lives in ``streams`` (not ``streams.cli``) because ``streams.client`` renders too, and
``streams.cli`` imports every command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "THEME",
    "BarProgress",
    "Rows",
    "console",
    "is_terminal",
    "show",
    "state_style",
    "table",
]

# one colour per meaning, the same in every command (a Rich Theme of these styles)
THEME = {
    "entered": "green",
    "exited": "red",
    "sent": "green",
    "withheld": "yellow",
    "dead": "magenta",
    "missing": "red",
    "header": "bold",
    "muted": "dim",
}


def is_terminal(out: IO[str]) -> bool:
    """Whether ``out`` is a terminal (a closed or fake stream is not)."""
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # closed
        return False


def console(out: IO[str]) -> Console:
    """A Rich console writing to ``out``, with the theme; no guessing of highlights
    (customer ids and offsets are not to be coloured as numbers at random)."""
    from rich.console import Console
    from rich.theme import Theme

    return Console(file=out, theme=Theme(THEME), highlight=False, soft_wrap=False)


def state_style(state: str) -> str:
    """The style of an outcome or change: ``entered``, ``exited``, ``sent``, or any
    suppression reason (withheld)."""
    if state in ("entered", "exited", "sent"):
        return state
    return "withheld"


def table(headers: Sequence[str], rows: Sequence[Sequence[str | Text]], *,
          right: Sequence[int] = (), title: str | None = None) -> Table:
    """A table of ``rows`` under ``headers``; the columns in ``right`` are figures:
    right-aligned and never cut. The text columns wrap to fit the terminal's width
    (nothing is cut off: an id or a version is read whole)."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title, header_style="header", expand=False, pad_edge=False)
    for index, header in enumerate(headers):
        if index in right:
            widest = max((Text(str(row[index])).cell_len for row in rows), default=0)
            grid.add_column(header, justify="right", no_wrap=True,
                            min_width=max(widest, len(header)))
        else:  # wraps, but not below 10 cells: no column of one letter per line
            longest = max((Text(str(row[index])).cell_len for row in rows), default=0)
            grid.add_column(header, overflow="fold", min_width=min(max(longest, len(header)),
                                                                   10))
    for row in rows:
        grid.add_row(*row)
    return grid


class Rows:
    """Rows printed one by one as they come (``segstream tail``), aligned: fixed widths
    for every column but the last, which takes the rest of the terminal's width and is
    cut with an ellipsis. The header comes before the first row."""

    def __init__(self, out: IO[str], headers: Sequence[str], widths: Sequence[int]) -> None:
        self.console = console(out)
        self.headers, self.widths = list(headers), list(widths)
        self.started = False

    def _grid(self) -> Table:
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        for width in self.widths:
            grid.add_column(width=width, min_width=width, max_width=width, no_wrap=True,
                            overflow="ellipsis")
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        return grid

    def print(self, cells: Sequence[str | Text]) -> None:
        from rich.text import Text

        grid = self._grid()
        if not self.started:
            self.started = True
            grid.add_row(*(Text(h, style="header") for h in self.headers))
        grid.add_row(*cells)
        self.console.print(grid)
        self.console.file.flush()


class BarProgress:
    """The progress bar of a replay on a terminal: bytes read of the total (bar,
    percentage, MB), events and events/s, ETA and elapsed time; redrawn by Rich at most
    4 times a second, so :meth:`show` is cheap to call often. Same calls as
    :class:`streams.tools.progress.Progress`; :meth:`close` ends the bar (also after
    an error, so the cursor comes back)."""

    def __init__(self, out: IO[str], total_bytes: int, label: str = "replay", *,
                 unit: str = "bytes") -> None:
        """``unit``: what ``done_bytes`` counts, ``bytes`` (shown in MB) or ``events``
        (shown as done/total); a total of 0 is unknown (a moving pulse, no ETA)."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.started = time.monotonic()
        self.bar = Progress(
            TextColumn("[header]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[events]:>12,} events"),
            TextColumn("{task.fields[rate]:>9,.0f} events/s"),
            DownloadColumn(binary_units=False) if unit == "bytes" else MofNCompleteColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=console(out), refresh_per_second=4, transient=False)
        self.task = self.bar.add_task(label, total=total_bytes or None, events=0, rate=0.0)
        self.bar.start()
        self.closed = False

    def show(self, now: float, produced: int, done_bytes: int, final: bool = False) -> None:
        if self.closed:
            return
        rate = produced / max(now - self.started, 1e-9)
        self.bar.update(self.task, completed=done_bytes, events=produced, rate=rate)
        if final:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bar.stop()


def show(out: IO[str], plain: Callable[[], str], rich: Callable[[], RenderableType]) -> None:
    """A command's table view: ``rich()`` on a terminal, ``plain()`` (the text pipes and
    scripts have always read) anywhere else."""
    if is_terminal(out):
        console(out).print(rich())
    else:
        print(plain(), file=out)
