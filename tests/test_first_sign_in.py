"""A roster import's person signing in for the first time: the login answers at once,
their rooms follow in the background, and a restart in between loses nobody."""

import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, api, build_school, wait_for_rooms


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
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(room_id)}/members"
    return set(hs.request("GET", path, token=operator.access_token)["members"])


def still_waiting(hs: RunningHomeserver, school: School) -> set[str]:
    listed = api(hs, "GET", f"/schools/{school.school_id}/members", school.admin)["members"]
    return {m["user_id"] for m in listed if m.get("signed_in") is False}


def the_rooms(school: School) -> list[str]:
    """The rooms a student of 7Б is put into."""
    return [
        school.rooms["school_space"],
        school.rooms["announcements"],
        school.class_b["rooms"]["class_space"],
        school.class_b["rooms"]["class_chat"],
    ]


def test_the_login_answers_and_the_rooms_follow(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    user_id = import_student(hs, school, "first-1", "FRST-AAAA-BBBB")
    assert not any(user_id in members(hs, operator, r) for r in the_rooms(school))
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
        # Someone who never signed in is still kept out until they do.
        assert never not in members(hs, operator, room_id)
    assert never in still_waiting(hs, school)


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
