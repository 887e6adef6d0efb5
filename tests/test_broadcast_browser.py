"""A headless Chromium viewer with only the link plays the broadcast."""

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from broadcast_relay import SERVICE_KEY, BroadcastConfig, setup_broadcasts
from broadcast_relay.directory import BroadcastInfo, LinkInfo
from parta_common.roles import Role
from parta_common.tokens import grant_for, sign_media_token, sign_viewer_link
from tests.broadcast_support import H264Track, StaticDirectory, ToneTrack, publish
from tests.browser import CHROMIUM
from tests.browser import FLAGS as CHROMIUM_FLAGS
from tests.harness import free_port

SECRET = "browser-test-secret-0123456789abc"


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
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
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


@pytest.mark.browser
async def test_chromium_speaker_page_publishes_over_whip(tmp_path: Path) -> None:
    directory = StaticDirectory()
    directory.broadcasts["bc2"] = BroadcastInfo(
        "bc2", "!room", "Линейка", "live", ("@anna:school",), True, False
    )
    port = free_port()
    config = BroadcastConfig(token_secret=SECRET, data_dir=str(tmp_path), listen_port=port)
    app = web.Application()
    setup_broadcasts(app, config, directory)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    token = sign_media_token(
        SECRET, "!room", "@anna:school", "Anna", "teacher", grant_for(Role.TEACHER)
    )
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/speak/bc2#token={token}")
            await page.click("#camera")
            service = app[SERVICE_KEY]
            deadline = time.monotonic() + 60
            while (
                "bc2" not in service.broadcasts
                or len(service.broadcasts["bc2"].writer.segments) < 3
            ):
                message = await page.text_content("#message")
                assert not message, message
                assert time.monotonic() < deadline, "the speaker page did not go live"
                await asyncio.sleep(0.25)
            broadcast = service.broadcasts["bc2"]
            assert await page.evaluate("window.partaSpeaking") == 1
            source = next(iter(broadcast.speakers.values())).sources[0]
            assert source.frames > 10 and source.keyframes >= 1
            await page.click("#stop")
            deadline = time.monotonic() + 20
            while broadcast.speakers:
                assert time.monotonic() < deadline, "DELETE did not end the session"
                await asyncio.sleep(0.1)
            await browser.close()
    finally:
        await runner.cleanup()
