"""Issue 11's "done when", tried as a new user would, against a running ``make run``.

Each step is printed ✓ or ✗; exits 1 when one failed. Every run makes its own names (a
suffix of the time), so it can be run again on the same ``var/``::

    PYTHONPATH=. .venv/bin/python -m devtools.walkthrough_console [--headed] [--shots DIR]

1. The operator makes three accounts (Synapse's admin API: the console names people who
   have an account) — a regional coordinator, a municipal one, a school's administrator.
2. In the console (headless Debian Chromium): the operator makes a region and names its
   coordinator; she makes a municipality and names its coordinator; he makes a school
   with its administrator.
3. The administrator imports the sample OneRoster school (``tests/data``) in the page:
   the plan, the progress to 100 %, the printable codes (printed to a PDF).
4. A day of activity: pupils and the homeroom teacher sign in with their printed codes
   and write in their class chats; the teacher holds a lesson; the SFU's attendance
   reports (signed with the media secret, as the SFU does) name who came.
5. The municipal coordinator opens **Статистика** and downloads the XLSX; it is opened
   with openpyxl and its figures are checked against what this run did.

It reads ``PARTA_VAR`` and ``PARTA_PORT`` like ``make run``; it stops the browser it
starts and nothing else. Not part of ``make test`` (``tests/test_console_units.py`` is
the test of the same chain on the suite's own Synapse).
"""

import argparse
import asyncio
import datetime
import io
import os
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openpyxl
from playwright.async_api import Page, async_playwright, expect

from devtools.walkthrough import Failed, check, unexpected
from parta_common import tokens
from synapse_module.statistics.rules import FIELDS
from tests.browser import CHROMIUM, FLAGS
from tests.data.make_sample_school import make_school, write_dir
from tests.test_console_units import open_unit, sign_out

API = "/_synapse/client/parta/v1"
CONSOLE = "/_synapse/client/parta/console/"
VAR = Path(os.environ.get("PARTA_VAR", Path(__file__).resolve().parent.parent / "var"))
PORT = int(os.environ.get("PARTA_PORT", "8008"))
PASSWORD = "Пароль-координатора-1"


def q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


class Walk:
    http: aiohttp.ClientSession

    def __init__(self, base: str, shots: Path | None) -> None:
        self.base = base
        self.shots = shots
        self.failed = 0
        self.history = 0
        self.stamp = time.strftime("%H%M%S")
        self.facts: dict[str, Any] = {}

    async def step(self, title: str, work: Callable[[], Awaitable[str]]) -> bool:
        started = time.monotonic()
        try:
            said = await work()
        except Failed as e:
            print(f"✗ {title}: {e}", flush=True)
            self.failed += 1
            return False
        except Exception as e:
            print(f"✗ {title}: {unexpected(e)}", flush=True)
            self.failed += 1
            return False
        print(f"✓ {title} ({time.monotonic() - started:.1f} s){': ' + said if said else ''}")
        return True

    async def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        url = path if path.startswith("http") else self.base + path
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, url, json=body, headers=headers) as r:
            answer = await r.json(content_type=None)
            check(r.status < 300, f"{method} {path}: {r.status} {answer}")
            return answer

    async def login(self, user: str, password: str) -> str:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        }
        answer = await self.call("POST", "/_matrix/client/v3/login", "", body)
        return str(answer["access_token"])


async def sign_in(page: Page, base: str, user: str, password: str) -> None:
    await page.goto(base + CONSOLE)
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("#b-signin")
    await expect(page.locator("#logout")).to_be_visible()


async def walk(w: Walk, page: Page) -> None:
    f = w.facts
    region, district = f"Энская область {w.stamp}", f"Энский район {w.stamp}"
    school_name = f"Школа № 1 пос. Энский ({w.stamp})"

    async def accounts() -> str:
        lines = (VAR / "operator.txt").read_text().split("\n")
        f["operator"] = (lines[0].strip(), lines[1].strip())
        f["op_token"] = await w.login(*f["operator"])
        me = await w.call("GET", "/_matrix/client/v3/account/whoami", f["op_token"])
        server = me["user_id"].split(":", 1)[1]
        for role, name in (
            ("regional", "Анна Региональная"),
            ("municipal", "Борис Муниципальный"),
            ("director", "Вера Директор"),
        ):
            localpart = f"{role}-{w.stamp}"
            user_id = f"@{localpart}:{server}"
            await w.call(
                "PUT",
                f"/_synapse/admin/v2/users/{q(user_id)}",
                f["op_token"],
                {"password": PASSWORD, "displayname": name},
            )
            f[role] = (localpart, user_id)
        return ", ".join(f[r][1] for r in ("regional", "municipal", "director"))

    async def operator_names_a_region() -> str:
        await sign_in(page, w.base, *f["operator"])
        await page.fill("#region-name", region)
        await page.click("#region-form button[type=submit]")
        await expect(page.locator("#view-people h1")).to_contain_text(region)
        await page.fill("#coordinator", f["regional"][1])
        await page.click("#coordinator-form button[type=submit]")
        await expect(page.locator("#coordinators")).to_contain_text(f["regional"][1])
        await sign_out(page)
        return region

    async def regional_names_a_district() -> str:
        await sign_in(page, w.base, f["regional"][0], PASSWORD)
        await open_unit(page, region)
        await page.fill("#municipality-name", district)
        await page.click("#municipality-form button[type=submit]")
        await page.click(f"#municipalities a:has-text('{district}')")
        await expect(page.locator("#view-people h1")).to_contain_text(district)
        await page.fill("#coordinator", f["municipal"][1])
        await page.click("#coordinator-form button[type=submit]")
        await expect(page.locator("#coordinators")).to_contain_text(f["municipal"][1])
        await sign_out(page)
        return district

    async def municipal_makes_a_school() -> str:
        await sign_in(page, w.base, f["municipal"][0], PASSWORD)
        await open_unit(page, district)
        await page.fill("#school-name", school_name)
        await page.fill("#school-admin", f["director"][1])
        await page.click("#school-form button[type=submit]")
        await expect(page.locator("#unit-schools")).to_contain_text(school_name)
        f["unit_url"] = page.url
        await sign_out(page)
        return school_name

    async def director_imports() -> str:
        await sign_in(page, w.base, f["director"][0], PASSWORD)
        await page.click(f"text={school_name}")
        folder = write_dir(
            make_school(students=60, seed=11, grades=range(5, 7)),
            Path(tempfile.mkdtemp(prefix="parta-walk-")),
        )
        await page.click("#tab-import")
        await page.set_input_files("#import-files", sorted(str(p) for p in folder.glob("*.csv")))
        await page.click("#b-check")
        await expect(page.locator("#plan h2")).to_contain_text("План")
        accounts = await page.inner_text('#plan dd[data-count="create_accounts"]')
        await page.click("#b-apply")
        await expect(page.locator("#progress-text")).to_contain_text("100 %", timeout=600_000)
        await page.click("#to-codes")
        await expect(page.locator("#cards .card").first).to_be_visible()
        cards = await page.locator("#cards .card").count()
        pdf = Path(tempfile.gettempdir()) / f"parta-codes-{w.stamp}.pdf"
        await page.emulate_media(media="print")
        await page.pdf(path=str(pdf))
        await page.emulate_media(media="screen")
        school_id, import_id = page.url.split("#/s/")[1].split("/codes/")
        f["school_id"], f["import_id"] = urllib.parse.unquote(school_id), import_id
        await sign_out(page)
        return f"{accounts} accounts, {cards} cards printed to {pdf}"

    async def a_day_of_activity() -> str:
        token = await w.login(f["director"][0], PASSWORD)
        sid = f["school_id"]
        people = (
            await w.call("GET", f"{API}/schools/{q(sid)}/imports/{f['import_id']}/sign_ins", token)
        )["sign_ins"]
        classes = (await w.call("GET", f"{API}/schools/{q(sid)}/classes", token))["classes"]
        chats = {c["title"]: c["rooms"]["class_chat"] for c in classes}
        writers: list[tuple[str, str, str]] = []  # user_id, token, chat
        for title, chat in sorted(chats.items()):
            pupils = [p for p in people if p["role"] == "student" and p["classes"] == title][:3]
            teachers = [p for p in people if p["role"] == "teacher" and title in p["classes"]][:1]
            for p in teachers + pupils:
                writers.append((p["user_id"], await w.login(p["user_id"], p["code"]), chat))
        # The first sign-in joins the rooms in the background: wait for the class chat.
        deadline = time.monotonic() + 300
        for user_id, tok, chat in writers:
            while True:
                joined = await w.call("GET", "/_matrix/client/v3/joined_rooms", tok)
                if chat in joined["joined_rooms"]:
                    break
                check(time.monotonic() < deadline, f"{user_id} never joined {chat}")
                await asyncio.sleep(1)
        sent = 0
        for n, (_user_id, tok, chat) in enumerate(writers):
            for k in range(2):
                await w.call(
                    "PUT",
                    f"/_matrix/client/v3/rooms/{q(chat)}/send/m.room.message/w{w.stamp}-{n}-{k}",
                    tok,
                    {"msgtype": "m.text", "body": f"Сообщение {k + 1}"},
                )
                sent += 1
        # A lesson in the first class: the teacher starts it, the SFU reports who came.
        teacher_id, teacher_token, chat = writers[0]
        came = [u for u, _t, c in writers[1:] if c == chat]
        lesson = await w.call(
            "POST", f"{API}/rooms/{q(chat)}/lessons", teacher_token, {"title": "Дроби"}
        )
        secret = (VAR / "media-token-secret.txt").read_text().strip()
        t0 = lesson["started_at"]
        await w.call(
            "POST",
            f"{API}/internal/attendance",
            tokens.sign_service_token(secret, "sfu"),
            {
                "events": [
                    {
                        "kind": "join",
                        "room_id": chat,
                        "user_id": u,
                        "session_id": f"s{i}",
                        "ts": t0 + 1,
                    }
                    for i, u in enumerate([teacher_id, *came])
                ]
            },
        )
        await w.call(
            "POST", f"{API}/rooms/{q(chat)}/lessons/{lesson['lesson_id']}/end", teacher_token, {}
        )
        f["sent"], f["writers"], f["attendees"] = sent, len(writers), 1 + len(came)
        f["chats"] = len(chats)
        f["students"] = sum(1 for p in people if p["role"] == "student")
        stats = await w.call("GET", f"{API}/schools/{q(sid)}/statistics", token)
        f["today"] = stats["track"][-1]["day"]
        return (
            f"{sent} messages by {len(writers)} in {len(chats)} chats, a lesson of {len(came) + 1}"
        )

    async def history() -> str:
        """The days before today, as the daily job would have written them had the school
        existed: straight into ``parta_stats_daily`` (as ``bench statistics`` seeds), each
        a variation of today's real figures. Only for a track of several days to look at."""
        sid = f["school_id"]
        token = await w.login(f["director"][0], PASSWORD)
        today = await w.call("GET", f"{API}/schools/{q(sid)}/statistics", token)
        now = today["track"][-1]
        base = {k: int(today["totals"].get(k, 0)) for k in FIELDS}
        day0 = datetime.date.fromisoformat(now["day"])
        rows = []
        for d in range(1, w.history + 1):
            figures = dict(base)
            wave = (3, 5, 4, 6, 2, 1, 1)[d % 7]
            figures.update(
                messages=base["messages"] * wave // 3 + d,
                senders=min(base["senders"] * wave // 3 + 1, base["students"] + base["teachers"]),
                lessons=wave // 2,
                lesson_minutes=40 * (wave // 2),
                lesson_attendees=(wave // 2) * max(base["lesson_attendees"], 1),
                students_signed_in=max(base["students_signed_in"] - d, 0),
                teachers_signed_in=max(base["teachers_signed_in"] - d // 2, 0),
            )
            day = (day0 - datetime.timedelta(days=d)).isoformat()
            rows.append((sid, day, *(figures[k] for k in FIELDS), int(time.time() * 1000)))
        columns = ", ".join(FIELDS)
        marks = ", ".join("?" * (len(FIELDS) + 3))
        sql = f"INSERT INTO parta_stats_daily (school_id, day, {columns}, computed_ts) "
        dsn = os.environ.get("PARTA_DATABASE", "").strip()
        if dsn:
            import psycopg2

            with psycopg2.connect(dsn) as db, db.cursor() as cur:
                cur.executemany(sql + f"VALUES ({marks.replace('?', '%s')})", rows)
        else:
            with sqlite3.connect(VAR / "synapse" / "homeserver.db") as db:
                db.executemany(sql + f"VALUES ({marks})", rows)
        f["seeded_messages"] = sum(r[2 + FIELDS.index("messages")] for r in rows)
        f["seeded_lessons"] = sum(r[2 + FIELDS.index("lessons")] for r in rows)
        return f"{len(rows)} days before {day0} written into parta_stats_daily"

    async def coordinator_downloads() -> str:
        await sign_in(page, w.base, f["municipal"][0], PASSWORD)
        await open_unit(page, district)
        await page.click("#tab-statistics")
        await expect(page.locator("#stats-totals dd[data-figure=schools]")).to_have_text("1")
        if w.shots:
            await page.screenshot(path=str(w.shots / "statistics.png"), full_page=True)
        async with page.expect_download() as waiting:
            await page.click("#b-xlsx")
        download = await waiting.value
        saved = Path(tempfile.gettempdir()) / f"parta-statistics-{w.stamp}.xlsx"
        await download.save_as(saved)
        book = openpyxl.load_workbook(io.BytesIO(saved.read_bytes()))
        check(
            book.sheetnames == ["Общая статистика", "Школы", "Трэк активности"],
            f"sheets {book.sheetnames}",
        )

        def row_of(sheet: str, first: str) -> dict[str, Any]:
            rows = list(book[sheet].iter_rows(values_only=True))
            found = [r for r in rows[1:] if first in (str(r[0]), str(r[0])[:10])]
            check(len(found) == 1, f"no row «{first}» in «{sheet}»: {rows[:3]}…")
            return dict(zip([str(c) for c in rows[0]], found[0], strict=False))

        def figure(row: dict[str, Any], start: str) -> Any:
            found = [v for k, v in row.items() if k.startswith(start)]
            check(found, f"no column «{start}…» in {list(row)}")
            return found[0]

        # Today, in the track: exactly what this run did.
        day = row_of("Трэк активности", f["today"])
        for column, want in (
            ("Сообщений", f["sent"]),
            ("Писавших", f["writers"]),
            ("Видеоуроков", 1),
            ("Участий", f["attendees"]),
        ):
            got = figure(day, column)
            check(got == want, f"«{column}» on {f['today']}: {got}, expected {want}")
        # The period, in «Школы»: today and the seeded days summed.
        school = row_of("Школы", school_name)
        for column, want in (
            ("Сообщений", f["sent"] + f.get("seeded_messages", 0)),
            ("Видеоуроков", 1 + f.get("seeded_lessons", 0)),
            ("Классов с активным чатом", f["chats"]),
            ("Учеников по списку", f["students"]),
        ):
            got = figure(school, column)
            check(got == want, f"«{column}» of the school: {got}, expected {want}")
        said = f"{saved}: today {f['sent']} messages by {f['writers']}, a lesson of "
        said += f"{f['attendees']}; the period {figure(school, 'Сообщений')} messages"
        await sign_out(page)
        return said

    steps = [
        ("the operator makes three accounts", accounts),
        ("the operator makes a region and names its coordinator", operator_names_a_region),
        (
            "the regional coordinator makes a municipality and names its coordinator",
            regional_names_a_district,
        ),
        (
            "the municipal coordinator makes a school with its administrator",
            municipal_makes_a_school,
        ),
        ("the administrator imports the sample school and prints the codes", director_imports),
        ("a day of activity: messages in class chats, a lesson with attendance", a_day_of_activity),
        *(
            [("seeded history: the days before today, straight into the database", history)]
            if w.history
            else []
        ),
        (
            "the municipal coordinator downloads the statistics and opens them",
            coordinator_downloads,
        ),
    ]
    for title, work in steps:
        if not await w.step(title, work):
            break


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--headed", action="store_true")
    parser.add_argument("--shots", type=Path, help="write statistics.png here")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="DAYS",
        help="also write DAYS days before today into the statistics table (a longer track)",
    )
    args = parser.parse_args(argv)
    base = f"http://127.0.0.1:{PORT}"
    w = Walk(base, args.shots)
    w.history = args.history
    async with aiohttp.ClientSession() as w.http, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=FLAGS, headless=not args.headed
        )
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 1060})
            # Making a school makes its rooms: seconds on a loaded machine.
            expect.set_options(timeout=60_000)
            page.set_default_timeout(60_000)
            await walk(w, page)
        finally:
            await browser.close()
    return 1 if w.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
