"""A new user's walk through a running ``make run``, step by step, each printed ✓ or ✗.

Not a test of the suite: it runs against the Parta that ``make run`` started (same
``PARTA_VAR`` and ports), after the sample school was imported as README says::

    .venv/bin/python -m tests.data.make_sample_school var/sample.zip --zip --students 550
    PYTHONPATH=. .venv/bin/python -m bridge.roster_sync -c var/bridge/bridge.yaml \\
        --login var/operator.txt --codes var/codes.csv var/sample.zip
    PYTHONPATH=. .venv/bin/python -m devtools.walkthrough [--class 5А]

1. Import: an administrator, the class's homeroom teacher, a student of it and that
   student's parent sign in with the printed codes and see their rooms; the bot answers
   «помощь» in the teacher's DM.
2. Lesson: the teacher starts one with the bot («урок 5А тема»), opens the lesson page in
   Chromium (fake camera), two students join (one from the link in the lesson's state),
   they decode the teacher's video and audio, the teacher shares the screen, a hand goes
   up, the teacher mutes one student and removes the other, ends the lesson, and the
   attendance (JSON and CSV) lists a third student, who never came, as absent.

Exits 1 when any step failed.
"""

import argparse
import asyncio
import csv
import io
import json
import os
import random
import sys
import time
import traceback
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from devtools.homeserver import REPO_ROOT

API = "/_synapse/client/parta/v1"
BOT = "@parta-bot:localhost"


class Failed(Exception):
    """A step's check did not hold; the message says what was seen."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


def unexpected(e: BaseException) -> str:
    """An unforeseen error in one line (what, and where), never a traceback."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(e, aiohttp.ClientConnectionError):
        return f"cannot reach the platform: {e}. Is `make run` going?"
    return f"{type(e).__name__}: {e}{where}"


class Walk:
    """Runs the steps, prints ✓/✗, and remembers whether all passed."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    async def step(self, title: str, body: Callable[[], Awaitable[str | None]]) -> bool:
        started = time.monotonic()
        try:
            detail = await body()
        except Exception as e:  # every failure is reported, the walk goes on where it can
            seconds = time.monotonic() - started
            text = str(e) if isinstance(e, Failed) else unexpected(e)
            print(f"✗ {title} ({seconds:.1f} s)\n    {text.strip()}", flush=True)
            self.failures.append(title)
            return False
        seconds = time.monotonic() - started
        print(f"✓ {title} ({seconds:.1f} s){': ' + detail if detail else ''}", flush=True)
        return True


class Matrix:
    """A person signed in over the client-server API."""

    def __init__(self, http: aiohttp.ClientSession, base: str, row: dict[str, str]) -> None:
        self.http = http
        self.base = base
        self.row = row
        self.user_id = row["Логин"]
        self.code = row["Код для входа"]
        self.name = row["ФИО"]
        self.token = ""

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]

    async def request(
        self, method: str, path: str, body: Any = None, expect: int | None = 200
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            raw = await response.read()
            data = json.loads(raw) if raw else None
            if expect is not None and response.status != expect:
                raise Failed(f"{method} {path} → {response.status} {data}")
            return data

    async def text(self, path: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.get(self.base + path, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise Failed(f"GET {path} → {response.status} {body[:300]!r}")
            return body.decode("utf-8")

    async def login(self) -> None:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.user_id},
            "password": self.code,
        }
        data = await self.request("POST", "/_matrix/client/v3/login", body)
        self.token = data["access_token"]

        # A first sign-in answers at once; the school's rooms follow within seconds.
        async def rooms_joined() -> bool:
            return not (await self.me()).get("rooms_pending")

        await until(f"{self.user_id}: the school's rooms after signing in", rooms_joined)

    async def joined(self) -> set[str]:
        return set((await self.request("GET", "/_matrix/client/v3/joined_rooms"))["joined_rooms"])

    async def me(self) -> dict[str, Any]:
        data: dict[str, Any] = await self.request("GET", f"{API}/me")
        return data

    async def send_text(self, room_id: str, text: str) -> str:
        txn = f"walk{time.time_ns()}"
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}"
        data = await self.request("PUT", path, {"msgtype": "m.text", "body": text})
        return str(data["event_id"])

    async def messages(self, room_id: str) -> list[dict[str, Any]]:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=30"
        chunk: list[dict[str, Any]] = (await self.request("GET", path))["chunk"]
        return chunk


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


async def until(what: str, probe: Callable[[], Awaitable[Any]], seconds: float = 30) -> Any:
    """Probe until it gives something truthy; Failed naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"{what}: not within {seconds:.0f} s")
        await asyncio.sleep(0.25)


async def page_until(page: Any, expression: str, seconds: float = 30) -> Any:
    """``until`` for a JavaScript expression in a page (evaluate: the page's CSP forbids eval)."""

    async def probe() -> Any:
        return await page.evaluate(expression)

    return await until(expression, probe, seconds)


AUDIO_PACKETS = """(async () => {
  const conn = window.parta && window.parta.conn;
  if (!conn || !conn.pc) return 0;
  let n = 0;
  (await conn.pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') n += r.packetsReceived || 0;
  });
  return n;
})()"""
FRAMES = "window.parta.conn.receiveStats().then(s => s.framesDecoded)"
CONNECTED = "document.querySelector('#status').dataset.state === 'connected'"


def bot_reply(messages: list[dict[str, Any]], after: str) -> str | None:
    """The bot's first text after the event ``after`` (messages newest first)."""
    for event in messages:
        if event["event_id"] == after:
            return None
        if event.get("sender") == BOT and event.get("type") == "m.room.message":
            return str(event["content"].get("body", ""))
    return None


async def main(argv: list[str] | None = None) -> int:
    var = Path(os.environ.get("PARTA_VAR", REPO_ROOT / "var"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hs", default=f"http://127.0.0.1:{os.environ.get('PARTA_PORT', '8008')}")
    parser.add_argument("--codes", type=Path, default=var / "codes.csv")
    parser.add_argument("--class", dest="klass", default="5А", help="the class (title) to use")
    parser.add_argument("--headed", action="store_true", help="show the browser windows")
    args = parser.parse_args(argv)
    walk = Walk()
    from tests.browser import chromium_missing

    if (missing := chromium_missing()) is not None:
        print(f"Note: {missing}; those steps will be ✗.\n", flush=True)
    async with aiohttp.ClientSession() as http:
        await run(walk, http, args)
    print()
    if walk.failures:
        print(f"{len(walk.failures)} step(s) failed: " + "; ".join(walk.failures))
        return 1
    print("Every step passed.")
    return 0


async def run(walk: Walk, http: aiohttp.ClientSession, args: argparse.Namespace) -> None:
    hs = args.hs.rstrip("/")
    if not args.codes.is_file():
        print(
            f"✗ the sample school's sign-in codes: no {args.codes}. Import the sample school "
            "first, as the README says (A whole school at once), with `--codes` there."
        )
        walk.failures.append("the sign-in codes")
        return
    rows = list(csv.DictReader(args.codes.open(encoding="utf-8-sig"), delimiter=";"))
    by_id = {row["Логин"]: row for row in rows}
    people: dict[str, Matrix] = {}
    ctx: dict[str, Any] = {}

    # ---- 1. the imported school ---------------------------------------------------------
    async def admin_signs_in() -> str:
        row = next(r for r in rows if r["Роль"] == "администратор")
        admin = people["admin"] = Matrix(http, hs, row)
        await admin.login()
        me = await admin.me()
        check(len(me["schools"]) == 1, f"/me schools: {me['schools']}")
        school = me["schools"][0]
        check(school["roles"] == ["administrator"], f"roles {school['roles']}")
        joined = await admin.joined()
        missing = set(school["rooms"].values()) - joined
        check(not missing, f"school rooms not joined: {missing}")
        ctx["school"] = school
        classes = await admin.request("GET", f"{API}/schools/{school['school_id']}/classes")
        klass = next((c for c in classes["classes"] if c["title"] == args.klass), None)
        if klass is None:
            raise Failed(f"no class {args.klass} in {[c['title'] for c in classes['classes']]}")
        ctx["class"] = klass
        return f"{admin.user_id}: {len(joined)} rooms, class {args.klass} has {klass['homeroom']}"

    if not await walk.step("1.1 administrator signs in with the code", admin_signs_in):
        return
    klass = ctx["class"]
    school = ctx["school"]
    rooms = klass["rooms"]

    async def role_rooms(key: str, user_id: str, role: str, want: set[str], never: set[str]) -> str:
        person = people[key] = Matrix(http, hs, by_id[user_id])
        await person.login()
        me = await person.me()
        mine = next(s for s in me["schools"] if s["school_id"] == school["school_id"])
        check(role in mine["roles"], f"roles {mine['roles']}")
        joined = await person.joined()
        check(want <= joined, f"not joined: {want - joined} (joined {joined})")
        check(not (never & joined), f"joined what {role} must not: {never & joined}")
        return f"{person.name}: {len(joined)} rooms"

    teacher_id = klass["homeroom"]
    sch = school["rooms"]
    await walk.step(
        f"1.2 homeroom teacher of {args.klass} signs in, sees class and staff rooms",
        lambda: role_rooms(
            "teacher",
            teacher_id,
            "teacher",
            {sch["school_space"], sch["announcements"], sch["staff"], *rooms.values()},
            set(),
        ),
    )
    students = [r for r in rows if r["Роль"] == "ученик" and r["Класс"] == args.klass]
    if len(students) < 3:
        print(f"✗ class {args.klass} needs three students, has {len(students)}")
        walk.failures.append("students")
        return
    parents = [r for r in rows if r["Роль"] == "родитель" and r["Класс"] == args.klass]
    await walk.step(
        f"1.3 a student of {args.klass} signs in, sees the class chat, not staff or parents",
        lambda: role_rooms(
            "student",
            students[0]["Логин"],
            "student",
            {sch["school_space"], sch["announcements"], rooms["class_space"], rooms["class_chat"]},
            {sch["staff"], rooms["parents_chat"]},
        ),
    )

    async def parent_signs_in() -> str:
        admin = people["admin"]
        listing = await admin.request(
            "GET", f"{API}/schools/{school['school_id']}/members?role=parent"
        )
        child = students[0]["Логин"]
        parent_id = next(
            (m["user_id"] for m in listing["members"] if child in m.get("children", [])), None
        )
        check(parent_id, f"no parent of {child} among {len(listing['members'])} parents")
        check(parent_id in {p["Логин"] for p in parents}, f"{parent_id} not in the codes")
        detail = await role_rooms(
            "parent",
            str(parent_id),
            "parent",
            {sch["school_space"], sch["announcements"], rooms["parents_chat"]},
            {sch["staff"], rooms["class_chat"]},
        )
        me = await people["parent"].me()
        mine = next(s for s in me["schools"] if s["school_id"] == school["school_id"])
        check(child in mine["children"], f"/me children {mine['children']}")
        return detail

    await walk.step("1.4 the student's parent signs in, sees the parents chat", parent_signs_in)

    async def bot_dm() -> str:
        teacher = people["teacher"]
        check(teacher.token, "the teacher did not sign in")
        dm = ""
        for room_id in await teacher.joined():  # a DM with the bot from an earlier walk
            path = f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members"
            if set((await teacher.request("GET", path))["joined"]) == {teacher.user_id, BOT}:
                dm = room_id
                break
        if not dm:
            created = await teacher.request(
                "POST",
                "/_matrix/client/v3/createRoom",
                {"is_direct": True, "invite": [BOT], "preset": "trusted_private_chat"},
            )
            dm = created["room_id"]
        ctx["dm"] = dm

        async def bot_joined() -> bool:
            path = f"/_matrix/client/v3/rooms/{q(dm)}/joined_members"
            return BOT in (await teacher.request("GET", path))["joined"]

        await until("the bot joins the DM", bot_joined)
        sent = await teacher.send_text(dm, "помощь")

        async def reply() -> str | None:
            return bot_reply(await teacher.messages(dm), sent)

        text = await until("the bot answers «помощь»", reply)
        check("урок" in text, f"help without «урок»: {text[:200]}")
        return f"{len(text.splitlines())} lines"

    await walk.step("1.5 the bot answers «помощь» in the teacher's DM", bot_dm)

    # ---- 2. a lesson ----------------------------------------------------------------------
    # The SFU keeps a removed student out of the room's lessons for some minutes after the
    # lesson empties (docs/sfu-protocol.md, `remove`): each walk removes someone else.
    second, absent = random.sample(students[1:], 2)
    absent_id = absent["Логин"]
    for key, row in (("student2", second),):
        people[key] = Matrix(http, hs, row)
        await people[key].login()

    async def no_live_lesson() -> str:
        """A walk stopped half-way leaves its lesson live; one live lesson per room."""
        teacher = people["teacher"]
        path = f"{API}/rooms/{q(rooms['class_chat'])}/lessons"
        ended = []
        for old in (await teacher.request("GET", path))["lessons"]:
            if old["status"] == "live":
                await teacher.request("POST", f"{path}/{old['lesson_id']}/end", {})
                ended.append(old["lesson_id"])
        return f"ended a previous walk's lesson {ended}" if ended else "none live"

    await walk.step(f"2.0 no lesson is live in {args.klass}'s chat", no_live_lesson)

    async def bot_starts_lesson() -> str:
        teacher = people["teacher"]
        dm = ctx.get("dm")
        check(dm, "no DM with the bot")
        sent = await teacher.send_text(str(dm), f"урок {args.klass} Дроби")

        async def reply() -> str | None:
            return bot_reply(await teacher.messages(str(dm)), sent)

        text = await until("the bot answers «урок»", reply)
        lessons = await teacher.request("GET", f"{API}/rooms/{q(rooms['class_chat'])}/lessons")
        live = [le for le in lessons["lessons"] if le["status"] == "live"]
        check(live, f"no live lesson; the bot said: {text}")
        ctx["lesson"] = live[0]
        check(live[0]["url"] in text, f"the bot's answer has no link to the lesson: {text}")
        return f"«{text.splitlines()[0]}»"

    await walk.step(
        f"2.1 the teacher starts a lesson with «урок {args.klass} Дроби»", bot_starts_lesson
    )
    if "lesson" not in ctx:

        async def api_starts_lesson() -> str:
            path = f"{API}/rooms/{q(rooms['class_chat'])}/lessons"
            ctx["lesson"] = await people["teacher"].request(
                "POST", path, {"title": "Дроби"}, expect=None
            )
            check("lesson_id" in ctx["lesson"], f"{ctx['lesson']}")
            return str(ctx["lesson"]["lesson_id"])

        if not await walk.step("2.1b (fallback) the module API starts it", api_starts_lesson):
            return
    lesson = ctx["lesson"]

    async def lesson_state() -> str:
        student = people["student"]
        path = (
            f"/_matrix/client/v3/rooms/{q(rooms['class_chat'])}/state/org.parta.lesson/"
            f"{q(lesson['lesson_id'])}"
        )
        state = await student.request("GET", path)
        check(state["status"] == "live", f"state {state}")
        check(state["url"].startswith("http"), f"url {state['url']}")
        ctx["link"] = state["url"]
        messages = await student.messages(rooms["class_chat"])
        check(
            any(state["url"] in e.get("content", {}).get("body", "") for e in messages),
            "no message with the lesson link in the class chat",
        )
        return str(state["url"])

    await walk.step("2.2 the class chat has the live lesson, its link and widget", lesson_state)
    await browser_lesson(walk, people, ctx, hs, rooms, lesson, absent_id, args)


async def browser_lesson(
    walk: Walk,
    people: dict[str, Matrix],
    ctx: dict[str, Any],
    hs: str,
    rooms: dict[str, str],
    lesson: dict[str, Any],
    absent_id: str,
    args: argparse.Namespace,
) -> None:
    from playwright.async_api import async_playwright

    from tests.browser import FLAGS, chromium_missing, chromium_path

    missing = chromium_missing()
    if missing is not None:
        print(f"✗ 2.3–2.11 the lesson in Chromium: {missing}", flush=True)
        walk.failures.append("the lesson in Chromium")
        return
    teacher, student, student2 = people["teacher"], people["student"], people["student2"]
    room_path = q(rooms["class_chat"])
    sfu = lesson.get("url") or ctx.get("link", "")
    sfu_base = sfu.split("/lesson/")[0]
    plain_url = f"{sfu_base}/lesson/{room_path}?" + urllib.parse.urlencode({"hs": hs})
    pages: dict[str, Any] = {}

    async def sign_in(key: str, person: Matrix, url: str) -> None:
        page = pages[key]
        await page.goto(url)
        await page.wait_for_selector("#signin:not([hidden])")
        if not await page.input_value("#hs"):
            await page.fill("#hs", hs)
        await page.fill("#user", person.localpart)
        await page.fill("#password", person.code)
        await page.click("#signin-button")
        try:
            await page_until(page, CONNECTED)
        except Failed:
            shown = await page.evaluate(
                "!document.querySelector('#message').hidden && "
                "document.querySelector('#message-text').textContent"
            )
            raise Failed(f"not connected; the page says: {shown or '(nothing)'}") from None

    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(
                executable_path=chromium_path(), args=FLAGS, headless=not args.headed
            )
        except Exception as e:
            print(f"✗ 2.3–2.11 the lesson in Chromium: it did not start: {unexpected(e)}")
            walk.failures.append("the lesson in Chromium")
            return
        for key in ("teacher", "student", "student2"):
            context = await browser.new_context(locale="ru-RU")
            pages[key] = await context.new_page()

        async def teacher_opens() -> str:
            await sign_in("teacher", teacher, plain_url)
            page = pages["teacher"]
            await page_until(page, "!!window.parta.conn.published.camera")
            role = await page.evaluate("window.parta.grant.role")
            check(role == "teacher", f"role {role}")
            check(await page.is_visible("#teacher"), "no teacher's panel")
            title = await page_until(page, "document.querySelector('#lesson-title').textContent")
            return f"title «{title}»"

        if not await walk.step("2.3 the teacher opens the lesson page and signs in", teacher_opens):
            await browser.close()
            return

        async def student_from_link() -> str:
            await sign_in("student", student, ctx["link"])
            role = await pages["student"].evaluate("window.parta.grant.role")
            check(role == "student", f"role {role}")
            return str(ctx["link"])

        async def student_plain() -> str:
            await sign_in("student2", student2, plain_url)
            return plain_url

        await walk.step("2.4 student 1 signs in from the lesson's link", student_from_link)
        await walk.step("2.5 student 2 signs in on the lesson page", student_plain)

        async def students_see_and_hear() -> str:
            out = []
            for key in ("student", "student2"):
                page = pages[key]
                await page_until(page, "!!(window.parta.conn && window.parta.conn.pc)")
                await page_until(page, f"{FRAMES}.then(n => n > 0)")
                frames = await page.evaluate(FRAMES)
                audio = await page.evaluate(AUDIO_PACKETS)
                await page_until(page, f"{FRAMES}.then(n => n > {frames + 30})")
                await page_until(page, f"{AUDIO_PACKETS}.then(n => n > {audio + 50})")
                caption = await page.text_content(
                    ".tile:not(.local)[data-source='camera'] figcaption"
                )
                check(caption, "no caption on the teacher's tile")
                out.append(f"{key}: «{caption}» video {frames}+ frames, audio {audio}+ packets")
            return "; ".join(out)

        await walk.step(
            "2.6 both students decode the teacher's camera and microphone", students_see_and_hear
        )

        async def screen() -> str:
            page = pages["teacher"]
            await page.click("#screen")
            await page_until(page, "!!window.parta.conn.published.screen")
            student_page = pages["student"]
            tile = ".tile:not(.local)[data-source='screen'] video"
            await page_until(
                student_page,
                f'(() => {{ const v = document.querySelector("{tile}");'
                " return v && v.videoWidth > 0; })()",
            )
            await page.click("#screen")
            return "the student's screen tile plays"

        await walk.step("2.7 the teacher shares the screen (fake capture)", screen)

        async def hand() -> str:
            await pages["student2"].click("#hand")
            page = pages["teacher"]
            await page_until(page, "document.querySelector('#hands li[data-participant]') !== null")
            text = await page.text_content("#hands") or ""
            return text.strip()

        await walk.step("2.8 student 2 raises a hand; the teacher sees it", hand)

        async def mute() -> str:
            page = pages["teacher"]
            row = f"#people li[data-user='{student.user_id}']"
            await page.click(f"{row} button[data-action='mute']")
            await page_until(pages["student"], "document.querySelector('#mic').disabled")
            return (await pages["student"].text_content("#mic") or "").strip()

        await walk.step("2.9 the teacher mutes student 1", mute)

        async def remove() -> str:
            page = pages["teacher"]
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            row = f"#people li[data-user='{student2.user_id}']"
            await page.click(f"{row} button[data-action='remove']")
            text = await page_until(
                pages["student2"],
                "!document.querySelector('#message').hidden && "
                "document.querySelector('#message-text').textContent",
            )
            await page_until(page, f'document.querySelector("{row}") === null')
            return str(text)

        await walk.step("2.10 the teacher removes student 2", remove)

        async def end() -> str:
            page = pages["teacher"]
            await page.click("#end-lesson")
            await page_until(page, "document.querySelector('#lesson').hidden")
            return "page closed the lesson"

        await walk.step("2.11 the teacher ends the lesson from the page", end)
        await browser.close()

    async def attendance() -> str:
        path = f"{API}/rooms/{room_path}/lessons/{q(lesson['lesson_id'])}/attendance"

        async def settled() -> Any:
            report = await teacher.request("GET", path)
            present = {p["user_id"]: p for p in report["present"]}
            done = all(
                present.get(u, {}).get("last_leave") for u in (student.user_id, student2.user_id)
            )
            return report if done else None

        report = await until("both students' leaves reach the module", settled)
        check(report["lesson"]["status"] == "ended", f"lesson {report['lesson']}")
        present = {p["user_id"] for p in report["present"]}
        want = {teacher.user_id, student.user_id, student2.user_id}
        check(present == want, f"present {present}, expected {want}")
        absent = {a["user_id"] for a in report["absent"]}
        check(absent_id in absent, f"{absent_id} not absent: {sorted(absent)[:5]}…")
        check(not (absent & want), f"present people absent: {absent & want}")
        text = await teacher.text(path + "?format=csv")
        check(text.startswith("\ufeff"), "CSV without a BOM")
        table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        flat = "\n".join(";".join(r) for r in table)
        check(absent_id in flat, f"CSV has no {absent_id}")
        return (
            f"{len(present)} present, {len(absent)} absent (incl. {absent_id}); "
            f"CSV {len(table)} rows"
        )

    await walk.step("2.12 attendance (JSON and CSV): who came, who was absent", attendance)

    async def bot_attendance() -> str:
        dm = str(ctx.get("dm") or "")
        check(dm, "no DM with the bot")
        sent = await teacher.send_text(dm, f"посещаемость {args.klass}")

        async def reply() -> str | None:
            return bot_reply(await teacher.messages(dm), sent)

        text = str(await until("the bot answers «посещаемость»", reply))
        check("были 3" in text, f"the bot's report: {text[:300]}")
        return text.splitlines()[0]

    await walk.step(f"2.13 the bot's «посещаемость {args.klass}»", bot_attendance)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
