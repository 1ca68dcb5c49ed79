"""The screens of a person at a terminal, in a real one (tmux): ``replay --offline``
shows a moving Rich bar; the same replay into a pipe keeps the plain lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.kafka_tools import segstream_command, write_simulated_log
from tests.terminal_screen import BAR, assert_moving_bar, screen

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
