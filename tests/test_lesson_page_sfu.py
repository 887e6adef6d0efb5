"""A lesson in Chromium through the real SFU: the student decodes the teacher's video.

Real everything: Synapse with the module, the SFU as a subprocess (``python -m sfu``,
which serves the lesson page), two Chromium contexts with Chromium's fake camera. The
teacher signs in with a password; the student joins as an Element widget (OpenID).
Then: hand raised and seen in the teacher's queue, the teacher mutes and removes the
student.
"""

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from devtools.homeserver import REPO_ROOT
from tests.harness import RunningHomeserver, free_port, running_homeserver
from tests.test_lesson_page import chromium, element_host_page, poll
from tests.test_lessons import ClassRoom, make_class_room

pytestmark = pytest.mark.browser

SECRET = secrets.token_urlsafe(32)
SFU_PORT = free_port()
SFU_URL = f"http://127.0.0.1:{SFU_PORT}"
HOST_PORT = free_port()
API = "/_synapse/client/parta/v1"


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    config = {"media": {"enabled": True, "token_secret": SECRET, "sfu_public_url": SFU_URL + "/"}}
    with running_homeserver(tmp_path_factory.mktemp("sfu-page"), module_config=config) as running:
        yield running


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory, hs: RunningHomeserver) -> Iterator[str]:
    """The SFU as `make run` starts it, on its own port."""
    directory: Path = tmp_path_factory.mktemp("sfu")
    config_path = directory / "sfu.yaml"
    config = {
        "token_secret": SECRET,
        "listen_host": "127.0.0.1",
        "listen_port": SFU_PORT,
        "public_url": SFU_URL,
    }
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log = (directory / "sfu.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfu", "-c", str(config_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(proc, f"{SFU_URL}/health", directory / "sfu.log")
        yield SFU_URL
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SFU exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"SFU not healthy at {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def room(hs: RunningHomeserver) -> ClassRoom:
    return asyncio.run(make_class_room(hs, students=2))


@contextlib.asynccontextmanager
async def widget_host() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/host", element_host_page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", HOST_PORT).start()
    try:
        yield f"http://127.0.0.1:{HOST_PORT}"
    finally:
        await runner.cleanup()


async def frames_decoded(page: Any) -> int:
    stats = await page.evaluate("window.parta.conn.receiveStats()")
    return int(stats["framesDecoded"])


async def test_student_decodes_the_teachers_video_through_the_sfu(
    hs: RunningHomeserver, room: ClassRoom, sfu: str
) -> None:
    lesson = hs.request(
        "POST",
        f"{API}/rooms/{urllib.parse.quote(room.room_id, safe='')}/lessons",
        {"title": "Геометрия"},
        room.teacher.access_token,
    )
    # The link the module put into the room.
    async with hs.client(room.students[0]) as client:
        state = await client.room_get_state_event(
            room.room_id, "org.parta.lesson", lesson["lesson_id"]
        )
    link = state.content["url"]
    assert link.startswith(f"{sfu}/lesson/")

    student = room.students[0]
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(student.user_id)}/openid/request_token",
        {},
        student.access_token,
    )
    async with chromium() as browser, widget_host() as host:
        # The teacher opens the link and signs in.
        teacher_ctx = await browser.new_context(locale="ru-RU")
        teacher = await teacher_ctx.new_page()
        await teacher.goto(link)
        await teacher.wait_for_selector("#signin:not([hidden])")
        await teacher.fill("#user", room.teacher.localpart)
        await teacher.fill("#password", room.teacher.password)
        await teacher.click("#signin-button")
        await poll(teacher, "document.querySelector('#status').dataset.state === 'connected'")
        await poll(teacher, "!!window.parta.conn.published.camera")

        # The student opens the widget inside "Element".
        widget = (
            link
            + "&"
            + urllib.parse.urlencode(
                {"embed": "widget", "widgetId": "w1", "parentUrl": f"{host}/host"}
            )
        )
        student_ctx = await browser.new_context(locale="ru-RU")
        host_page = await student_ctx.new_page()
        query = urllib.parse.urlencode({"widget": widget, "openid": json.dumps(openid)})
        await host_page.goto(f"{host}/host?{query}")
        frame = None
        for _ in range(100):
            frame = next((f for f in host_page.frames if "/lesson/" in f.url), None)
            if frame is not None:
                break
            await asyncio.sleep(0.1)
        assert frame is not None
        await poll(frame, "window.parta.grant && window.parta.grant.role === 'student'")
        await poll(frame, "document.querySelector('#status').dataset.state === 'connected'")

        # The teacher's camera reaches the student and is decoded, frame after frame.
        await poll(
            frame,
            "Object.values(window.parta.conn.assignments).some(a => a && a.source === 'camera')",
        )
        await poll(frame, "window.parta.conn.receiveStats().then(s => s.framesDecoded > 0)")
        first = await frames_decoded(frame)
        await poll(
            frame,
            f"window.parta.conn.receiveStats().then(s => s.framesDecoded > {first + 30})",
        )
        # The tile says whose picture it is.
        caption = await frame.text_content(".tile:not(.local)[data-source='camera'] figcaption")
        assert caption == "Мария Ивановна"

        # A raised hand shows in the teacher's queue, with the student's name.
        await frame.click("#hand")
        await poll(teacher, "document.querySelector('#hands li[data-participant]') !== null")
        assert "Ученик 1" in (await teacher.text_content("#hands") or "")
        await teacher.click("#hands li[data-participant] button")
        await poll(teacher, "document.querySelector('#hands li[data-participant]') === null")

        # The teacher mutes the student: the student's microphone button is blocked.
        student_row = f"#people li[data-user='{student.user_id}']"
        await teacher.click(f"{student_row} button[data-action='mute']")
        await poll(frame, "document.querySelector('#mic').disabled")
        assert "выключил" in (await frame.text_content("#mic") or "")

        # Removal: the student is out, with the SFU's reason.
        teacher.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await teacher.click(f"{student_row} button[data-action='remove']")
        await poll(frame, "!document.querySelector('#message').hidden")
        await poll(teacher, f'document.querySelector("{student_row}") === null')
        await teacher_ctx.close()
        await student_ctx.close()
