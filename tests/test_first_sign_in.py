"""A roster import's person signing in for the first time: the login answers at once,
their rooms follow in the background, and a restart in between loses nobody. The
school-wide rooms are joined before, behind the import (``open_rooms_at_import``): the
first sign-in adds no membership event there, and someone who leaves the school before
ever signing in leaves them too."""

import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import (
    OPEN_ROOMS,
    School,
    api,
    build_school,
    joined_members,
    membership_events,
    wait_for_open_rooms,
    wait_for_rooms,
)


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("first_sign_in")) as running:
        yield running


@pytest.fixture(scope="module")
def operator(hs: RunningHomeserver) -> User:
    return hs.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver, operator: User) -> School:
    return build_school(hs, operator)


def import_student(hs: RunningHomeserver, school: School, name: str, code: str) -> str:
    user_id = f"@{name}:{hs.server_name}"
    entry = {
        "user_id": user_id,
        "roles": ["student"],
        "classes": [school.class_b["class_id"]],
        "account": {"display_name": name, "sign_in_code": code},
    }
    path = f"/schools/{school.school_id}/members/batch"
    [done] = api(hs, "POST", path, school.admin, {"members": [entry]})["members"]
    assert done["signed_in"] is False
    return user_id


def sign_in(hs: RunningHomeserver, user_id: str, code: str) -> User:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": code,
    }
    login = hs.request("POST", "/_matrix/client/v3/login", body)
    return User(user_id, "", code, login["access_token"], login["device_id"])


def members(hs: RunningHomeserver, operator: User, room_id: str) -> set[str]:
    return joined_members(hs, operator, room_id)


def still_waiting(hs: RunningHomeserver, school: School) -> set[str]:
    listed = api(hs, "GET", f"/schools/{school.school_id}/members", school.admin)["members"]
    return {m["user_id"] for m in listed if m.get("signed_in") is False}


def open_rooms(school: School) -> list[str]:
    """The school-wide rooms: joined behind the import, before the first sign-in."""
    return [school.rooms[kind] for kind in OPEN_ROOMS]


def class_rooms(school: School) -> list[str]:
    """The class's rooms a student of 7Б is put into at their first sign-in."""
    return [school.class_b["rooms"]["class_space"], school.class_b["rooms"]["class_chat"]]


def the_rooms(school: School) -> list[str]:
    """The rooms a student of 7Б is put into."""
    return open_rooms(school) + class_rooms(school)


def test_the_login_answers_and_the_rooms_follow(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    user_id = import_student(hs, school, "first-1", "FRST-AAAA-BBBB")
    # Before anyone signs in: in the school-wide rooms (behind the import), not in the
    # class's, and still waiting for the first sign-in.
    wait_for_open_rooms(hs, operator, open_rooms(school), [user_id])
    assert not any(user_id in members(hs, operator, r) for r in class_rooms(school))
    assert user_id in still_waiting(hs, school)
    before = {r: membership_events(hs, r, user_id) for r in the_rooms(school)}
    assert all(before[r] == 1 for r in open_rooms(school)), before
    assert all(before[r] == 0 for r in class_rooms(school)), before

    student = sign_in(hs, user_id, "FRST-AAAA-BBBB")
    wait_for_rooms(hs, student)
    joined = set(
        hs.request("GET", "/_matrix/client/v3/joined_rooms", None, student.access_token)[
            "joined_rooms"
        ]
    )
    assert set(the_rooms(school)) <= joined
    assert school.class_b["rooms"]["parents_chat"] not in joined
    assert user_id not in still_waiting(hs, school)
    # The first sign-in sent membership events into the class's rooms only: nothing in
    # the school-wide rooms woke the whole school's syncs.
    after = {r: membership_events(hs, r, user_id) for r in the_rooms(school)}
    assert {r: after[r] - before[r] for r in open_rooms(school)} == dict.fromkeys(
        open_rooms(school), 0
    )
    assert all(after[r] == 1 for r in class_rooms(school)), after
    me = api(hs, "GET", "/me", student)
    assert "rooms_pending" not in me
    # A later sign-in joins nothing again.
    again = sign_in(hs, user_id, "FRST-AAAA-BBBB")
    assert "rooms_pending" not in api(hs, "GET", "/me", again)


def execute(hs: RunningHomeserver, sql: str, args: tuple[Any, ...]) -> None:
    """One statement on the stopped homeserver's database (``?`` placeholders)."""
    if hs.hs.postgres is None:
        with sqlite3.connect(hs.hs.directory / "homeserver.db") as conn:
            conn.execute(sql, args)
        return
    import psycopg2

    conn = psycopg2.connect(**hs.hs.postgres.connect_args())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), args)
    finally:
        conn.close()


def test_a_restart_resumes_the_rooms_of_unfinished_first_sign_ins(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    interrupted = import_student(hs, school, "first-2", "FRST-CCCC-DDDD")
    never = import_student(hs, school, "first-3", "FRST-EEEE-FFFF")
    # (Their school-wide rooms joined first: a restart loses the joins still queued
    # behind an import, which the first sign-in then makes — below, the lost join.)
    wait_for_open_rooms(hs, operator, open_rooms(school), [interrupted, never])
    # The journal as a restart leaves it when it comes between a first sign-in and the
    # end of its joins: signed in, rooms not (all) joined.
    hs.stop()
    execute(
        hs,
        "UPDATE parta_sign_in_codes SET first_sign_in_ts = ? WHERE user_id = ?",
        (int(time.time() * 1000), interrupted),
    )
    hs.restart()
    deadline = time.monotonic() + 60
    while interrupted in still_waiting(hs, school):
        assert time.monotonic() < deadline, "the interrupted sign-in was not resumed"
        time.sleep(0.2)
    for room_id in the_rooms(school):
        assert interrupted in members(hs, operator, room_id)
    # Someone who never signed in is in the school-wide rooms (the import put them
    # there), and kept out of the class's until they sign in.
    for room_id in open_rooms(school):
        assert never in members(hs, operator, room_id)
    for room_id in class_rooms(school):
        assert never not in members(hs, operator, room_id)
    assert never in still_waiting(hs, school)


def test_a_pupil_removed_before_signing_in_leaves_the_school_wide_rooms(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    user_id = import_student(hs, school, "first-4", "FRST-GGGG-HHHH")
    wait_for_open_rooms(hs, operator, open_rooms(school), [user_id])
    api(hs, "DELETE", f"/schools/{school.school_id}/members/{user_id}", school.admin)
    for room_id in the_rooms(school):
        assert user_id not in members(hs, operator, room_id)
    # Brought back: the school-wide rooms again, the class's still at the sign-in.
    import_student(hs, school, "first-4", "FRST-GGGG-HHHH")
    wait_for_open_rooms(hs, operator, open_rooms(school), [user_id])
    for room_id in class_rooms(school):
        assert user_id not in members(hs, operator, room_id)


def test_a_lost_join_is_made_at_the_first_sign_in(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    """The joins behind an import keep no journal: one a restart lost (here: the pupil
    left the announcements room by hand) is made by the first sign-in."""
    user_id = import_student(hs, school, "first-5", "FRST-JJJJ-KKKK")
    wait_for_open_rooms(hs, operator, open_rooms(school), [user_id])
    announcements = school.rooms["announcements"]
    service = hs.request(
        "GET",
        f"/_synapse/admin/v1/rooms/{urllib.parse.quote(announcements)}",
        None,
        operator.access_token,
    )["creator"]
    token = hs.request(
        "POST",
        f"/_synapse/admin/v1/users/{urllib.parse.quote(service)}/login",
        {},
        operator.access_token,
    )["access_token"]
    hs.request(
        "POST",
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(announcements)}/kick",
        {"user_id": user_id},
        token,
    )
    assert user_id not in members(hs, operator, announcements)
    student = sign_in(hs, user_id, "FRST-JJJJ-KKKK")
    wait_for_rooms(hs, student)
    for room_id in the_rooms(school):
        assert user_id in members(hs, operator, room_id)


def test_without_open_rooms_at_import_everything_waits_for_the_sign_in(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    """``open_rooms_at_import: false``: nobody is joined before signing in (the first
    sign-in joins every room, as before)."""
    running = hs.hs
    hs.hs = attrs.evolve(
        running, module_config={**running.module_config, "open_rooms_at_import": False}
    )
    hs.hs.write_config()
    hs.restart()
    try:
        late = import_student(hs, school, "first-6", "FRST-LLLL-MMMM")
        first = import_student(hs, school, "first-7", "FRST-NNNN-PPPP")
        # A whole first sign-in of another pupil comes and goes: nothing joined the
        # waiting one meanwhile.
        wait_for_rooms(hs, sign_in(hs, first, "FRST-NNNN-PPPP"))
        for room_id in the_rooms(school):
            assert membership_events(hs, room_id, late) == 0
        wait_for_rooms(hs, sign_in(hs, late, "FRST-LLLL-MMMM"))
        for room_id in the_rooms(school):
            assert late in members(hs, operator, room_id)
            assert membership_events(hs, room_id, late) == 1
    finally:
        hs.hs = running
        hs.hs.write_config()
        hs.restart()


def test_on_sqlite_a_commit_does_not_wait_for_the_disk(hs: RunningHomeserver) -> None:
    """The module sets ``synchronous = NORMAL`` on Synapse's SQLite connection (the first
    morning's joins waited on an fsync per commit); PostgreSQL is left alone."""
    said = "SQLite: synchronous = normal"
    deadline = time.monotonic() + 60
    while hs.backend == "sqlite" and said not in hs.hs.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, hs.hs.tail_output()
        time.sleep(0.2)
    log = hs.hs.log_path.read_text(errors="replace")
    assert (said in log) == (hs.backend == "sqlite")
