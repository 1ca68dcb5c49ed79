"""A real terminal for the screen tests: a tmux session of fixed size, on a tmux server
of its own (``-L``), so other tmux users on the machine are never touched; read with
``capture-pane``. Killed when the ``with`` block ends, whatever happened."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 120, 30


class Screen:
    """One tmux pane running one command (kept on screen after it exits)."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def text(self, colours: bool = False) -> str:
        """What the pane shows now (``colours``: with its SGR escape sequences)."""
        return self.tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "screen")

    def wait_for(self, test: Callable[[str], object], timeout: float,
                 what: str) -> str:
        """The pane's text once ``test`` holds for it; fails after ``timeout`` seconds
        (a "no hang" bound, not a timing)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout}s; the screen:\n{text}")
            time.sleep(0.1)


@contextmanager
def screen(command: list[str]) -> Iterator[Screen]:
    """``command`` in a WIDTH x HEIGHT terminal; ``[exit N]`` is printed when it ends."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install tmux)", pytrace=False)
    socket = f"segstream-test-{uuid.uuid4().hex[:10]}"
    # no inherited COLUMNS/LINES (Rich would believe them) nor NO_COLOR
    shell = (f"env -u COLUMNS -u LINES -u NO_COLOR TERM=xterm-256color "
             f"{shlex.join(command)}; echo \"[exit $?]\"; sleep 600")
    started = subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "screen",
                              "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(ROOT), shell],
                             capture_output=True, text=True, timeout=30)
    try:
        assert started.returncode == 0, started.stderr
        yield Screen(socket)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=30)
        # the server leaves its socket file behind
        folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (folder / socket).unlink(missing_ok=True)


BAR = "━"


def bar_line(text: str) -> str | None:
    """The progress bar's line on the screen, if any."""
    return next((line for line in text.splitlines() if BAR in line), None)


def events_shown(line: str) -> int:
    """The events figure of a bar line."""
    found = re.search(r"([\d,]+) events ", line)
    assert found, line
    return int(found.group(1).replace(",", ""))


def assert_moving_bar(view: Screen, timeout: float = 120.0) -> tuple[str, str]:
    """Two captures of a bar under way, the second further on: a bar glyph, a rate
    and an ETA on both. The two lines."""
    def under_way(text: str) -> bool:
        line = bar_line(text)
        return line is not None and events_shown(line) > 0 and "%" in line \
            and "100%" not in line

    first = bar_line(view.wait_for(under_way, timeout, "bar under way"))
    assert first is not None
    second = bar_line(view.wait_for(
        lambda text: (line := bar_line(text)) is not None
        and events_shown(line) > events_shown(first), timeout, "bar moving on"))
    assert second is not None
    for line in (first, second):
        assert re.search(r"[\d,]+ events/s", line), line
        assert "ETA" in line, line
    assert re.search(r"ETA \d+:\d\d:\d\d", first) or re.search(r"ETA \d+:\d\d:\d\d", second)
    return first, second


def column_starts(line: str) -> list[int]:
    """Where each space-separated cell of ``line`` starts."""
    return [m.start() for m in re.finditer(r"(?:(?<=\s)|^)\S", line)]
