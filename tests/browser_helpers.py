"""Shared by the browser tests: Debian's chromium driven by Playwright (browser downloads
are blocked, so Playwright launches /usr/bin/chromium), one browser per test module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NO_CHROMIUM = ("Debian's chromium (/usr/bin/chromium) is not installed; `apt-get install chromium` "
               "(CI's .ci/run does) to run the browser tests")
#: the longest the page may take for one step (requests, rendering); not a speed assertion
STEP_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """A headless chromium for the module's tests (skipped without chromium, failed on CI)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # CI installs chromium (.ci/run): a missing browser is a failure there
            pytest.fail(NO_CHROMIUM)
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
