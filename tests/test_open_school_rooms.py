"""The school-wide rooms every student is in (the school space, announcements, documents,
articles) are open in Matrix terms (``join_rule: public``) so that Synapse's user
directory keeps one row per member instead of one per pair of members; the roster still
decides every join, and nothing lists them. Older schools are opened at start-up."""

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.homeserver import HttpError
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, build_school, wait_for_rooms
from tests.test_first_sign_in import import_student, members, sign_in

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

OPEN = ("school_space", "announcements", "documents", "articles")


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    # Its own homeserver: the last test restarts it.
    with running_homeserver(tmp_path_factory.mktemp("open_rooms")) as running:
        yield running


@pytest.fixture(scope="module")
def operator(hs: RunningHomeserver) -> User:
    return hs.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver, operator: User) -> School:
    return build_school(hs, operator)


@pytest.fixture(scope="module")
def stranger(hs: RunningHomeserver) -> User:
    return hs.register("stranger")


def q(room_id: str) -> str:
    return urllib.parse.quote(room_id)


def state(hs: RunningHomeserver, operator: User, room_id: str, kind: str) -> dict[str, Any]:
    """The content of a room's state event ``kind`` (state key ""), as Synapse has it."""
    path = f"/_synapse/admin/v1/rooms/{q(room_id)}/state"
    events = hs.request("GET", path, None, operator.access_token)["state"]
    found = [e["content"] for e in events if e["type"] == kind and e["state_key"] == ""]
    return found[0] if found else {}


def refused(hs: RunningHomeserver, method: str, path: str, user: User, body: Any = None) -> str:
    """The error of a request that must be refused with 403."""
    with pytest.raises(HttpError) as info:
        hs.request(method, path, body if body is not None else {}, user.access_token)
    assert info.value.status == 403, (method, path, info.value.status, info.value.body)
    return str(info.value.body.get("error", ""))


def directory_rows(hs: RunningHomeserver, table: str, room_ids: list[str]) -> int:
    marks = ", ".join("?" for _ in room_ids)
    [(n,)] = hs.rows(f"SELECT COUNT(*) FROM {table} WHERE room_id IN ({marks})", tuple(room_ids))
    return int(n)


def until(what: str, check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_the_school_wide_rooms_are_open_and_the_others_are_not(
    hs: RunningHomeserver, operator: User, school: School
) -> None:
    for kind in OPEN:
        room_id = school.rooms[kind]
        assert state(hs, operator, room_id, "m.room.join_rules") == {"join_rule": "public"}, kind
        assert state(hs, operator, room_id, "m.room.guest_access") == {
            "guest_access": "forbidden"
        }, kind
    assert state(hs, operator, school.rooms["staff"], "m.room.join_rules")["join_rule"] == "invite"
    for kind in ("class_space", "class_chat", "parents_chat"):
        rule = state(hs, operator, school.class_a["rooms"][kind], "m.room.join_rules")
        assert rule["join_rule"] == "restricted", (kind, rule)


def test_a_stranger_cannot_join_knock_or_be_invited(
    hs: RunningHomeserver, operator: User, school: School, stranger: User
) -> None:
    other_school = build_school(hs, operator, "Школа № 2")
    # Someone of another school on this server is a stranger here too, and so is the
    # server's administrator (Synapse lets them past the spam checker; the module's event
    # rules still refuse the join).
    for person in (stranger, other_school.students[0], other_school.admin, operator):
        for kind in OPEN:
            room_id = school.rooms[kind]
            error = refused(hs, "POST", f"/_matrix/client/v3/join/{q(room_id)}", person)
            assert "по списку школы" in error and " / " in error, error
            # By the room's address form too (what Element's "join" does).
            error = refused(hs, "POST", f"/_matrix/client/v3/rooms/{q(room_id)}/join", person)
            assert "по списку школы" in error, error
            # Knocking is for rooms that ask for it, not these.
            refused(hs, "POST", f"/_matrix/client/v3/knock/{q(room_id)}", person, {})
    for kind in OPEN:
        room_id = school.rooms[kind]
        # Staff of the school cannot invite a stranger in; a stranger cannot invite at all.
        error = refused(
            hs,
            "POST",
            f"/_matrix/client/v3/rooms/{q(room_id)}/invite",
            school.admin,
            {"user_id": stranger.user_id},
        )
        assert "не состоит в этой школе" in error, error
        refused(
            hs,
            "POST",
            f"/_matrix/client/v3/rooms/{q(room_id)}/invite",
            stranger,
            {"user_id": other_school.students[0].user_id},
        )
        inside = members(hs, operator, room_id)
        assert stranger.user_id not in inside
        assert other_school.students[0].user_id not in inside
        assert other_school.admin.user_id not in inside
        assert operator.user_id not in inside
        # The school's own people are in.
        assert school.students[0].user_id in inside


def test_no_school_room_is_listed_in_the_room_directory(
    hs: RunningHomeserver, operator: User, school: School, stranger: User
) -> None:
    listed = hs.request("GET", "/_matrix/client/v3/publicRooms", None, stranger.access_token)
    listed_ids = {r["room_id"] for r in listed["chunk"]}
    for kind in OPEN:
        room_id = school.rooms[kind]
        assert room_id not in listed_ids
        path = f"/_matrix/client/v3/directory/list/room/{q(room_id)}"
        assert hs.request("GET", path)["visibility"] == "private"
        # Neither the school's administrator nor the server's can publish it.
        for who in (school.admin, operator):
            error = refused(hs, "PUT", path, who, {"visibility": "public"})
            assert "каталоге комнат" in error and " / " in error, error
        assert hs.request("GET", path)["visibility"] == "private"


def test_the_user_directory_keeps_one_row_a_member_of_an_open_room(
    hs: RunningHomeserver, school: School
) -> None:
    open_rooms = [school.rooms[k] for k in OPEN]
    # Synapse's user directory works behind the events: wait until it has the members.
    until(
        "the user directory did not catch up",
        lambda: directory_rows(hs, "users_in_public_rooms", open_rooms) >= 4 * 5,
    )
    assert directory_rows(hs, "users_who_share_private_rooms", open_rooms) == 0
    # Private rooms keep their pairs (the class chat of 7А: teacher and three students).
    chat = school.class_a["rooms"]["class_chat"]
    until(
        "the class chat's pairs are not there",
        lambda: directory_rows(hs, "users_who_share_private_rooms", [chat]) >= 4 * 3,
    )


def test_an_older_school_is_opened_at_start_up(
    hs: RunningHomeserver, operator: User, stranger: User
) -> None:
    school = build_school(hs, operator, "Школа № 3")
    space = school.rooms["school_space"]
    open_rooms = [school.rooms[k] for k in OPEN]
    # Give the school the shape schools had before: the space invite only (guests could
    # join, as the private_chat preset made it), its rooms restricted to the space. Only
    # the service account may send this state; the operator signs in as it.
    room = hs.request("GET", f"/_synapse/admin/v1/rooms/{q(space)}", None, operator.access_token)
    service = room["creator"]
    token = hs.request(
        "POST", f"/_synapse/admin/v1/users/{q(service)}/login", {}, operator.access_token
    )["access_token"]
    old: dict[str, dict[str, Any]] = {space: {"join_rule": "invite"}}
    for kind in OPEN[1:]:
        old[school.rooms[kind]] = {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": space}],
        }
    path = "/_matrix/client/v3/rooms/{}/state/{}/"
    guests = {"guest_access": "can_join"}
    hs.request("PUT", path.format(q(space), "m.room.guest_access"), guests, token)
    for room_id, rule in old.items():
        hs.request("PUT", path.format(q(room_id), "m.room.join_rules"), rule, token)
    # An import and a first sign-in into that shape: the space wants an invitation
    # first, and gets it (behind the import, or at the sign-in).
    code = "OPEN-AAAA-BBBB"
    user_id = import_student(hs, school, "older-1", code)
    student = sign_in(hs, user_id, code)
    wait_for_rooms(hs, student)
    for room_id in open_rooms:
        assert user_id in members(hs, operator, room_id)
    until(
        "the user directory did not record the private rooms' pairs",
        lambda: directory_rows(hs, "users_who_share_private_rooms", open_rooms) > 0,
    )

    hs.restart()
    until(
        "the start-up did not open the older school's rooms",
        lambda: all(
            state(hs, operator, r, "m.room.join_rules") == {"join_rule": "public"}
            for r in open_rooms
        ),
    )
    assert state(hs, operator, space, "m.room.guest_access") == {"guest_access": "forbidden"}
    # Only this school's: the others were open already, and are only read.
    until(
        "the start-up did not say what it opened",
        lambda: (
            "Opened 4 school-wide rooms of older schools"
            in hs.hs.log_path.read_text(errors="replace")
        ),
    )
    # Synapse's directory drops the pairs of rooms that became public.
    until(
        "the user directory kept the pairs of the opened rooms",
        lambda: directory_rows(hs, "users_who_share_private_rooms", open_rooms) == 0,
    )
    assert directory_rows(hs, "users_in_public_rooms", open_rooms) > 0
    # Opened, and still the roster's: a stranger is refused, a new student joins.
    error = refused(hs, "POST", f"/_matrix/client/v3/join/{q(space)}", stranger)
    assert "по списку школы" in error, error
    code = "OPEN-CCCC-DDDD"
    user_id = import_student(hs, school, "older-2", code)
    wait_for_rooms(hs, sign_in(hs, user_id, code))
    for room_id in open_rooms:
        assert user_id in members(hs, operator, room_id)
