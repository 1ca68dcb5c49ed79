"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright
(never ``playwright install``: the browser is the system's). Missing: under CI a
failure, elsewhere a skip saying why."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Debian's chromium (``.ci/run`` installs it when it is missing)
CHROMIUM = Path(os.environ.get("SEGSTREAM_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: the screenshots kept in docs/ (README, "Reports and dashboards")
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> Path:
    """The browser, or a failure under CI and a skip elsewhere."""
    found = CHROMIUM if CHROMIUM.is_file() else None
    if found is None and shutil.which("chromium"):
        found = Path(str(shutil.which("chromium")))
    if found is None:
        message = (f"no chromium at {CHROMIUM} nor on PATH: `apt-get install chromium` "
                   "(.ci/run installs it)")
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright ``Browser``), closed afterwards."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(path), args=ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """What a page wrote to its console as errors, and the exceptions it raised."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def number(text: str) -> float | None:
    """A figure as the pages write it ("12,345", "-"): its value, or None."""
    text = text.strip().replace(",", "")
    return None if text in ("", "-") else float(text)
