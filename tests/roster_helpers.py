"""Building a school through the module API, as an administrator would."""

import time
import urllib.parse
from collections.abc import Iterable
from typing import Any

import attrs

from devtools.homeserver import HttpError
from tests.harness import RunningHomeserver, User

API = "/_synapse/client/parta/v1"


def api(hs: RunningHomeserver, method: str, path: str, user: User | None, body: Any = None) -> Any:
    return hs.request(method, f"{API}{path}", body, user.access_token if user else None)


def api_error(
    hs: RunningHomeserver, method: str, path: str, user: User | None, body: Any = None
) -> HttpError:
    try:
        api(hs, method, path, user, body)
    except HttpError as e:
        return e
    raise AssertionError(f"{method} {path} succeeded but should have failed")


def wait_for_rooms(hs: RunningHomeserver, user: User, seconds: float = 60) -> None:
    """After a first sign-in the login answers at once and the person's rooms are joined
    behind it: wait (with a deadline) until /me no longer says ``rooms_pending``."""
    deadline = time.monotonic() + seconds
    while api(hs, "GET", "/me", user).get("rooms_pending"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{user.user_id}'s rooms not joined within {seconds:.0f} s")
        time.sleep(0.1)


# The school-wide rooms (``rules.OPEN_KINDS``): an import joins its people to them before
# they sign in (``open_rooms_at_import``).
OPEN_ROOMS = ("school_space", "announcements", "documents", "articles")


def joined_members(hs: RunningHomeserver, admin: User, room_id: str) -> set[str]:
    """Who is joined to a room, asked through the admin API (``admin`` need not be in it)."""
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(room_id)}/members"
    return set(hs.request("GET", path, token=admin.access_token)["members"])


def wait_for_open_rooms(
    hs: RunningHomeserver,
    admin: User,
    room_ids: Iterable[str],
    user_ids: Iterable[str],
    seconds: float = 60,
) -> None:
    """People an import brought in before they sign in are joined to the school-wide
    rooms behind the import's answer: wait (with a deadline) until they all are."""
    deadline = time.monotonic() + seconds
    wanted = set(user_ids)
    for room_id in room_ids:
        while missing := wanted - joined_members(hs, admin, room_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"{sorted(missing)} not joined to {room_id} in time")
            time.sleep(0.1)


def membership_events(hs: RunningHomeserver, room_id: str, user_id: str) -> int:
    """How many membership events of ``user_id`` a room has (read from Synapse's
    database): what every member's /sync is woken by."""
    [(count,)] = hs.rows(
        "SELECT COUNT(*) FROM events WHERE room_id = ? AND type = 'm.room.member'"
        " AND state_key = ?",
        (room_id, user_id),
    )
    return int(count)


@attrs.define
class School:
    """A school with class 7А (teacher, three students, a parent) and a 7Б."""

    school_id: str
    rooms: dict[str, str]
    admin: User
    teacher: User
    other_teacher: User
    students: list[User]
    other_student: User
    parent: User
    class_a: dict[str, Any]
    class_b: dict[str, Any]


def build_school(hs: RunningHomeserver, operator: User, name: str = "Школа № 1") -> School:
    admin = hs.register("admin")
    school = api(
        hs,
        "POST",
        "/schools",
        operator,
        {
            "name": name,
            "address": "г. Калининград, ул. Школьная, 1",
            "administrators": [admin.user_id],
        },
    )
    sid = school["school_id"]
    class_a = api(
        hs, "POST", f"/schools/{sid}/classes", admin, {"grade": 7, "letter": "а", "year": "2026/27"}
    )
    class_b = api(
        hs, "POST", f"/schools/{sid}/classes", admin, {"grade": 7, "letter": "Б", "year": "2026/27"}
    )
    teacher = hs.register("teacher")
    other_teacher = hs.register("teacher2")
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{teacher.user_id}",
        admin,
        {
            "roles": ["teacher"],
            "classes": [class_a["class_id"]],
            "homeroom_of": [class_a["class_id"]],
        },
    )
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{other_teacher.user_id}",
        admin,
        {"roles": ["teacher"], "classes": [class_b["class_id"]]},
    )
    students = [hs.register("student") for _ in range(3)]
    for s in students:
        api(
            hs,
            "PUT",
            f"/schools/{sid}/members/{s.user_id}",
            admin,
            {"roles": ["student"], "classes": [class_a["class_id"]]},
        )
    other_student = hs.register("student-b")
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{other_student.user_id}",
        admin,
        {"roles": ["student"], "classes": [class_b["class_id"]]},
    )
    parent = hs.register("parent")
    api(
        hs,
        "PUT",
        f"/schools/{sid}/members/{parent.user_id}",
        admin,
        {"roles": ["parent"], "children": [students[0].user_id]},
    )
    return School(
        school_id=sid,
        rooms=school["rooms"],
        admin=admin,
        teacher=teacher,
        other_teacher=other_teacher,
        students=students,
        other_student=other_student,
        parent=parent,
        class_a=api(hs, "GET", f"/schools/{sid}/classes/{class_a['class_id']}", admin),
        class_b=api(hs, "GET", f"/schools/{sid}/classes/{class_b['class_id']}", admin),
    )
