"""A headless Chromium viewer with only the link plays the broadcast."""

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token, sign_viewer_link
from sfu.broadcast import BroadcastConfig, setup_broadcasts
from sfu.broadcast.directory import BroadcastInfo, LinkInfo
from tests.broadcast_support import H264Track, StaticDirectory, ToneTrack, publish
from tests.harness import free_port

SECRET = "browser-test-secret-0123456789abc"
CHROMIUM_FLAGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.mark.browser
async def test_chromium_viewer_plays_the_broadcast(tmp_path: Path) -> None:
    directory = StaticDirectory()
    directory.broadcasts["bc1"] = BroadcastInfo(
        "bc1", "!room", "Концерт", "live", ("@anna:school",), True, False
    )
    directory.links["l1"] = LinkInfo("l1", "bc1", revoked=False)
    port = free_port()
    config = BroadcastConfig(token_secret=SECRET, data_dir=str(tmp_path), listen_port=port)
    app = web.Application()
    setup_broadcasts(app, config, directory)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    token = sign_media_token(
        SECRET, "!room", "@anna:school", "Anna", "teacher", grant_for(Role.TEACHER)
    )
    speaker = await publish(base, "bc1", token, H264Track(luma=90, fps=25), ToneTrack(loud=True))
    link = f"{base}/watch/{sign_viewer_link(SECRET, 'bc1', 'l1', 3600)}/"
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
            )
            page = await browser.new_page()
            logs: list[str] = []
            page.on("console", lambda msg: logs.append(msg.text))
            await page.goto(link)
            deadline = time.monotonic() + 60
            first: float | None = None
            while True:
                current = await page.evaluate("document.getElementById('video').currentTime")
                if first is None and current > 0:
                    first = current
                if first is not None and current > first + 2:
                    break
                if time.monotonic() > deadline:
                    info = await page.evaluate(
                        "[document.getElementById('message').textContent,"
                        " MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.640015\"'),"
                        " document.getElementById('badge').textContent]"
                    )
                    raise AssertionError(f"the video did not play: {info} {logs}")
                await asyncio.sleep(0.25)
            badge = await page.text_content("#badge")
            viewers = await page.text_content("#viewers")
            assert badge == "В ЭФИРЕ" or badge == "LIVE"
            assert viewers is not None
            assert viewers.endswith("1")
            await page.click("#lang")
            assert await page.text_content("#lang") in ("English", "Русский")
            await browser.close()
    finally:
        await speaker.pc.close()
        await runner.cleanup()
