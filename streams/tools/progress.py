"""The broker replay's progress line: events, rate, megabytes read of the total, ETA.

The total is the files' size, uncompressed: for gzip, the ISIZE field of the trailer
(exact for one member below 4 GiB). The line is rewritten in place (``\\r``) at most
every :data:`PROGRESS_SECONDS`, and ends with a newline when the replay is done. On a
terminal, :func:`progress_for` gives Rich's bar instead (:mod:`streams.terminal`).
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import IO, Protocol

from streams.tools.eventlog import is_gzip

__all__ = ["PROGRESS_SECONDS", "Progress", "progress_for", "total_size",
           "uncompressed_size"]

PROGRESS_SECONDS = 0.25     # at most 4 progress lines a second


def uncompressed_size(path: Path) -> int:
    """File size; for gzip the trailer's ISIZE (exact below 4 GiB, one member)."""
    size = path.stat().st_size
    if size < 18 or not is_gzip(path):
        return size
    with path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return int(struct.unpack("<I", handle.read(4))[0])


def total_size(paths: list[Path]) -> int:
    """The files' uncompressed sizes summed; a missing one counts 0 (its error comes
    when it is opened, as without a progress bar)."""
    return sum(uncompressed_size(p) for p in paths if p.is_file())


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Shown(Protocol):
    """What a replay calls: the plain line or the Rich bar."""

    def show(self, now: float, produced: int, done_bytes: int,
             final: bool = False) -> None: ...

    def close(self) -> None: ...


def progress_for(out: IO[str], total_bytes: int, enabled: bool,
                 label: str = "replay") -> Shown:
    """Rich's bar when ``out`` is a terminal, else the plain line (off: does nothing)."""
    from streams.terminal import BarProgress, is_terminal

    if enabled and is_terminal(out):
        return BarProgress(out, total_bytes, label)
    return Progress(out, total_bytes, enabled)


class Progress:
    """The line on ``out``; :meth:`show` is cheap to call often (off: does nothing)."""

    def __init__(self, out: IO[str], total_bytes: int, enabled: bool) -> None:
        self.out = out
        self.total = total_bytes
        self.enabled = enabled
        self.started = time.monotonic()
        self.next = self.started
        self.width = 0

    def show(self, now: float, produced: int, done_bytes: int, final: bool = False) -> None:
        if not self.enabled or (now < self.next and not final):
            return
        self.next = now + PROGRESS_SECONDS
        elapsed = max(now - self.started, 1e-9)
        text = f"{produced:,} events  {produced / elapsed:,.0f}/s"
        if self.total > 0:
            fraction = min(done_bytes / self.total, 1.0)
            text += f"  {done_bytes / 1e6:,.1f}/{self.total / 1e6:,.1f} MB ({fraction:.0%})"
            if not final and 0 < fraction < 1:
                text += f"  ETA {_clock(elapsed * (1 - fraction) / fraction)}"
        text += f"  {_clock(elapsed)}"
        pad = " " * max(self.width - len(text), 0)
        self.width = len(text)
        self.out.write(f"\r{text}{pad}" + ("\n" if final else ""))
        self.out.flush()

    def close(self) -> None:
        """Nothing to end: the last line is already written."""
