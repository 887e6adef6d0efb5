"""Debian's headless Chromium driven by Playwright (test tools cannot download their own
browser here): the one place that knows the executable and the flags."""

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright


def chromium_path() -> str:
    """Debian's chromium; ``PARTA_CHROMIUM`` names another (or, in a test, a missing one)."""
    return os.environ.get("PARTA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium_missing() -> str | None:
    """Why there is no browser to drive, in words for a person; ``None`` when there is."""
    path = chromium_path()
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return None
    return (
        f"Chromium is not installed ({path}): the browser steps need Debian's chromium, "
        "which `make test` installs (or `make chromium`)"
    )


CHROMIUM = chromium_path()
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
