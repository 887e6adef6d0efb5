"""Regional statistics: JSON answer and XLSX build for a region of 10, 20, 50 schools.

    PARTA_TEST_DB=sqlite   python -m bench statistics
    PARTA_TEST_DB=postgres python -m bench statistics --schools 10,20,50 --students 600

A real Synapse with the module; the region is seeded straight into the database while
Synapse is stopped (the roster's tables, Synapse's ``events`` and ``user_ips``-fed
journal, lessons, broadcasts and 29 days of daily rows per school), not through
thousands of API calls. Each size: ``GET /units/{region}/statistics`` (the default
period: 29 days of rows + today live) and ``…/statistics.xlsx`` timed over a few runs
(median), and the workbook built in-process from the JSON. Growth from the smallest to
the largest size is printed against linear (schools ratio); the load average beside, and
Synapse's CPU seconds per request (from /proc, which a loaded machine does not inflate the
way it inflates wall time) beside a baseline in the same run (``GET /units/{region}``).
"""

import argparse
import datetime
import json
import os
import secrets
import sqlite3
import statistics as stats
import tempfile
import time
import urllib.request
import zoneinfo
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synapse_module.statistics.rules import FIELDS, day_bounds
from synapse_module.statistics.workbook import workbook_bytes
from tests.harness import RunningHomeserver, running_homeserver

API = "/_synapse/client/parta/v1"
MSK = zoneinfo.ZoneInfo("Europe/Moscow")
CLASS_SIZE = 25
TEACHERS = 40
MESSAGES_PER_CLASS = 12  # today, per class chat
LESSONS = 10  # today, per school
PAST_DAYS = 29


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Seeder:
    """Bulk rows into the homeserver's database (SQLite or PostgreSQL)."""

    def __init__(self, hs: RunningHomeserver):
        self.hs = hs
        self.postgres = hs.hs.postgres is not None

    def run(self, batches: Sequence[tuple[str, list[tuple[Any, ...]]]]) -> None:
        if self.postgres:
            import psycopg2
            import psycopg2.extras

            conn = psycopg2.connect(**self.hs.hs.postgres.connect_args())  # type: ignore[union-attr]
            try:
                with conn, conn.cursor() as cur:
                    for sql, rows in batches:
                        psycopg2.extras.execute_batch(
                            cur, sql.replace("?", "%s"), rows, page_size=1000
                        )
            finally:
                conn.close()
        else:
            lite = sqlite3.connect(self.hs.hs.directory / "homeserver.db")
            try:
                with lite:
                    for sql, rows in batches:
                        lite.executemany(sql, rows)
            finally:
                lite.close()

    def scalar(self, sql: str) -> Any:
        if self.postgres:
            import psycopg2

            conn = psycopg2.connect(**self.hs.hs.postgres.connect_args())  # type: ignore[union-attr]
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return cur.fetchone()[0]
            finally:
                conn.close()
        lite = sqlite3.connect(self.hs.hs.directory / "homeserver.db")
        try:
            return lite.execute(sql).fetchone()[0]
        finally:
            lite.close()


def seed_schools(
    seeder: Seeder, region: str, municipalities: list[str], first: int, count: int, students: int
) -> None:
    """Schools ``first`` … ``first + count - 1`` with their people, rooms and activity."""
    now = int(time.time() * 1000)
    today = datetime.datetime.now(MSK).date()
    day_start, _ = day_bounds(today, MSK)
    # Activity sits in the part of today that has passed.
    span = max(now - day_start - 1000, 60_000)
    # Negative stream positions, as backfilled events have: below everything Synapse
    # wrote or will write, so its own stream and background updates pass them by.
    next_stream = int(seeder.scalar("SELECT COALESCE(MIN(stream_ordering), 0) FROM events")) - 1
    schools: list[tuple[Any, ...]] = []
    rooms: list[tuple[str, str, str | None, None, str]] = []
    roles: list[tuple[Any, ...]] = []
    codes: list[tuple[Any, ...]] = []
    seen: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    lessons: list[tuple[Any, ...]] = []
    sessions: list[tuple[Any, ...]] = []
    broadcasts: list[tuple[Any, ...]] = []
    links: list[tuple[Any, ...]] = []
    daily: list[tuple[Any, ...]] = []
    classes: list[tuple[Any, ...]] = []
    n_classes = max(1, students // CLASS_SIZE)
    for n in range(first, first + count):
        sid = f"sch_bench{n:04d}"
        unit = municipalities[n % len(municipalities)]
        schools.append(
            (
                sid,
                f"Школа № {n + 1}",
                None,
                None,
                "{}",
                None,
                "Europe/Moscow",
                unit,
                None,
                "{}",
                now - 40 * 86_400_000,
            )
        )
        for kind in ("school_space", "announcements", "staff", "documents", "articles"):
            rooms.append((f"!{sid}_{kind}:localhost", sid, None, None, kind))
        chats = []
        for c in range(n_classes):
            cid = f"cls_{sid}_{c}"
            classes.append(
                (
                    cid,
                    sid,
                    5 + c % 7,
                    "абвгд"[c // 7 % 5],
                    "2026/27",
                    f"{5 + c % 7}",
                    None,
                    None,
                    False,
                    now,
                )
            )
            for kind in ("class_space", "class_chat", "parents_chat"):
                rooms.append((f"!{cid}_{kind}:localhost", sid, cid, None, kind))
            chats.append(f"!{cid}_class_chat:localhost")
        people = (
            [(f"@t{n}_{i}:localhost", "teacher") for i in range(TEACHERS)]
            + [(f"@s{n}_{i}:localhost", "student") for i in range(students)]
            + [(f"@p{n}_{i}:localhost", "parent") for i in range(students)]
            + [(f"@a{n}:localhost", "administrator")]
        )
        for i, (user, role) in enumerate(people):
            roles.append((sid, user, role))
            if role == "student" and i % 5 == 0:
                codes.append(
                    (user, secrets.token_hex(8), "@parta:localhost", now, now + 86_400_000, None)
                )
            elif i % 10 < 7:
                seen.append((user, now - 86_400_000 * (i % 20)))
        for c, chat in enumerate(chats):
            for k in range(MESSAGES_PER_CLASS if c % 3 else 0):
                ts = day_start + (k * 7919 + c * 104729) % span
                sender = f"@s{n}_{(c * CLASS_SIZE + k) % students}:localhost"
                events.append(
                    (
                        next_stream,
                        next_stream,
                        f"$bench{next_stream}",
                        "m.room.message",
                        chat,
                        "{}",
                        True,
                        False,
                        1,
                        ts,
                        ts,
                        sender,
                        False,
                        "master",
                    )
                )
                next_stream -= 1
        for k in range(LESSONS):
            chat = chats[k % len(chats)]
            started = day_start + (k * 15485863) % span
            lid = f"les_{sid}_{k}"
            lessons.append(
                (
                    lid,
                    chat,
                    "Урок",
                    "ended",
                    started,
                    started,
                    started + 2_400_000,
                    f"@t{n}_0:localhost",
                    started,
                )
            )
            for j in range(20):
                sessions.append(
                    (chat, f"@s{n}_{j}:localhost", f"x{k}", None, started + j, started + 2_000_000)
                )
        bid = f"bc_{sid}"
        hall = f"!{sid}_announcements:localhost"
        broadcasts.append(
            (
                bid,
                hall,
                "Линейка",
                "[]",
                None,
                None,
                True,
                False,
                "ended",
                f"@a{n}:localhost",
                day_start + 1,
            )
        )
        for j in range(30):
            links.append(
                (
                    f"vl_{sid}_{j}",
                    bid,
                    f"@a{n}:localhost",
                    day_start + 2,
                    day_start + 86_400_000,
                    None,
                )
            )
        for d in range(1, PAST_DAYS + 1):
            day = (today - datetime.timedelta(d)).isoformat()
            figures = dict.fromkeys(FIELDS, 0)
            figures.update(
                teachers=TEACHERS,
                students=students,
                parents=students,
                teachers_registered=TEACHERS,
                students_registered=students * 4 // 5,
                parents_registered=students,
                teachers_signed_in=TEACHERS * 7 // 10,
                students_signed_in=students * 6 // 10,
                parents_signed_in=students // 2,
                classes=n_classes,
                active_classes=n_classes * 2 // 3,
                messages=150 + d,
                senders=60,
                lessons=LESSONS,
                lesson_minutes=LESSONS * 40,
                lesson_attendees=LESSONS * 20,
                broadcasts=d % 7 == 0,
                viewers=30 if d % 7 == 0 else 0,
            )
            daily.append((sid, day, *(int(figures[f]) for f in FIELDS), now))
    columns = ", ".join(FIELDS)
    seeder.run(
        [
            (insert("parta_schools", SCHOOL_COLUMNS), schools),
            (insert("parta_classes", CLASS_COLUMNS), classes),
            (insert("parta_rooms", "room_id, school_id, class_id, unit_id, kind"), rooms),
            (insert("parta_school_roles", "school_id, user_id, role"), roles),
            (insert("parta_sign_in_codes", CODE_COLUMNS), codes),
            (insert("parta_stats_seen", "user_id, first_seen_ts"), seen),
            (insert("events", EVENT_COLUMNS), events),
            (insert("parta_lessons", LESSON_COLUMNS), lessons),
            (insert("parta_room_sessions", SESSION_COLUMNS), sessions),
            (insert("parta_broadcasts", BROADCAST_COLUMNS), broadcasts),
            (insert("parta_viewer_links", LINK_COLUMNS), links),
            (insert("parta_stats_daily", f"school_id, day, {columns}, computed_ts"), daily),
        ]
    )


def insert(table: str, columns: str) -> str:
    marks = ", ".join("?" * len(columns.split(",")))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})"


SCHOOL_COLUMNS = (
    "school_id, name, short_name, address, contacts, logo_mxc, timezone, unit_id,"
    " external_id, policy, created_ts"
)
CLASS_COLUMNS = (
    "class_id, school_id, grade, letter, year, title, homeroom_user_id, external_id,"
    " archived, created_ts"
)
CODE_COLUMNS = "user_id, code_hash, created_by, created_ts, expires_ts, signed_in_ts"
EVENT_COLUMNS = (
    "stream_ordering, topological_ordering, event_id, type, room_id, content, processed,"
    " outlier, depth, origin_server_ts, received_ts, sender, contains_url, instance_name"
)
LESSON_COLUMNS = (
    "lesson_id, room_id, title, status, scheduled_start, started_at, ended_at, created_by,"
    " created_at"
)
SESSION_COLUMNS = "room_id, user_id, session_id, display_name, joined_at, left_at"
BROADCAST_COLUMNS = (
    "broadcast_id, room_id, title, speakers, starts_at, ends_at, public, recording, status,"
    " created_by, created_at"
)
LINK_COLUMNS = "link_id, broadcast_id, created_by, created_at, expires_at, revoked_at"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used: unlike wall time, it does not grow
    with the other processes on a loaded machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(hs: RunningHomeserver, path: str, token: str) -> float:
    """Synapse's CPU seconds for one request."""
    before = cpu_seconds(hs.proc.pid)
    get(hs, path, token)
    return cpu_seconds(hs.proc.pid) - before


def get(hs: RunningHomeserver, path: str, token: str) -> tuple[float, bytes]:
    req = urllib.request.Request(f"{hs.base_url}{API}{path}")
    req.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as answer:
        body: bytes = answer.read()
    return time.perf_counter() - started, body


def restart(hs: RunningHomeserver) -> None:
    hs.proc = hs.hs.start()
    hs.hs.wait_healthy(hs.proc)


def measure(sizes: Sequence[int], students: int, runs: int) -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as directory, running_homeserver(Path(directory)) as hs:
        operator = hs.register("operator", admin=True)
        post = hs.request
        region = post(
            "POST", f"{API}/units", {"kind": "region", "name": "Область"}, operator.access_token
        )
        municipalities = [
            post(
                "POST",
                f"{API}/units",
                {"kind": "municipality", "name": f"Район {m}", "parent_id": region["unit_id"]},
                operator.access_token,
            )["unit_id"]
            for m in range(5)
        ]
        seeder = Seeder(hs)
        seeded = 0
        for size in sizes:
            hs.stop()
            seed_schools(seeder, region["unit_id"], municipalities, seeded, size - seeded, students)
            seeded = size
            restart(hs)
            path = f"/units/{region['unit_id']}/statistics"
            get(hs, path, operator.access_token)  # warm the caches once
            token = operator.access_token
            unit = f"/units/{region['unit_id']}"
            baseline_s = stats.median(get(hs, unit, token)[0] for _ in range(runs))
            json_s = stats.median(get(hs, path, token)[0] for _ in range(runs))
            xlsx_s = stats.median(get(hs, f"{path}.xlsx", token)[0] for _ in range(runs))
            json_cpu = stats.median(cpu_of(hs, path, token) for _ in range(runs))
            xlsx_cpu = stats.median(cpu_of(hs, f"{path}.xlsx", token) for _ in range(runs))
            report = json.loads(get(hs, path, token)[1])
            build_s = stats.median(_timed(workbook_bytes, report) for _ in range(runs))
            assert report["totals"]["schools"] == size, report["totals"]
            yield {
                "schools": size,
                "students": size * students,
                "baseline_s": round(baseline_s, 3),
                "json_s": round(json_s, 3),
                "xlsx_s": round(xlsx_s, 3),
                "json_cpu_s": round(json_cpu, 3),
                "xlsx_cpu_s": round(xlsx_cpu, 3),
                "workbook_build_s": round(build_s, 3),
                "messages_today": report["track"][-1]["messages"],
                "load": load_average(),
            }


def _timed(work: Any, *args: Any) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", default="10,20,50", help="sizes, comma-separated")
    parser.add_argument("--students", type=int, default=600, help="students per school")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.schools.split(","))
    rows = []
    for row in measure(sizes, args.students, args.runs):
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    first, last = rows[0], rows[-1]
    scale = last["schools"] / first["schools"]
    for key in ("json_s", "xlsx_s", "json_cpu_s", "xlsx_cpu_s", "workbook_build_s"):
        growth = last[key] / first[key] if first[key] else float("inf")
        print(
            f"{key}: ×{growth:.2f} from {first['schools']} to {last['schools']} schools"
            f" (linear: ×{scale:.1f})"
        )


if __name__ == "__main__":
    main()
