"""Headless Debian Chromium driven by Playwright (its own browser download does not
work here, so Playwright is pointed at /usr/bin/chromium)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is required for browser tests (apt-get install chromium); "
                    "./scripts/test.sh installs it", pytrace=False)
    return path


@contextmanager
def browser_page(base_url: str, *, artifacts: str = "browser") -> Iterator[object]:
    """A Playwright page in a fresh headless Chromium; screenshots go to test-artifacts/."""
    from playwright.sync_api import sync_playwright

    folder = ARTIFACTS / artifacts
    folder.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.artifacts = folder  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()
            browser.close()


def screenshot(page: object, name: str) -> Path:
    path = page.artifacts / f"{name}.png"  # type: ignore[attr-defined]
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
