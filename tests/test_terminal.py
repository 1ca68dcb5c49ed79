"""The screens of a person at a terminal, in a real one (tmux): ``replay --offline``
shows a moving Rich bar; the same replay into a pipe keeps the plain lines. ``import``
shows a bar while reading and one while writing, on a terminal only."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from streams.terminal import BarProgress
from streams.tools import importers
from tests.kafka_tools import segstream_command, write_simulated_log
from tests.terminal_screen import BAR, assert_moving_bar, screen
from tests.test_terminal_tables import Terminal

START = 1_767_225_600_000


def test_offline_replay_shows_a_moving_bar(tmp_path: Path) -> None:
    log = tmp_path / "sim.jsonl"
    write_simulated_log(log, customers=400, days=30, seed=3, start=START)
    with screen([*segstream_command(), "replay", "--offline", str(log), "--progress",
                 "--jobs", "1", "--out", "/dev/null"]) as view:
        assert_moving_bar(view)
        done = view.wait_for(lambda text: "[exit " in text, 300, "end of the replay")
        assert "[exit 0]" in done
        assert "100%" in done and " records in " in done  # the bar ends full, then the summary


def test_offline_replay_into_a_pipe_is_plain(tmp_path: Path) -> None:
    log = tmp_path / "sim.jsonl"
    write_simulated_log(log, customers=20, days=5, seed=3, start=START)
    done = subprocess.run([*segstream_command(), "replay", "--offline", str(log), "--progress",
                           "--jobs", "1", "--out", "/dev/null"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert BAR not in done.stderr and "\x1b[" not in done.stderr
    assert " MB (100%)" in done.stderr and " records in " in done.stderr


def _cdnow(path: Path, rows: int) -> Path:
    path.write_text("".join(f"{n % 97:05d} 1997{n % 12 + 1:02d}{n % 28 + 1:02d} 1 {n % 50}.25\n"
                            for n in range(rows)))
    return path


def _last_line(screen: str) -> str:
    """The last line drawn, without Rich's cursor and colour sequences."""
    text = re.sub(r"\x1b\[[?0-9;]*[A-Za-z]", "", screen)
    return [line for line in re.split(r"[\r\n]", text) if line.strip()][-1]


def test_import_shows_reading_and_writing_bars(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    screens: list[Terminal] = []

    def bars(label: str, total: int) -> BarProgress:
        screens.append(Terminal())
        return BarProgress(screens[-1], total, label, unit="events")

    out = io.BytesIO()
    report = importers.run_import("cdnow", _cdnow(tmp_path / "CDNOW.txt", 3000), out,
                                  progress=bars)
    assert report.written == 3000 == len(out.getvalue().splitlines())
    reading, writing = (_last_line(s.getvalue()) for s in screens)
    assert reading.startswith("reading CDNOW.txt") and "3,000 events" in reading
    assert writing.startswith("writing") and "100%" in writing and "3000/3000" in writing


def test_import_into_a_pipe_prints_only_the_summary(tmp_path: Path) -> None:
    done = subprocess.run([*segstream_command(), "import", "cdnow",
                           str(_cdnow(tmp_path / "CDNOW.txt", 30)), "--progress", "--out",
                           str(tmp_path / "out.jsonl")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "cdnow: 30 lines read, 30 events written (purchase 30)\n"
