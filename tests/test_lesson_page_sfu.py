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
from tests.harness import RunningHomeserver, User, free_port, running_homeserver
from tests.roster_helpers import School, api, build_school
from tests.test_lesson_page import chromium, element_host_page, poll
from tests.test_lessons import ClassRoom, make_class_room, wait_until_module_ready

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
        wait_until_module_ready(running, SECRET)
        yield running


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory, hs: RunningHomeserver) -> Iterator[str]:
    """The real SFU (`python -m sfu`) in its own process, reporting attendance."""
    directory: Path = tmp_path_factory.mktemp("sfu")
    config_path = directory / "sfu.yaml"
    config = {
        "token_secret": SECRET,
        "listen_host": "127.0.0.1",
        "listen_port": SFU_PORT,
        "public_url": SFU_URL,
        "homeserver_url": hs.base_url,
        "data_dir": str(directory),
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


def element_widget_url(template: str, room_id: str, user: User, name: str, host: str) -> str:
    """What Element does with a widget URL: fill in the variables, add widgetId and parentUrl."""
    values = {
        "$matrix_room_id": room_id,
        "$matrix_user_id": user.user_id,
        "$matrix_display_name": name,
        "$org.matrix.msc2873.client_language": "ru",
    }
    url = template
    for variable in sorted(values, key=len, reverse=True):
        url = url.replace(variable, urllib.parse.quote(values[variable], safe=""))
    return url + "&" + urllib.parse.urlencode({"widgetId": "w1", "parentUrl": f"{host}/host"})


async def test_a_lesson_from_start_to_attendance_in_chromium(
    hs: RunningHomeserver, room: ClassRoom, sfu: str
) -> None:
    """Teacher starts the lesson on the page; a student joins from the widget and sees her."""
    student = room.students[0]
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(student.user_id)}/openid/request_token",
        {},
        student.access_token,
    )
    room_path = urllib.parse.quote(room.room_id, safe="")
    async with chromium() as browser, widget_host() as host:
        # The teacher opens the room's lesson page, signs in and starts a lesson.
        teacher_ctx = await browser.new_context(locale="ru-RU")
        teacher = await teacher_ctx.new_page()
        teacher_url = f"{sfu}/lesson/{room_path}?" + urllib.parse.urlencode({"hs": hs.base_url})
        await teacher.goto(teacher_url)
        await teacher.wait_for_selector("#signin:not([hidden])")
        await teacher.fill("#user", room.teacher.localpart)
        await teacher.fill("#password", room.teacher.password)
        await teacher.click("#signin-button")
        await poll(teacher, "document.querySelector('#status').dataset.state === 'connected'")
        await poll(teacher, "!!window.parta.conn.published.camera")
        await teacher.wait_for_selector("#start-form:not([hidden])")
        await teacher.fill("#new-title", "Геометрия")
        await teacher.click("#start-lesson")
        lesson_id = await poll(teacher, "window.parta.lessonId")
        assert await teacher.text_content("#lesson-title") == "Геометрия"

        # The room now has the lesson and its widget, as Element sees them.
        async with hs.client(student) as client:
            state = await client.room_get_state_event(room.room_id, "org.parta.lesson", lesson_id)
            assert state.content["status"] == "live"
            widget_state = await client.room_get_state_event(
                room.room_id, "im.vector.modular.widgets", state.content["widget_id"]
            )
        widget = element_widget_url(
            widget_state.content["url"], room.room_id, student, "Ученик 1", host
        )
        assert widget.startswith(f"{sfu}/lesson/{room_path}?lesson={lesson_id}")

        # The student opens the widget inside "Element".
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
        # Students come in muted and without the teacher's panel.
        assert await frame.is_hidden("#teacher")
        assert await frame.get_attribute("#mic", "aria-pressed") == "false"

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

        # The teacher shares the screen: the student gets it as its own tile, decoded,
        # and the speaker view puts it first.
        await teacher.click("#screen")
        await poll(teacher, "!!window.parta.conn.published.screen")
        await poll(
            frame,
            "Object.values(window.parta.conn.assignments).some(a => a && a.source === 'screen')",
        )
        screen_tile = ".tile:not(.local)[data-source='screen']"
        await poll(
            frame,
            f'(() => {{ const v = document.querySelector("{screen_tile} video");'
            " return v && v.videoWidth > 0; })()",
        )
        assert await frame.text_content(f"{screen_tile} figcaption") == "Мария Ивановна — экран"
        await frame.click("#view")
        await poll(frame, "document.querySelector('.tile.main')?.dataset.source === 'screen'")
        # Students may not share unless allowed.
        assert await frame.is_disabled("#screen")
        await teacher.click("#screen")
        await poll(
            frame,
            "!Object.values(window.parta.conn.assignments).some(a => a && a.source === 'screen')",
        )

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

        # Removed by mistake: the teacher's panel lists them and lets them back in
        # (that they can then join again is tested in test_sfu_lesson.py).
        removed_row = f"#removed-list li[data-user='{student.user_id}']"
        await teacher.wait_for_selector(removed_row)
        assert await teacher.text_content("#removed-box h3") == "Удалены с урока"
        await teacher.click(f"{removed_row} button[data-action='readmit']")
        await poll(teacher, "document.querySelector('#removed-box').hidden")

        # The teacher ends the lesson from the page.
        await teacher.click("#end-lesson")
        await poll(teacher, "document.querySelector('#lesson').hidden")
        await teacher_ctx.close()
        await student_ctx.close()

    # The SFU told the module who came; the other student is absent.
    url = f"{API}/rooms/{room_path}/lessons/{lesson_id}/attendance"
    # (The SFU reports in the background: wait for the student's leave to arrive.)
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        report = hs.request("GET", url, token=room.teacher.access_token)
        present = {p["user_id"]: p for p in report["present"]}
        if present.get(student.user_id, {}).get("last_leave") is not None:
            break
        assert asyncio.get_running_loop().time() < deadline, report
        await asyncio.sleep(0.2)
    assert report["lesson"]["status"] == "ended"
    assert set(present) == {room.teacher.user_id, student.user_id}
    assert present[student.user_id]["last_leave"] is not None
    assert [a["user_id"] for a in report["absent"]] == [room.students[1].user_id]


@pytest.fixture(scope="module")
def waiting_class(hs: RunningHomeserver) -> ClassRoom:
    """A room of its own (the first journey bans its student from the other one)."""
    return asyncio.run(make_class_room(hs, students=2))


async def sign_in(page: Any, url: str, user: User) -> None:
    """The standalone page's form: the Matrix user name and password."""
    await page.goto(url)
    await page.wait_for_selector("#signin:not([hidden])")
    await page.fill("#user", user.localpart)
    await page.fill("#password", user.password)
    await page.click("#signin-button")


async def label_of(page: Any, control: str) -> str:
    script = f"document.querySelector('{control}').parentElement.textContent"
    return str(await page.evaluate(script))


async def test_teacher_locks_the_lesson_and_runs_the_waiting_room_in_chromium(
    hs: RunningHomeserver, waiting_class: ClassRoom, sfu: str
) -> None:
    """Lock: a student is told and kept out. Waiting room: one admitted, one refused."""
    room = waiting_class
    first, second = room.students
    room_path = urllib.parse.quote(room.room_id, safe="")
    url = f"{sfu}/lesson/{room_path}?" + urllib.parse.urlencode({"hs": hs.base_url})
    async with chromium() as browser:
        teacher_ctx = await browser.new_context(locale="ru-RU")
        teacher = await teacher_ctx.new_page()
        await sign_in(teacher, url, room.teacher)
        await poll(teacher, "document.querySelector('#status').dataset.state === 'connected'")
        await poll(teacher, "!!window.parta.conn.published.camera")
        # The panel's lock and waiting-room switches, in Russian and in English.
        assert await teacher.is_visible("#teacher")
        assert (await label_of(teacher, "#lock")).strip() == "Закрыть урок для новых участников"
        assert (await label_of(teacher, "#waiting-room")).strip() == "Зал ожидания"
        await teacher.select_option("#lang", "en")
        assert (await label_of(teacher, "#lock")).strip() == "Lock the lesson for newcomers"
        assert (await label_of(teacher, "#waiting-room")).strip() == "Waiting room"
        assert await teacher.text_content("#teacher h2") == "Teacher's panel"
        await teacher.select_option("#lang", "ru")
        assert await teacher.text_content("#teacher h2") == "Панель учителя"

        # Locked: the student is told so in Russian and does not get in.
        await teacher.click("#lock")
        await poll(teacher, "window.parta.conn.lesson.locked === true")
        assert "Урок закрыт" in (await teacher.text_content("#count") or "")
        first_ctx = await browser.new_context(locale="ru-RU")
        student = await first_ctx.new_page()
        await sign_in(student, url, first)
        text = await poll(
            student,
            "!document.querySelector('#message').hidden && "
            "document.querySelector('#message-text').textContent",
        )
        assert text.startswith("Учитель закрыл вход в урок."), text
        assert "/" not in text  # the page's language only, not the SFU's "ru / en"
        assert await student.is_hidden("#lesson")
        assert await student.is_hidden("#waiting")
        assert await student.is_visible("#rejoin")
        assert await teacher.evaluate("window.parta.conn.participants.size") == 1

        # Open again, with the waiting room on: the student waits on a screen saying so.
        await teacher.click("#lock")
        await poll(teacher, "window.parta.conn.lesson.locked === false")
        await teacher.click("#waiting-room")
        await poll(
            teacher,
            "!window.parta.conn.lesson.locked && window.parta.conn.lesson.waiting_room",
        )
        await student.click("#rejoin")
        await student.wait_for_selector("#waiting:not([hidden])")
        assert await student.text_content("#waiting h1") == "Зал ожидания"
        assert "Учитель скоро впустит вас" in (await student.text_content("#waiting p") or "")
        assert await student.is_hidden("#lesson")
        second_ctx = await browser.new_context(locale="ru-RU")
        other = await second_ctx.new_page()
        await sign_in(other, url, second)
        await other.wait_for_selector("#waiting:not([hidden])")

        # Both wait in the teacher's panel, by name, with admit and deny in her language.
        waiting = "#waiting-list li[data-participant]"
        await poll(teacher, f"document.querySelectorAll('{waiting}').length === 2")
        # One gives up waiting and leaves the teacher's list, then comes back.
        assert await other.text_content("#waiting-leave") == "Не ждать"
        await other.click("#waiting-leave")
        await poll(teacher, f"document.querySelectorAll('{waiting}').length === 1")
        assert await other.is_hidden("#waiting")
        assert await other.text_content("#message-text") == "Вы вышли из урока."
        await other.click("#rejoin")
        await other.wait_for_selector("#waiting:not([hidden])")
        await poll(teacher, f"document.querySelectorAll('{waiting}').length === 2")
        names = await teacher.eval_on_selector_all(
            f"{waiting} .name", "nodes => nodes.map(n => n.textContent)"
        )
        assert sorted(names) == ["Ученик 1", "Ученик 2"]
        assert await teacher.text_content("#waiting-box h3") == "Ждут входа"
        buttons = f"{waiting} button"
        labels = await teacher.eval_on_selector_all(buttons, "b => b.map(n => n.textContent)")
        assert labels == ["Впустить", "Отказать"] * 2
        await teacher.select_option("#lang", "en")
        labels = await teacher.eval_on_selector_all(buttons, "b => b.map(n => n.textContent)")
        assert labels == ["Admit", "Deny"] * 2
        assert await teacher.text_content("#waiting-box h3") == "Waiting to join"
        await teacher.select_option("#lang", "ru")
        # Nobody waiting is in the lesson yet.
        assert await teacher.evaluate("window.parta.conn.participants.size") == 1

        # Admitted: the student is in and decodes the teacher's camera.
        row = f"{waiting}:has(.name:text-is('{{}}'))"
        await teacher.click(row.format("Ученик 1") + " button[data-action='admit']")
        await poll(student, "document.querySelector('#status').dataset.state === 'connected'")
        assert await student.is_hidden("#waiting")
        assert await student.is_visible("#lesson")
        await poll(
            student,
            "Object.values(window.parta.conn.assignments).some(a => a && a.source === 'camera')",
        )
        await poll(student, "window.parta.conn.receiveStats().then(s => s.framesDecoded > 0)")
        decoded = await frames_decoded(student)
        await poll(
            student,
            f"window.parta.conn.receiveStats().then(s => s.framesDecoded > {decoded + 30})",
        )
        first_row = f"#people li[data-user='{first.user_id}']"
        await poll(teacher, f'!!document.querySelector("{first_row}")')

        # Refused: the other student is told so and stays out.
        await teacher.click(row.format("Ученик 2") + " button[data-action='deny']")
        text = await poll(
            other,
            "!document.querySelector('#message').hidden && "
            "document.querySelector('#message-text').textContent",
        )
        assert text == "Учитель не впустил вас в урок."
        assert await other.is_hidden("#waiting")
        assert await other.is_hidden("#lesson")
        await poll(teacher, "document.querySelector('#waiting-box').hidden")
        people = await teacher.eval_on_selector_all(
            "#people li", "nodes => nodes.map(n => n.dataset.user)"
        )
        assert sorted(people) == sorted([room.teacher.user_id, first.user_id])
        for ctx in (teacher_ctx, first_ctx, second_ctx):
            await ctx.close()


@pytest.fixture(scope="module")
def consent_school(hs: RunningHomeserver) -> School:
    """A school whose 7А has paper consent to video lessons for its first student only."""
    school = build_school(hs, hs.register("operator", admin=True))
    first = school.students[0]
    path = f"/schools/{school.school_id}/members/{first.user_id}/consents"
    body = {"consents": {"video_lessons": True}, "document_number": "№ 7"}
    api(hs, "PUT", path, school.admin, body)
    return school


async def test_the_teacher_sees_why_a_student_without_video_consent_has_no_camera(
    hs: RunningHomeserver, consent_school: School, sfu: str
) -> None:
    """#12: admitted with camera and microphone off; the teacher's panel says why, beside
    that student only; the student is told; a classmate is told nothing of it."""
    school = consent_school
    consented, refused = school.students[0], school.students[-1]
    room_id = school.class_a["rooms"]["class_chat"]
    room_path = urllib.parse.quote(room_id, safe="")
    url = f"{sfu}/lesson/{room_path}?" + urllib.parse.urlencode({"hs": hs.base_url})
    async with chromium() as browser:
        teacher_ctx = await browser.new_context(locale="ru-RU")
        teacher = await teacher_ctx.new_page()
        await sign_in(teacher, url, school.teacher)
        await poll(teacher, "document.querySelector('#status').dataset.state === 'connected'")
        assert await teacher.is_hidden("#consent-notice")

        pages = {}
        for student in (consented, refused):
            ctx = await browser.new_context(locale="ru-RU")
            pages[student.user_id] = await ctx.new_page()
            await sign_in(pages[student.user_id], url, student)
        without, with_consent = pages[refused.user_id], pages[consented.user_id]
        for page in (without, with_consent):
            await poll(page, "document.querySelector('#status').dataset.state === 'connected'")

        # The student without consent: no camera published, and a notice saying why.
        assert await without.evaluate("window.parta.grant.no_video_consent") is True
        assert await without.evaluate("window.parta.grant.grants.publish_camera") is False
        assert await without.evaluate("!window.parta.conn.published.camera")
        assert await without.is_visible("#consent-notice")
        notice = await without.text_content("#consent-notice") or ""
        assert notice.startswith("Камера и микрофон выключены: нет согласия на видеоуроки")
        # The one with consent publishes the fake camera and sees no notice.
        await poll(with_consent, "!!window.parta.conn.published.camera")
        assert await with_consent.is_hidden("#consent-notice")
        # Students are not told about each other's consents.
        assert await with_consent.evaluate("window.parta.conn.restrictions.size") == 0

        # The teacher's panel: the reason beside the student without consent only.
        row = f"#people li[data-user='{refused.user_id}'] .restriction"
        await teacher.wait_for_selector(row)
        assert await teacher.get_attribute(row, "data-reason") == "no_video_consent"
        assert (
            await teacher.text_content(row)
            == "Камера и микрофон выключены: нет согласия на видеоуроки"
        )
        other_row = f"#people li[data-user='{consented.user_id}'] .restriction"
        assert await teacher.query_selector(other_row) is None
        await teacher.select_option("#lang", "en")
        assert (
            await teacher.text_content(row)
            == "Camera and microphone off: no consent to video lessons"
        )
