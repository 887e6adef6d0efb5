"""Read-confirmation status of an announcement: 150, 500, 1,500-person schools
(``python -m bench.confirmations [--sizes 150,500,1500] [--samples 15]``).

What ``GET /rooms/{roomId}/confirmations/{event_id}`` does: read the request's row, the
announcements room's current state (every member), each member's roster standing
(cached after the first read), the request's confirmations, and group them per class.
On one real Synapse with the module (SQLite unless ``PARTA_TEST_DB=postgres``), for each
size a school of that many people — half students in classes of 25, the rest their
parents (every tenth parent has two children) and a few staff — is seeded fast: accounts
through the admin API (no password hashing), roster rows straight into the module's
tables, every person joined to the school's announcements room through the admin join
API (the module's join rules apply). The administrator posts an announcement asking for
confirmation; half the people's confirmations are written into ``parta_confirmations``.
Then the status is asked ``--samples`` times (JSON, then CSV): the median, and the ratio
against the smallest school in the same run. Growth: the exponent k in time ∝ size^k
between the smallest and the largest (1 = linear). The load average is printed beside.
"""

import argparse
import asyncio
import json
import math
import secrets
import statistics
import time
import urllib.parse
from typing import Any

from bench.school_morning import load_average
from bench.synapse_tools import call, homeserver, login_as, make_users, session
from synapse_module.confirmations.events import ask_content
from tests.harness import RunningHomeserver, User

CLASS_SIZE = 25
STAFF = 10


def sql_many(hs: RunningHomeserver, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows straight into the homeserver's database (as ``RunningHomeserver.sql``)."""
    if hs.hs.postgres is not None:
        import psycopg2

        conn = psycopg2.connect(**hs.hs.postgres.connect_args())
        try:
            with conn, conn.cursor() as cur:
                cur.executemany(statement.replace("?", "%s"), rows)
        finally:
            conn.close()
    else:
        import sqlite3

        lite = sqlite3.connect(hs.hs.directory / "homeserver.db", timeout=60)
        try:
            with lite:
                lite.executemany(statement, rows)
        finally:
            lite.close()


async def seed_school(hs: RunningHomeserver, operator: User, size: int) -> tuple[User, str]:
    """A school of ``size`` people in its announcements room: (administrator, room)."""
    admin = hs.register("admin")
    async with session(operator.access_token) as s:
        school = await call(
            s,
            "POST",
            f"{hs.api_url}/schools",
            {"name": f"Школа {size}", "administrators": [admin.user_id]},
            ok=(200, 201),
        )
    sid, room = school["school_id"], school["rooms"]["announcements"]
    students_n = size // 2
    parents_n = size - students_n - STAFF
    tag = secrets.token_hex(2)
    students = await make_users(hs, operator, f"s{size}{tag}-", students_n)
    parents = await make_users(hs, operator, f"p{size}{tag}-", parents_n)
    staff = await make_users(hs, operator, f"t{size}{tag}-", STAFF)
    classes = [f"cls_{size}_{tag}_{i}" for i in range(math.ceil(students_n / CLASS_SIZE))]
    now = int(time.time() * 1000)
    sql_many(
        hs,
        "INSERT INTO parta_classes (class_id, school_id, grade, letter, year, title,"
        " homeroom_user_id, external_id, archived, created_ts)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
        [
            (c, sid, 1 + i // 4, "абвг"[i % 4], "2026/27", c, False, now)
            for i, c in enumerate(classes)
        ],
    )
    roles = [(sid, u, "student") for u in students] + [(sid, u, "parent") for u in parents]
    roles += [(sid, u, "teacher") for u in staff]
    sql_many(
        hs, "INSERT INTO parta_school_roles (school_id, user_id, role) VALUES (?, ?, ?)", roles
    )
    sql_many(
        hs,
        "INSERT INTO parta_class_members (class_id, user_id, role) VALUES (?, ?, 'student')",
        [(classes[i // CLASS_SIZE], u) for i, u in enumerate(students)],
    )
    guardians = [(sid, p, students[i % students_n]) for i, p in enumerate(parents)]
    guardians += [
        (sid, p, students[(i + 1) % students_n]) for i, p in enumerate(parents) if i % 10 == 0
    ]
    sql_many(
        hs,
        "INSERT INTO parta_guardians (school_id, parent_user_id, child_user_id) VALUES (?, ?, ?)",
        guardians,
    )
    # The school's rooms are the service account's: it puts each person into the
    # announcements room by the admin join API (the module's join rules apply).
    service = f"@parta:{hs.server_name}"
    async with session(operator.access_token) as s:
        await call(s, "PUT", f"{hs.base_url}/_synapse/admin/v2/users/{service}", {"admin": True})
    token = await login_as(hs, operator, service)
    sem = asyncio.Semaphore(8)
    async with session(token) as s:

        async def join(user_id: str) -> None:
            async with sem:
                # invited by the service account, then joined (an invitation admits to
                # the restricted room without joining the school space first)
                url = f"{hs.base_url}/_synapse/admin/v1/join/{urllib.parse.quote(room)}"
                await call(s, "POST", url, {"user_id": user_id})

        await asyncio.gather(*(join(u) for u in students + parents + staff))
    return admin, room


async def ask_and_confirm(hs: RunningHomeserver, admin: User, room: str) -> str:
    """The announcement, and confirmations by every other member (written directly)."""
    quoted = urllib.parse.quote(room, safe="")
    async with session(admin.access_token) as s:
        sent = await call(
            s,
            "PUT",
            f"{hs.base_url}/_matrix/client/v3/rooms/{quoted}/send/m.room.message/{secrets.token_hex(6)}",
            ask_content("Собрание в четверг", by_reaction=True),
        )
        members = await call(
            s, "GET", f"{hs.base_url}/_matrix/client/v3/rooms/{quoted}/joined_members"
        )
    event_id: str = sent["event_id"]
    # indexed after it is stored: wait with a deadline
    deadline = time.monotonic() + 60
    async with session(admin.access_token) as s:
        path = f"{hs.api_url}/rooms/{quoted}/confirmations/{urllib.parse.quote(event_id, safe='')}"
        while True:
            async with s.get(path) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the request was not indexed")
            await asyncio.sleep(0.2)
    others = sorted(u for u in members["joined"] if u != admin.user_id)
    sql_many(
        hs,
        "INSERT INTO parta_confirmations (request_id, user_id, child_id, ts) VALUES (?, ?, '', ?)",
        [(event_id, u, 1) for u in others[::2]],
    )
    return event_id


async def timed(
    hs: RunningHomeserver, admin: User, room: str, event_id: str, samples: int, fmt: str
) -> tuple[float, int]:
    quoted = urllib.parse.quote(room, safe="")
    url = f"{hs.api_url}/rooms/{quoted}/confirmations/{urllib.parse.quote(event_id, safe='')}"
    times = []
    expected = 0
    async with session(admin.access_token) as s:
        for i in range(samples + 1):
            start = time.perf_counter()
            async with s.get(url, params={"format": fmt}) as r:
                data = await r.read()
                assert r.status == 200, data
            if i:  # the first warms the roster's caches
                times.append(time.perf_counter() - start)
            if fmt == "json":
                expected = int(json.loads(data)["expected"])
    return statistics.median(times) * 1000, expected


async def run(sizes: list[int], samples: int) -> None:
    with homeserver(load_module=True) as hs:
        operator = hs.register("operator", admin=True)
        rows = []
        for size in sizes:
            t0 = time.perf_counter()
            admin, room = await seed_school(hs, operator, size)
            event_id = await ask_and_confirm(hs, admin, room)
            seeded = time.perf_counter() - t0
            json_ms, expected = await timed(hs, admin, room, event_id, samples, "json")
            csv_ms, _ = await timed(hs, admin, room, event_id, samples, "csv")
            rows.append((size, expected, json_ms, csv_ms, seeded, load_average()))
        print(f"\nbackend {hs.backend}: median ms of the confirmation status ({samples} samples)")
        base = rows[0]
        for size, expected, json_ms, csv_ms, seeded, load in rows:
            print(
                f"{size:>6} people ({expected} expected)  json {json_ms:8.1f} ms"
                f"  x{json_ms / base[2]:5.2f}   csv {csv_ms:8.1f} ms  x{csv_ms / base[3]:5.2f}"
                f"   (seeded in {seeded:.0f} s; load {load})"
            )
        first, last = rows[0], rows[-1]
        k = math.log(last[2] / first[2]) / math.log(last[0] / first[0])
        print(f"growth {first[0]} → {last[0]} people: time ∝ size^{k:.2f} (1 = linear)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="150,500,1500")
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run([int(s) for s in args.sizes.split(",")], args.samples))


if __name__ == "__main__":
    main()
