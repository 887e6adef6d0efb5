"""The lesson page in Debian's headless Chromium, against the real Synapse of the harness.

What is proved here: the page signs in with Matrix credentials on its own, or as an
Element widget through the widget API (capabilities, ``get_openid``), and turns either
into a media token from the module; it speaks Russian by default and English on request.
"""

import asyncio
import contextlib
import json
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from parta_common import tokens
from sfu.static import setup_static
from tests.browser import CHROMIUM
from tests.browser import FLAGS as CHROMIUM_FLAGS
from tests.harness import RunningHomeserver, free_port, running_homeserver
from tests.test_lessons import ClassRoom, make_class_room, wait_until_module_ready

pytestmark = pytest.mark.browser

SECRET = secrets.token_urlsafe(32)
PAGE_PORT = free_port()
PAGE_URL = f"http://127.0.0.1:{PAGE_PORT}"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    config = {"media": {"enabled": True, "token_secret": SECRET, "sfu_public_url": PAGE_URL}}
    with running_homeserver(tmp_path_factory.mktemp("page"), module_config=config) as running:
        wait_until_module_ready(running, SECRET)
        yield running


@pytest.fixture(scope="module")
def room(hs: RunningHomeserver) -> ClassRoom:
    return asyncio.run(make_class_room(hs, students=1))


@contextlib.asynccontextmanager
async def page_server(extra: web.Application | None = None) -> AsyncIterator[str]:
    """The lesson page's routes (``setup_static``) on PAGE_PORT, plus a widget host page."""
    app = web.Application()
    setup_static(app)
    app.router.add_get("/host", element_host_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", PAGE_PORT)
    await site.start()
    try:
        yield PAGE_URL
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def lesson_path(room_id: str, hs: RunningHomeserver, **extra: str) -> str:
    query = urllib.parse.urlencode({"lesson": "0123456789abcdef", "hs": hs.base_url, **extra})
    return f"/lesson/{urllib.parse.quote(room_id, safe='')}?{query}"


async def poll(page: Any, expression: str, seconds: float = 20.0) -> Any:
    """Wait until ``expression`` is truthy in the page; return its value.

    (``evaluate`` rather than ``wait_for_function``: the page's CSP forbids eval, and the
    test keeps the CSP on.)
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await page.evaluate(expression)
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{expression!r} stayed falsy for {seconds} s")
        await asyncio.sleep(0.1)


async def test_page_signs_in_with_matrix_credentials(
    hs: RunningHomeserver, room: ClassRoom
) -> None:
    async with page_server() as base, chromium() as browser:
        page = await browser.new_page(locale="ru-RU")
        await page.goto(base + lesson_path(room.room_id, hs))
        await page.wait_for_selector("#signin:not([hidden])")
        assert await page.text_content("#signin h1") == "Вход на урок"
        # The homeserver comes from the link the module made.
        assert await page.input_value("#hs") == hs.base_url

        # A wrong password: the form stays, with Synapse's reason.
        await page.fill("#user", room.teacher.localpart)
        await page.fill("#password", "wrong")
        await page.click("#signin-button")
        error = await poll(page, "document.querySelector('#signin-error').textContent")
        assert "password" in error.lower() or "парол" in error.lower()

        await page.fill("#password", room.teacher.password)
        await page.click("#signin-button")
        role = await poll(page, "window.parta.grant && window.parta.grant.role")
        assert role == "teacher"
        grant = await page.evaluate("window.parta.grant")
        claims = tokens.verify_media_token(grant["token"], SECRET, room_id=room.room_id)
        assert claims.user_id == room.teacher.user_id
        assert claims.grants.moderate
        assert await page.is_hidden("#signin")
        # The session survives a reload (sessionStorage), no second sign-in.
        await page.reload()
        role = await poll(page, "window.parta.grant && window.parta.grant.role")
        assert role == "teacher"
        assert await page.is_hidden("#signin")


async def test_page_speaks_english_and_explains_refusals(
    hs: RunningHomeserver, room: ClassRoom
) -> None:
    async with page_server() as base, chromium() as browser:
        page = await browser.new_page(locale="ru-RU")
        await page.goto(base + lesson_path(room.room_id, hs, lang="en"))
        await page.wait_for_selector("#signin:not([hidden])")
        assert await page.text_content("#signin h1") == "Join the lesson"
        # Someone who is not in the room: the module's refusal, in the page's language
        # (from the error's catalogue id, not the bilingual text).
        await page.fill("#user", room.outsider.localpart)
        await page.fill("#password", room.outsider.password)
        await page.click("#signin-button")
        text = await poll(
            page,
            "!document.querySelector('#message').hidden && "
            "document.querySelector('#message-text').textContent",
        )
        assert "not a member" in text
        assert "не участник" not in text

        # The browser's language decides when the link does not.
        page = await browser.new_page(locale="en-GB")
        await page.goto(base + lesson_path(room.room_id, hs))
        await page.wait_for_selector("#signin:not([hidden])")
        assert await page.text_content("#signin h1") == "Join the lesson"


async def element_host_page(request: web.Request) -> web.Response:
    """Plays Element's part of the widget API: capabilities, then OpenID on request."""
    widget_url = request.query["widget"]
    openid = request.query["openid"]
    html = f"""<!doctype html><meta charset="utf-8"><title>host</title>
<iframe id="w" allow="camera; microphone; display-capture; autoplay"
        width="900" height="600"></iframe>
<script>
const widgetUrl = {json.dumps(widget_url)};
const openid = {openid};
const frame = document.getElementById("w");
window.log = [];
window.addEventListener("message", (event) => {{
  const msg = event.data;
  if (!msg || msg.api !== "fromWidget") {{
    if (msg && msg.api === "toWidget" && msg.response) window.log.push("response:" + msg.action);
    return;
  }}
  window.log.push("request:" + msg.action);
  let response = {{}};
  if (msg.action === "get_openid") response = {{state: "allowed", ...openid}};
  frame.contentWindow.postMessage({{...msg, response}}, "*");
}});
frame.addEventListener("load", () => {{
  frame.contentWindow.postMessage({{api: "toWidget", widgetId: "w1", requestId: "cap1",
    action: "capabilities", data: {{}}}}, "*");
}});
frame.src = widgetUrl;
</script>"""
    return web.Response(text=html, content_type="text/html")


async def test_page_as_element_widget_uses_openid(hs: RunningHomeserver, room: ClassRoom) -> None:
    student = room.students[0]
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(student.user_id)}/openid/request_token",
        {},
        student.access_token,
    )
    async with page_server() as base, chromium() as browser:
        widget = base + lesson_path(
            room.room_id,
            hs,
            embed="widget",
            widgetId="w1",
            parentUrl=f"{base}/host",
            lang="ru",
        )
        query = urllib.parse.urlencode({"widget": widget, "openid": json.dumps(openid)})
        page = await browser.new_page()
        await page.goto(f"{base}/host?{query}")
        frame = None
        for _ in range(100):
            frame = next((f for f in page.frames if "/lesson/" in f.url), None)
            if frame is not None:
                break
            await asyncio.sleep(0.1)
        assert frame is not None
        role = await poll(frame, "window.parta && window.parta.grant && window.parta.grant.role")
        assert role == "student"
        grant = await frame.evaluate("window.parta.grant")
        claims = tokens.verify_media_token(grant["token"], SECRET, room_id=room.room_id)
        assert claims.user_id == student.user_id
        assert not claims.grants.moderate
        # The widget answered the capability request and asked for OpenID, no sign-in form.
        log = await page.evaluate("window.log")
        assert "response:capabilities" in log
        assert "request:get_openid" in log
        assert await frame.is_hidden("#signin")
