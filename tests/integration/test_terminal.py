"""The screens of a person at a terminal, in a real one (tmux), against the real broker:
``replay`` shows a moving Rich bar; ``tail --format table`` shows aligned, coloured rows
cut to the terminal's width, while a pipe keeps the plain lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from tests.integration.test_tail import RULES, event, tail
from tests.kafka_tools import running_worker, segstream_command, write_simulated_log
from tests.terminal_screen import WIDTH, assert_moving_bar, column_starts, screen

START = 1_767_225_600_000


def test_replay_to_the_broker_shows_a_moving_bar(bootstrap: str, prefix: str,
                                                 tmp_path: Path) -> None:
    log = tmp_path / "sim.jsonl"
    lines = write_simulated_log(log, customers=60, days=10, seed=5, start=START)
    connection = ["--bootstrap", bootstrap, "--topic-prefix", prefix]
    created = subprocess.run([*segstream_command(), "topics", "create", *connection],
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    # --rate: a replay long enough to watch, whatever the machine
    with screen([*segstream_command(), "replay", str(log), "--progress", "--rate", "1500",
                 *connection]) as view:
        assert_moving_bar(view)
        done = view.wait_for(lambda text: "[exit " in text, 300, "end of the replay")
        assert "[exit 0]" in done, done
        assert f"{len(lines):,} events" in done and "100%" in done


def _story(tmp_path: Path) -> Path:
    # ids of different lengths, so aligned columns are not a coincidence
    who = ["ann", "customer-with-a-long-id", "bo"]
    story = [event(n, name, "consent_update", marketing=True) for n, name in enumerate(who)]
    story += [event(10 + n, name, "search", query="boots") for n, name in enumerate(who)]
    story += [event(20, "nobody-consented", "search", query="x"),
              event(21, "ann", "purchase", order_id="o1", revenue=10.0),
              event(22, "customer-with-a-long-id", "purchase", order_id="o2", revenue=5.0)]
    log = tmp_path / "story.jsonl"
    log.write_bytes(b"".join(line + b"\n" for _, line in story))
    return log


def _rows(text: str, header: str) -> tuple[str, list[str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    head = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = [line for line in lines[head + 1:] if line.startswith("2026-")]
    return lines[head], rows


def test_tail_shows_aligned_coloured_rows(bootstrap: str, prefix: str, tmp_path: Path) -> None:
    definitions = tmp_path / "d.toml"
    definitions.write_text(RULES)
    connection = ["--bootstrap", bootstrap, "--topic-prefix", prefix]
    with running_worker(bootstrap, prefix, tmp_path, "--definitions", str(definitions),
                        "--clock", "event"):
        replayed = subprocess.run([*segstream_command(), "replay", str(_story(tmp_path)),
                                   "--no-progress", *connection],
                                  capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0, replayed.stderr
        # the pipe first: it also waits until the worker has written the records
        piped = tail(bootstrap, prefix, "micro-moments", "--from-beginning", "--count", "3",
                     "--format", "table", "--idle", "60")
        assert piped.returncode == 0, piped.stderr
        assert "\x1b[" not in piped.stdout and len(piped.stdout.splitlines()) == 3

        for topic, header, fixed, count in (("micro-moments", "at ", 6, 3),
                                            ("segment-changes", "at ", 4, 2)):
            with screen([*segstream_command(), "tail", topic, "--from-beginning",
                         "--format", "table", "--count", str(count), "--idle", "60",
                         *connection]) as view:
                text = view.wait_for(lambda t: "[exit " in t, 120, f"end of tail {topic}")
                assert "[exit 0]" in text, text
                head, rows = _rows(text, header)
                assert len(rows) == count, text
                starts = column_starts(head)[:fixed]
                assert len(starts) == fixed, head
                for row in rows:  # every column but the last starts where its header does
                    assert column_starts(row)[:fixed] == starts, (head, row)
                    assert len(row) <= WIDTH
                coloured = view.text(colours=True)
            if topic == "micro-moments":
                assert {row.split()[1] for row in rows} == {"ann", "bo",
                                                            "customer-with-a-long-id"}
                assert all(row.split()[5] == "sent" for row in rows), rows
                assert "\x1b[32msent" in coloured, coloured  # sent: green
            else:
                assert all(row.split()[2] == "+buyer" for row in rows), rows
                assert "\x1b[32m+buyer" in coloured, coloured  # entered: green

        withheld = tail(bootstrap, prefix, "micro-moments-suppressed", "--from-beginning",
                        "--count", "1", "--format", "json", "--idle", "60")
        assert orjson.loads(withheld.stdout)["suppressed"] == "no_consent"
        with screen([*segstream_command(), "tail", "micro-moments-suppressed",
                     "--from-beginning", "--format", "table", "--count", "1", *connection]) \
                as view:
            view.wait_for(lambda t: "[exit 0]" in t, 120, "end of tail")
            assert "\x1b[33mno_consent" in view.text(colours=True)  # withheld: yellow
