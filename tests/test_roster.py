"""Schools, classes and roles, held by the real homeserver for every Matrix client.

One school is built once for this module (see ``roster_helpers.build_school``); every
cell of the role × action × place table below is then tried by a real matrix-nio client.
"""

import asyncio
import concurrent.futures
import contextlib
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from nio import (
    AsyncClient,
    JoinError,
    JoinResponse,
    LoginResponse,
    RoomCreateError,
    RoomCreateResponse,
    RoomInviteError,
    RoomInviteResponse,
    RoomPreset,
    RoomPutStateError,
    RoomPutStateResponse,
    RoomSendResponse,
)

from devtools.homeserver import HttpError
from parta_common import catalogue, events
from tests.harness import RunningHomeserver, User, free_port, running_homeserver
from tests.roster_helpers import School, api, api_error, build_school

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def operator(synapse: RunningHomeserver) -> User:
    return synapse.register("operator", admin=True)


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver, operator: User) -> School:
    return build_school(synapse, operator)


@pytest.fixture(scope="module")
def outsider(synapse: RunningHomeserver) -> User:
    return synapse.register("outsider")


async def joined_rooms(hs: RunningHomeserver, user: User) -> set[str]:
    async with hs.client(user) as c:
        resp = await c.joined_rooms()
        return set(resp.rooms)


def self_signed(d: Path) -> tuple[Path, Path]:
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


# -- what each role sees ------------------------------------------------------


async def test_each_role_is_in_exactly_its_rooms(
    synapse: RunningHomeserver, school: School
) -> None:
    r = school.rooms
    a = school.class_a["rooms"]
    b = school.class_b["rooms"]
    school_wide = {r["school_space"], r["announcements"], r["documents"], r["articles"]}
    expected = {
        "student": school_wide | {a["class_space"], a["class_chat"]},
        "teacher": school_wide | {r["staff"], a["class_space"], a["class_chat"], a["parents_chat"]},
        "other_teacher": school_wide | {r["staff"], b["class_space"], b["class_chat"]},
        "parent": school_wide | {a["parents_chat"]},
        "admin": school_wide | {r["staff"]},
    }
    users = {
        "student": school.students[1],
        "teacher": school.teacher,
        "other_teacher": school.other_teacher,
        "parent": school.parent,
        "admin": school.admin,
    }
    for name, user in users.items():
        assert await joined_rooms(synapse, user) == expected[name], name


async def test_power_levels_follow_roles(synapse: RunningHomeserver, school: School) -> None:
    async with synapse.client(school.teacher) as c:
        resp = await c.room_get_state_event(
            school.class_a["rooms"]["class_chat"], "m.room.power_levels"
        )
        users = resp.content["users"]
    assert users[school.teacher.user_id] == 50
    assert users[school.admin.user_id] == 100
    assert school.students[0].user_id not in users
    assert school.other_teacher.user_id not in users


# -- the role × action × place table -----------------------------------------

Outcome = tuple[bool, str]


async def send_message(c: AsyncClient, room_id: str) -> Outcome:
    resp = await c.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "Привет"})
    return isinstance(resp, RoomSendResponse), getattr(resp, "message", "")


async def join(c: AsyncClient, room_id: str) -> Outcome:
    resp = await c.join(room_id)
    return isinstance(resp, JoinResponse), getattr(resp, "message", "")


async def set_power(c: AsyncClient, room_id: str) -> Outcome:
    content = {"users": {c.user_id: 100}, "users_default": 0}
    resp = await c.room_put_state(room_id, "m.room.power_levels", content)
    return isinstance(resp, RoomPutStateResponse), getattr(resp, "message", "")


async def add_space_child(c: AsyncClient, space_id: str) -> Outcome:
    resp = await c.room_put_state(
        space_id, "m.space.child", {"via": ["localhost"]}, state_key="!fake:localhost"
    )
    return isinstance(resp, RoomPutStateResponse), getattr(resp, "message", "")


async def create_group(c: AsyncClient, _: str) -> Outcome:
    resp = await c.room_create(name="Наш чат")
    return isinstance(resp, RoomCreateResponse), getattr(resp, "message", "")


def place(school: School, name: str) -> str:
    if name in school.rooms:
        return school.rooms[name]
    cls, kind = name.split(".")
    room_id: str = (school.class_a if cls == "7a" else school.class_b)["rooms"][kind]
    return room_id


ACTIONS: dict[str, Callable[[AsyncClient, str], Awaitable[Outcome]]] = {
    "send": send_message,
    "join": join,
    "power": set_power,
    "space_child": add_space_child,
    "create_group": create_group,
}

# (who, action, place, allowed)
MATRIX = [
    ("student", "send", "7a.class_chat", True),
    ("student", "send", "announcements", False),
    ("teacher", "send", "announcements", True),
    ("admin", "send", "announcements", True),
    ("parent", "send", "announcements", False),
    ("parent", "send", "7a.parents_chat", True),
    ("student", "send", "documents", False),
    ("teacher", "send", "documents", True),
    ("student", "join", "7b.class_chat", False),
    ("student", "join", "7b.class_space", False),
    ("student", "join", "staff", False),
    ("student", "join", "7a.parents_chat", False),
    ("parent", "join", "7a.class_chat", False),
    ("parent", "join", "staff", False),
    ("teacher", "join", "7b.class_chat", False),
    ("other_teacher", "join", "7a.parents_chat", False),
    ("admin", "join", "7b.class_chat", True),
    ("student", "power", "7a.class_chat", False),
    ("teacher", "power", "7a.class_chat", False),
    ("admin", "power", "announcements", False),
    ("student", "space_child", "school_space", False),
    ("teacher", "space_child", "school_space", False),
    ("teacher", "space_child", "7a.class_space", False),
    ("student", "create_group", "-", False),
    ("parent", "create_group", "-", True),
    ("teacher", "create_group", "-", True),
]


def who(school: School, name: str) -> User:
    return {
        "student": school.students[1],
        "teacher": school.teacher,
        "other_teacher": school.other_teacher,
        "parent": school.parent,
        "admin": school.admin,
    }[name]


@pytest.mark.parametrize(("role", "action", "where", "allowed"), MATRIX)
async def test_role_action_place(
    synapse: RunningHomeserver, school: School, role: str, action: str, where: str, allowed: bool
) -> None:
    room_id = place(school, where) if where != "-" else ""
    async with synapse.client(who(school, role)) as c:
        ok, message = await ACTIONS[action](c, room_id)
    assert ok is allowed, f"{role} {action} {where}: {message}"
    if not allowed:
        # Parta's refusals say why, in Russian and English.
        assert " / " in message, message


# -- ways around the rules ----------------------------------------------------

# The second table: ways around the roles found by review (issue 17), each a row of
# role × path × place, tried by real clients against a server with lessons and
# broadcasts on and a second homeserver the school allows. Each refusal carries an
# errcode and the reason in Russian and English.


@attrs.define
class Ways:
    a: RunningHomeserver
    b: RunningHomeserver
    school: School
    # A second administrator, the one the teacher tries to rewrite (so that a hole in
    # that row cannot take the first one's rights away from the rows after it).
    admin2: User


@pytest.fixture(scope="module")
def ways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ways]:
    d = tmp_path_factory.mktemp("ways")
    tls = self_signed(d)
    port_b = free_port()
    config = {
        "media": {
            "enabled": True,
            "token_secret": secrets.token_urlsafe(32),
            "sfu_public_url": "http://127.0.0.1:8090/",
            "livekit": {"url": "wss://livekit.test", "api_key": "p", "api_secret": "l" * 40},
        },
        # Server ACLs match the host without its port (and refuse IP literals).
        "policy": {"federation_allowed_servers": [f"localhost:{port_b}", "localhost"]},
    }
    with (
        running_homeserver(
            d / "school", module_config=config, federation_port=free_port(), tls_files=tls
        ) as a,
        running_homeserver(
            d / "partner",
            federation_port=port_b,
            tls_files=tls,
            load_module=False,
            federation_host="localhost",
        ) as b,
    ):
        school = build_school(a, a.register("op", admin=True))
        # The school lets the partner server's people in, as far as the roster allows.
        api(
            a,
            "PATCH",
            f"/schools/{school.school_id}",
            school.admin,
            {"policy": {"federation_allowed_servers": [b.server_name, "localhost"]}},
        )
        admin2 = a.register("admin2")
        api(
            a,
            "PUT",
            f"/schools/{school.school_id}/members/{admin2.user_id}",
            school.admin,
            {"roles": ["administrator"]},
        )
        yield Ways(a, b, school, admin2)


Refusal = tuple[str, str]  # errcode, error


def _refusal(e: HttpError) -> Refusal:
    assert e.status == 403, (e.status, e.body)
    return e.body.get("errcode", ""), e.body.get("error", "")


def _http(hs: RunningHomeserver, method: str, path: str, user: User, body: Any = None) -> Refusal:
    try:
        hs.request(method, path, body if body is not None else {}, user.access_token)
    except HttpError as e:
        return _refusal(e)
    raise AssertionError(f"{method} {path} succeeded but should have been refused")


def _nio(resp: Any) -> Refusal:
    assert not isinstance(resp, (RoomInviteResponse, JoinResponse)), "not refused"
    return resp.status_code or "", resp.message


def teacher_puts(name: str) -> Callable[[Ways], Awaitable[Refusal]]:
    async def attempt(w: Ways) -> Refusal:
        s = w.school
        target = {
            "admin": w.admin2,
            "other_teacher": s.other_teacher,
            "parent": s.parent,
            "other_student": s.other_student,
        }[name]
        return _http(
            w.a,
            "PUT",
            f"/_synapse/client/parta/v1/schools/{s.school_id}/members/{target.user_id}",
            s.teacher,
            {"roles": ["student"], "classes": [s.class_a["class_id"]]},
        )

    return attempt


async def _student_room(w: Ways, **kwargs: Any) -> str:
    async with w.a.client(w.school.students[0]) as c:
        resp = await c.room_create(name="Мой чат", **kwargs)
        assert isinstance(resp, RoomCreateResponse), resp
        return str(resp.room_id)


def student_own_room(path: str) -> Callable[[Ways], Awaitable[Refusal]]:
    async def attempt(w: Ways) -> Refusal:
        room_id = await _student_room(w, is_direct=True)
        base = f"/_synapse/client/parta/v1/rooms/{urllib.parse.quote(room_id)}"
        student = w.school.students[0]
        if path == "media_token":
            # Power 100 in their own room, still a student: a participant's grants.
            token = w.a.request("POST", f"{base}/media_token", {}, student.access_token)
            assert token["role"] == "student", token
            return "M_FORBIDDEN", "— / —"
        if path == "handin":
            return _http(w.a, "PUT", f"{base}/handin", student, {"open": True})
        if path == "broadcast":
            body = {"title": "Мой эфир", "speakers": [student.user_id], "public": True}
            return _http(w.a, "POST", f"{base}/broadcasts", student, body)
        return _http(w.a, "POST", f"{base}/lessons", student, {"title": "Мой урок"})

    return attempt


async def third_by_the_student(w: Ways) -> Refusal:
    s = w.school
    room_id = await _student_room(w, is_direct=True, invite=[s.students[1].user_id])
    async with w.a.client(s.students[0]) as c:
        return _nio(await c.room_invite(room_id, s.students[2].user_id))


async def third_by_the_classmate(w: Ways) -> Refusal:
    s = w.school
    room_id = await _student_room(w, is_direct=True, invite=[s.students[1].user_id])
    async with w.a.client(s.students[1]) as c:
        assert isinstance(await c.join(room_id), JoinResponse)
        return _nio(await c.room_invite(room_id, s.students[2].user_id))


async def third_joins_by_id(w: Ways) -> Refusal:
    s = w.school
    room_id = await _student_room(
        w, is_direct=True, preset=RoomPreset.public_chat, invite=[s.students[1].user_id]
    )
    async with w.a.client(s.students[1]) as c:
        assert isinstance(await c.join(room_id), JoinResponse)
    async with w.a.client(s.students[2]) as c:
        return _nio(await c.join(room_id))


async def admin_upgrades(w: Ways) -> Refusal:
    room_id = w.school.rooms["announcements"]
    return _http(
        w.a,
        "POST",
        f"/_matrix/client/v3/rooms/{room_id}/upgrade",
        w.school.admin,
        {"new_version": "11"},
    )


async def admin_sets_alias(w: Ways) -> Refusal:
    room_id = w.school.rooms["announcements"]
    alias = f"#elsewhere-{secrets.token_hex(3)}:{w.a.server_name}"
    # The alias exists and points to the room; only naming it the room's address is refused.
    w.a.request(
        "PUT",
        f"/_matrix/client/v3/directory/room/{urllib.parse.quote(alias)}",
        {"room_id": room_id},
        w.school.admin.access_token,
    )
    return _http(
        w.a,
        "PUT",
        f"/_matrix/client/v3/rooms/{room_id}/state/m.room.canonical_alias/",
        w.school.admin,
        {"alias": alias},
    )


async def remote_joins(w: Ways) -> Refusal:
    stranger = w.b.register("partner")
    room_id = w.school.rooms["announcements"]
    return _http(
        w.b, "POST", f"/_matrix/client/v3/join/{room_id}?server_name={w.a.server_name}", stranger
    )


P = "/_synapse/client/parta/v1"


async def many_parent_codes(w: Ways) -> Refusal:
    student = w.school.students[2]
    body = {"school_id": w.school.school_id}
    for made in range(11):
        try:
            w.a.request("POST", f"{P}/me/parent_invite", body, student.access_token)
        except HttpError as e:
            assert made >= 2, "a student may give their parents at least two codes"
            return _refusal(e)
    raise AssertionError("eleven parent codes open at once")


async def other_teacher_confirms(w: Ways) -> Refusal:
    s = w.school
    code = w.a.request(
        "POST", f"{P}/me/parent_invite", {"school_id": s.school_id}, s.students[1].access_token
    )["code"]
    stranger = w.a.register("stranger")
    w.a.request("POST", f"{P}/invites/{code}/redeem", {}, stranger.access_token)
    links = w.a.request(
        "GET", f"{P}/schools/{s.school_id}/parent_links", None, s.teacher.access_token
    )["parent_links"]
    link = next(x for x in links if x["parent_user_id"] == stranger.user_id)
    return _http(
        w.a,
        "POST",
        f"{P}/schools/{s.school_id}/parent_links/{link['link_id']}/confirm",
        s.other_teacher,
    )


# (item of issue 17, role, path, place, attempt, what the refusal says in Russian)
WAYS_AROUND: list[tuple[str, str, str, str, Callable[[Ways], Awaitable[Refusal]], str]] = [
    ("1", "teacher", "PUT member", "the administrator", teacher_puts("admin"), "Учитель меняет"),
    ("1", "teacher", "PUT member", "another teacher", teacher_puts("other_teacher"), "Учитель"),
    ("1", "teacher", "PUT member", "a parent", teacher_puts("parent"), "Учитель меняет"),
    ("1", "teacher", "PUT member", "7Б's student", teacher_puts("other_student"), "Учитель"),
    ("2", "student", "media_token", "own room", student_own_room("media_token"), "—"),
    ("2", "student", "POST broadcasts", "own room", student_own_room("broadcast"), "Трансляции"),
    ("2", "student", "POST lessons", "own room", student_own_room("lesson"), "Уроки"),
    ("2", "student", "PUT handin", "own room", student_own_room("handin"), "только учителя"),
    ("3", "student", "invite a third", "own DM", third_by_the_student, "на двоих"),
    ("3", "classmate", "invite a third", "a DM", third_by_the_classmate, "на двоих"),
    ("3", "student", "join by ID", "a public DM", third_joins_by_id, "на двоих"),
    ("5", "admin", "/upgrade", "announcements", admin_upgrades, "нельзя обновить"),
    ("5", "admin", "canonical_alias", "announcements", admin_sets_alias, "m.room.canonical_alias"),
    ("6", "partner server", "join", "announcements", remote_joins, "по списку школы"),
    ("7", "student", "POST parent_invite", "school", many_parent_codes, "кода для родителей"),
    ("7", "other teacher", "confirm parent link", "7a", other_teacher_confirms, "руководитель"),
]


@pytest.mark.parametrize(
    ("item", "role", "path", "where", "attempt", "fragment"),
    WAYS_AROUND,
    ids=[f"{r[0]}-{r[1]}-{r[2]}-{r[3]}" for r in WAYS_AROUND],
)
async def test_ways_around_are_refused(
    ways: Ways,
    item: str,
    role: str,
    path: str,
    where: str,
    attempt: Callable[[Ways], Awaitable[Refusal]],
    fragment: str,
) -> None:
    errcode, error = await attempt(ways)
    assert errcode == "M_FORBIDDEN", (errcode, error)
    assert fragment in error, error
    # Russian first, then English.
    assert " / " in error, error


async def test_direct_chats_follow_the_school_policy(
    synapse: RunningHomeserver, school: School, outsider: User
) -> None:
    student, classmate = school.students[1], school.students[2]

    async def dm(a: User, b: User) -> RoomCreateResponse | RoomCreateError:
        async with synapse.client(a) as c:
            return await c.room_create(is_direct=True, invite=[b.user_id])

    assert isinstance(await dm(student, classmate), RoomCreateResponse)
    assert isinstance(await dm(student, school.teacher), RoomCreateResponse)
    assert isinstance(await dm(school.teacher, student), RoomCreateResponse)
    assert isinstance(await dm(school.parent, school.teacher), RoomCreateResponse)
    assert isinstance(await dm(school.parent, school.students[0]), RoomCreateResponse)
    refused = await dm(student, school.other_student)
    assert isinstance(refused, RoomCreateError)
    assert "одноклассниками" in refused.message and "classmates" in refused.message
    refused = await dm(outsider, student)
    assert isinstance(refused, RoomCreateError)
    assert "Писать ученику" in refused.message
    assert isinstance(await dm(school.parent, student), RoomCreateError)
    assert isinstance(await dm(student, outsider), RoomCreateError)


async def test_inviting_through_a_new_dm_is_refused(
    synapse: RunningHomeserver, school: School, outsider: User
) -> None:
    student, classmate = school.students[1], school.students[2]
    async with synapse.client(student) as c:
        room = await c.room_create(is_direct=True, invite=[classmate.user_id])
        assert isinstance(room, RoomCreateResponse), room
        resp = await c.room_invite(room.room_id, school.other_student.user_id)
        assert isinstance(resp, RoomInviteError), resp
        resp = await c.room_invite(room.room_id, outsider.user_id)
        assert isinstance(resp, RoomInviteError), resp
    # And an outsider who gets a student into a room of their own cannot either.
    async with synapse.client(outsider) as c:
        room = await c.room_create(name="Кружок")
        assert isinstance(room, RoomCreateResponse)
        resp = await c.room_invite(room.room_id, student.user_id)
        assert isinstance(resp, RoomInviteError)
        assert "Writing" not in resp.message and " / " in resp.message


async def test_two_invites_at_once_cannot_both_pass(
    synapse: RunningHomeserver, school: School
) -> None:
    await invites_at_once(synapse, school)


async def invites_at_once(hs: RunningHomeserver, school: School, rounds: int = 8) -> None:
    """The two-person limit of a student's direct chat holds for invites sent at the same
    moment (and for an invite racing a classmate's join of a public one): of each pair,
    exactly one gets in, in every round. (Also run on workers, tests/test_workers.py.)"""
    owner, first, second = school.students
    async with (
        hs.client(owner) as a,
        hs.client(owner) as b,
        hs.client(second) as joiner,
    ):
        for n in range(rounds):
            made = await a.room_create(is_direct=True)
            assert isinstance(made, RoomCreateResponse), made
            both = await asyncio.gather(
                a.room_invite(made.room_id, first.user_id),
                b.room_invite(made.room_id, second.user_id),
            )
            passed = [r for r in both if isinstance(r, RoomInviteResponse)]
            assert len(passed) == 1, (n, both)
            refused = [r for r in both if isinstance(r, RoomInviteError)]
            assert "на двоих" in refused[0].message, refused[0].message
            # An invite racing a join of a public one: one of them.
            public = await a.room_create(is_direct=True, preset=RoomPreset.public_chat)
            assert isinstance(public, RoomCreateResponse), public
            raced = await asyncio.gather(
                a.room_invite(public.room_id, first.user_id),
                joiner.join(public.room_id),
            )
            ok = [r for r in raced if isinstance(r, RoomInviteResponse | JoinResponse)]
            assert len(ok) == 1, (n, raced)


async def test_invites_into_school_rooms(synapse: RunningHomeserver, school: School) -> None:
    chat_a = school.class_a["rooms"]["class_chat"]
    async with synapse.client(school.students[1]) as c:
        resp = await c.room_invite(chat_a, school.other_student.user_id)
        assert isinstance(resp, RoomInviteError)
        assert "код приглашения" in resp.message
    async with synapse.client(school.teacher) as c:
        # A 7Б student is not in 7А: the roster decides, not the teacher's invite.
        resp = await c.room_invite(chat_a, school.other_student.user_id)
        assert isinstance(resp, RoomInviteError)
        resp = await c.room_invite(
            school.class_b["rooms"]["class_chat"], school.students[1].user_id
        )
        assert isinstance(resp, RoomInviteError)


async def test_create_room_with_initial_state_cannot_join_a_school(
    synapse: RunningHomeserver, school: School
) -> None:
    space = school.rooms["school_space"]
    parent_state = {
        "type": "m.space.parent",
        "state_key": space,
        "content": {"via": ["localhost"], "canonical": True},
    }
    async with synapse.client(school.parent) as c:
        resp = await c.room_create(name="Родительский клуб", initial_state=[parent_state])
        assert isinstance(resp, RoomCreateError), resp
        assert "Комнаты внутри школы" in resp.message
        # Nor afterwards, with PUT /state on a room of their own.
        own = await c.room_create(name="Свой")
        assert isinstance(own, RoomCreateResponse)
        put = await c.room_put_state(
            own.room_id, "m.space.parent", parent_state["content"], state_key=space
        )
        assert isinstance(put, RoomPutStateError), put
    async with synapse.client(school.teacher) as c:
        resp = await c.room_create(
            name="Кружок робототехники",
            initial_state=[parent_state],
            power_level_override={"events_default": 0},
        )
        assert isinstance(resp, RoomCreateResponse), resp


async def test_join_by_alias_is_refused(synapse: RunningHomeserver, school: School) -> None:
    chat_a = school.class_a["rooms"]["class_chat"]
    alias = f"#class7a-{int(time.time())}:{synapse.server_name}"
    synapse.request(
        "PUT",
        f"/_matrix/client/v3/directory/room/{alias.replace('#', '%23')}",
        {"room_id": chat_a},
        school.teacher.access_token,
    )
    async with synapse.client(school.other_student) as c:
        resp = await c.join(alias)
        assert isinstance(resp, JoinError), resp
        assert "списку школы" in resp.message


def search_directory(hs: RunningHomeserver, user: User, term: str) -> set[str]:
    body = hs.request(
        "POST",
        "/_matrix/client/v3/user_directory/search",
        {"search_term": term, "limit": 50},
        user.access_token,
    )
    return {r["user_id"] for r in body["results"]}


async def test_students_hidden_from_search_outside_school(
    synapse: RunningHomeserver, school: School, outsider: User
) -> None:
    student = school.students[2]
    term = student.localpart
    # The directory is filled asynchronously; poll with a deadline.
    deadline = time.monotonic() + 90  # a liveness bound: the directory lags on a busy machine
    while student.user_id not in search_directory(synapse, school.students[1], term):
        assert time.monotonic() < deadline, "classmate never found the student"
        await asyncio.sleep(0.2)
    assert student.user_id not in search_directory(synapse, outsider, term)
    # Teachers are not hidden: the outsider finds one (once the directory caught up).
    teacher = school.teacher
    while teacher.user_id not in search_directory(synapse, outsider, teacher.localpart):
        assert time.monotonic() < deadline, "outsider never found the teacher"
        await asyncio.sleep(0.2)
    assert student.user_id not in search_directory(synapse, outsider, term)


# -- invitations --------------------------------------------------------------


def test_invite_code_registers_and_places_a_student(
    synapse: RunningHomeserver, school: School
) -> None:
    invite = api(
        synapse,
        "POST",
        f"/schools/{school.school_id}/invites",
        school.teacher,
        {"role": "student", "class_id": school.class_a["class_id"], "max_uses": 1},
    )
    assert len(invite["code"]) == 9 and invite["code"][4] == "-"
    preview = api(synapse, "GET", f"/invites/{invite['code']}", None)
    assert preview["role"] == "student" and preview["class"]["title"] == "7А"
    name = f"new-{int(time.time() * 1000)}"
    joined = api(
        synapse,
        "POST",
        f"/invites/{invite['code'].lower()}/register",
        None,
        {"username": name, "password": "пароль-ученика", "display_name": "Новый Ученик"},
    )
    assert joined["learns_in"] == [school.class_a["class_id"]]
    # Used up now, for anyone else.
    err = api_error(
        synapse,
        "POST",
        f"/invites/{invite['code']}/register",
        None,
        {"username": name + "x", "password": "another-password"},
    )
    assert err.status == 403 and "использован" in err.body["error"]


async def test_registered_student_logs_in_with_password(
    synapse: RunningHomeserver, school: School
) -> None:
    invite = api(
        synapse,
        "POST",
        f"/schools/{school.school_id}/invites",
        school.admin,
        {"role": "student", "class_id": school.class_a["class_id"]},
    )
    name = f"login-{int(time.time() * 1000)}"
    api(
        synapse,
        "POST",
        f"/invites/{invite['code']}/register",
        None,
        {"username": name, "password": "correct horse battery"},
    )
    client = AsyncClient(synapse.base_url, f"@{name}:{synapse.server_name}")
    try:
        assert not isinstance(await client.login("wrong password"), LoginResponse)
        resp = await client.login("correct horse battery")
        assert isinstance(resp, LoginResponse), resp
        rooms = await client.joined_rooms()
        assert school.class_a["rooms"]["class_chat"] in rooms.rooms
    finally:
        await client.close()


def test_codes_expire_and_can_be_revoked(synapse: RunningHomeserver, school: School) -> None:
    path = f"/schools/{school.school_id}/invites"
    short = api(synapse, "POST", path, school.admin, {"role": "teacher", "expires_in": 1})
    revoked = api(synapse, "POST", path, school.admin, {"role": "teacher"})
    api(synapse, "DELETE", f"{path}/{revoked['code']}", school.admin)
    time.sleep(1.5)
    late = synapse.register("late")
    err = api_error(synapse, "POST", f"/invites/{short['code']}/redeem", late)
    assert err.status == 403 and "истёк" in err.body["error"] and "expired" in err.body["error"]
    err = api_error(synapse, "POST", f"/invites/{revoked['code']}/redeem", late)
    assert err.status == 403 and "отозван" in err.body["error"]
    err = api_error(synapse, "POST", "/invites/ZZZZ-ZZZZ/redeem", late)
    assert err.status == 404
    assert api(synapse, "GET", "/me", late)["schools"] == []
    listed = {i["code"]: i for i in api(synapse, "GET", path, school.admin)["invites"]}
    assert listed[revoked["code"]]["revoked"] is True


async def test_parent_links_to_child_from_the_childs_code(
    synapse: RunningHomeserver, school: School
) -> None:
    sid = school.school_id
    child = school.students[2]
    code = api(synapse, "POST", "/me/parent_invite", child, {"school_id": sid})
    mother, stranger = synapse.register("mother"), synapse.register("stranger")
    # Whoever uses the child's code waits for the school: no role, no parents chat yet.
    waiting = api(synapse, "POST", f"/invites/{code['code']}/redeem", mother)
    assert waiting["pending"] is True and waiting["roles"] == []
    # The child cannot use their own code to become their own parent.
    err = api_error(synapse, "POST", f"/invites/{code['code']}/redeem", child)
    assert err.status == 400
    api(synapse, "POST", f"/invites/{code['code']}/redeem", stranger)
    parents_chat = school.class_a["rooms"]["parents_chat"]
    assert parents_chat not in await joined_rooms(synapse, mother)
    links = api(synapse, "GET", f"/schools/{sid}/parent_links", school.teacher)["parent_links"]
    by_person = {x["parent_user_id"]: x["link_id"] for x in links}
    assert {mother.user_id, stranger.user_id} <= set(by_person)
    # The homeroom teacher confirms the mother and refuses the stranger.
    done = api(
        synapse,
        "POST",
        f"/schools/{sid}/parent_links/{by_person[mother.user_id]}/confirm",
        school.teacher,
    )
    assert done["status"] == "confirmed" and done["decided_by"] == school.teacher.user_id
    api(
        synapse,
        "POST",
        f"/schools/{sid}/parent_links/{by_person[stranger.user_id]}/refuse",
        school.admin,
    )
    err = api_error(
        synapse,
        "POST",
        f"/schools/{sid}/parent_links/{by_person[stranger.user_id]}/confirm",
        school.admin,
    )
    assert err.status == 409 and "рассмотрена" in err.body["error"]
    members = api(synapse, "GET", f"/schools/{sid}/members?role=parent", school.admin)
    parents = {m["user_id"]: m for m in members["members"]}
    assert parents[mother.user_id]["children"] == [child.user_id]
    assert stranger.user_id not in parents
    assert parents_chat in await joined_rooms(synapse, mother)
    assert parents_chat not in await joined_rooms(synapse, stranger)
    for user in (child, school.parent, school.students[0]):
        err = api_error(synapse, "GET", f"/schools/{sid}/parent_links", user)
        assert err.status == 403


def test_teachers_manage_only_their_own_classes(synapse: RunningHomeserver, school: School) -> None:
    sid = school.school_id
    err = api_error(
        synapse,
        "POST",
        f"/schools/{sid}/invites",
        school.teacher,
        {"role": "student", "class_id": school.class_b["class_id"]},
    )
    assert err.status == 403 and "своих классов" in err.body["error"]
    err = api_error(synapse, "POST", f"/schools/{sid}/invites", school.teacher, {"role": "teacher"})
    assert err.status == 403
    err = api_error(
        synapse,
        "PUT",
        f"/schools/{sid}/members/{school.other_student.user_id}",
        school.teacher,
        {"roles": ["student"], "classes": [school.class_b["class_id"]]},
    )
    assert err.status == 403
    err = api_error(
        synapse,
        "POST",
        f"/schools/{sid}/classes",
        school.teacher,
        {"grade": 8, "letter": "В", "year": "2026/27"},
    )
    assert err.status == 403
    for user in (school.students[0], school.parent):
        err = api_error(synapse, "POST", f"/schools/{sid}/invites", user, {"role": "teacher"})
        assert err.status == 403
        err = api_error(synapse, "GET", f"/schools/{sid}/members", user)
        assert err.status == 403


# -- changes that move people -------------------------------------------------


async def test_moving_a_student_moves_their_rooms_and_their_parent(
    synapse: RunningHomeserver, operator: User
) -> None:
    s = build_school(synapse, operator, "Школа переездов")
    child = s.students[0]
    api(
        synapse,
        "PUT",
        f"/schools/{s.school_id}/members/{child.user_id}",
        s.admin,
        {"roles": ["student"], "classes": [s.class_b["class_id"]]},
    )
    rooms = await joined_rooms(synapse, child)
    assert s.class_b["rooms"]["class_chat"] in rooms
    assert s.class_a["rooms"]["class_chat"] not in rooms
    parent_rooms = await joined_rooms(synapse, s.parent)
    assert s.class_b["rooms"]["parents_chat"] in parent_rooms
    assert s.class_a["rooms"]["parents_chat"] not in parent_rooms
    # Leaving the school takes them out of every school room.
    api(synapse, "DELETE", f"/schools/{s.school_id}/members/{child.user_id}", s.admin)
    assert not (await joined_rooms(synapse, child)) & set(s.rooms.values())


async def test_archived_class_is_read_only(synapse: RunningHomeserver, operator: User) -> None:
    s = build_school(synapse, operator, "Школа архивов")
    api(synapse, "POST", f"/schools/{s.school_id}/classes/{s.class_a['class_id']}/archive", s.admin)
    for user in (s.students[0], s.teacher):
        async with synapse.client(user) as c:
            ok, message = await send_message(c, s.class_a["rooms"]["class_chat"])
            assert not ok
            assert "архив" in message and "archive" in message
    listed = api(synapse, "GET", f"/schools/{s.school_id}/classes", s.admin)["classes"]
    assert s.class_a["class_id"] not in {c["class_id"] for c in listed}
    err = api_error(
        synapse,
        "POST",
        f"/schools/{s.school_id}/invites",
        s.admin,
        {"role": "student", "class_id": s.class_a["class_id"]},
    )
    assert err.status == 400 and "архиве" in err.body["error"]


def test_school_edit_and_policy_limits(synapse: RunningHomeserver, school: School) -> None:
    path = f"/schools/{school.school_id}"
    edited = api(
        synapse,
        "PATCH",
        path,
        school.admin,
        {
            "address": "г. Калининград, ул. Новая, 2",
            "contacts": {"phone": "+7 4012 00-00-00"},
            "policy": {"dm_policy": "class"},
        },
    )
    assert edited["address"].endswith("Новая, 2")
    err = api_error(
        synapse,
        "PATCH",
        path,
        school.admin,
        {"policy": {"federation_allowed_servers": ["other.example"]}},
    )
    assert err.status == 403 and "other.example" in err.body["error"]
    err = api_error(synapse, "PATCH", path, school.teacher, {"name": "Моя школа"})
    assert err.status == 403


def test_concurrent_school_edits_all_land(synapse: RunningHomeserver, school: School) -> None:
    """Sixteen edits at once (two administrators, two fields): none is a 500 (PostgreSQL
    failed them to serialize), and an edit of one field keeps the other's."""
    path = f"/schools/{school.school_id}"

    def edit(i: int) -> dict[str, Any]:
        field = {"address": f"ул. Школьная, {i}"} if i % 2 else {"contacts": {"phone": f"{i}"}}
        result: dict[str, Any] = api(synapse, "PATCH", path, school.admin, field)
        return result

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(edit, range(16)))
    assert len(answers) == 16
    final = api(synapse, "GET", path, school.admin)
    assert final["address"].startswith("ул. Школьная, ")
    assert int(final["address"].rsplit(" ", 1)[1]) % 2 == 1
    assert int(final["contacts"]["phone"]) % 2 == 0


# -- bad input ----------------------------------------------------------------

BAD_REQUESTS = [
    ("POST", "/schools", {}, "name"),
    ("POST", "/schools", {"name": ""}, "name"),
    ("POST", "/schools", {"name": "X", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ("POST", "/schools", {"name": "X", "extra": 1}, "extra"),
    ("POST", "/schools", {"name": "X", "logo_mxc": "http://evil"}, "logo_mxc"),
    ("POST", "/schools", [1, 2], "JSON"),
    ("POST", "/schools/{sid}/classes", {"grade": 12, "letter": "А", "year": "2026/27"}, "grade"),
    ("POST", "/schools/{sid}/classes", {"grade": 7, "letter": "А", "year": "2026"}, "year"),
    ("POST", "/schools/{sid}/classes", {"grade": "7", "letter": "А", "year": "2026/27"}, "grade"),
    ("PUT", "/schools/{sid}/members/{student}", {"roles": ["wizard"]}, "roles"),
    ("PUT", "/schools/{sid}/members/{student}", {"roles": ["student"]}, "ровно в один класс"),
    ("PUT", "/schools/{sid}/members/{student}", {"roles": ["parent"]}, "ребёнком"),
    (
        "PUT",
        "/schools/{sid}/members/{student}",
        {"roles": ["student"], "classes": ["cls_nope"]},
        "cls_nope",
    ),
    ("POST", "/schools/{sid}/invites", {"role": "student"}, "класс"),
    ("POST", "/schools/{sid}/invites", {"role": "parent"}, "ребёнком"),
    ("POST", "/schools/{sid}/invites", {"role": "teacher", "max_uses": 0}, "max_uses"),
    ("POST", "/schools/{sid}/invites", {"role": "teacher", "expires_in": -5}, "expires_in"),
]


@pytest.mark.parametrize(("method", "path", "body", "fragment"), BAD_REQUESTS)
def test_bad_requests_are_400_with_a_reason(
    synapse: RunningHomeserver, school: School, method: str, path: str, body: Any, fragment: str
) -> None:
    actor = school.admin
    if path == "/schools":
        actor = synapse.register("op", admin=True)
    path = path.format(sid=school.school_id, student=school.students[1].user_id)
    err = api_error(synapse, method, path, actor, body)
    assert err.status == 400, err.body
    assert err.body["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM", "M_NOT_JSON")
    assert fragment in err.body["error"]
    # The text's catalogue id and parameters make the same text in each language.
    reference = err.body["org.parta.message"]
    texts = [catalogue.from_reference(reference, lang) for lang in catalogue.LANGUAGES]
    assert err.body["error"] == " / ".join(str(t) for t in texts)


def test_not_json_and_unknowns(synapse: RunningHomeserver, school: School) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{synapse.api_url}/schools/{school.school_id}/classes",
        data=b"{not json",
        method="POST",
        headers={"Authorization": f"Bearer {school.admin.access_token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 400
    assert api_error(synapse, "GET", "/schools/sch_nope", school.admin).status == 404
    assert api_error(synapse, "GET", "/schools", None).status == 401
    err = api_error(
        synapse,
        "PUT",
        f"/schools/{school.school_id}/members/@ghost:localhost",
        school.admin,
        {"roles": ["teacher"]},
    )
    assert err.status == 404


# -- restarts -----------------------------------------------------------------


async def test_restart_keeps_roster_and_rules(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """On a homeserver of its own, so the restart touches no other test's server."""
    from tests.harness import running_homeserver

    with running_homeserver(tmp_path_factory.mktemp("restart")) as hs:
        school = build_school(hs, hs.register("op", admin=True))
        hs.restart()
        me = api(hs, "GET", "/me", school.students[1])
        assert me["schools"][0]["learns_in"] == [school.class_a["class_id"]]
        members = api(hs, "GET", f"/schools/{school.school_id}/members", school.admin)
        assert {m["user_id"] for m in members["members"]} >= {
            school.teacher.user_id,
            school.parent.user_id,
            *(s.user_id for s in school.students),
        }
        # Rules hold with cold caches after the restart.
        async with hs.client(school.students[1]) as c:
            ok, _ = await join(c, school.class_b["rooms"]["class_chat"])
            assert not ok
            ok, _ = await send_message(c, school.class_a["rooms"]["class_chat"])
            assert ok
        assert await joined_rooms(hs, school.parent) >= {school.class_a["rooms"]["parents_chat"]}
        # And the roster still changes rooms after the restart.
        api(
            hs,
            "PUT",
            f"/schools/{school.school_id}/members/{school.students[1].user_id}",
            school.admin,
            {"roles": ["student"], "classes": [school.class_b["class_id"]]},
        )
        assert school.class_b["rooms"]["class_chat"] in await joined_rooms(hs, school.students[1])


def test_a_person_can_hold_roles_in_two_schools(
    synapse: RunningHomeserver, operator: User, school: School
) -> None:
    other = api(synapse, "POST", "/schools", operator, {"name": "Гимназия № 2"})
    api(
        synapse,
        "PUT",
        f"/schools/{other['school_id']}/members/{school.teacher.user_id}",
        operator,
        {"roles": ["administrator"]},
    )
    me = api(synapse, "GET", "/me", school.teacher)
    roles = {s["school_id"]: s["roles"] for s in me["schools"]}
    assert roles[school.school_id] == ["teacher"]
    assert roles[other["school_id"]] == ["administrator"]


def test_structure_state_marks_rooms(synapse: RunningHomeserver, school: School) -> None:
    state = synapse.request(
        "GET",
        f"/_matrix/client/v3/rooms/{school.rooms['school_space']}/state",
        token=school.admin.access_token,
    )
    types = {e["type"]: e for e in state}
    assert types[events.SCHOOL]["content"]["name"] == "Школа № 1"
    # Only this server takes part, until the school's policy allows others.
    assert types["m.room.server_acl"]["content"]["allow"] == [synapse.server_name]
    assert types["m.room.create"]["content"]["type"] == "m.space"
    assert types["m.room.create"]["sender"].startswith("@parta:")
    with pytest.raises(HttpError):
        # and it is not readable by an outsider
        synapse.request(
            "GET",
            f"/_matrix/client/v3/rooms/{school.rooms['school_space']}/state",
            token=synapse.register("x").access_token,
        )


async def test_batch_enrolment_is_all_or_nothing(
    synapse: RunningHomeserver, school: School
) -> None:
    path = f"/schools/{school.school_id}/members/batch"
    kids = [synapse.register("kid") for _ in range(3)]
    mum = synapse.register("mum")
    cls = school.class_b["class_id"]
    bad = {
        "members": [
            {"user_id": kids[0].user_id, "roles": ["student"], "classes": [cls]},
            {"user_id": kids[1].user_id, "roles": ["student"], "classes": ["cls_missing"]},
        ]
    }
    err = api_error(synapse, "POST", path, school.admin, bad)
    assert err.status == 400 and "members/1" in err.body["error"]
    # Nothing of the good first entry was stored.
    assert api(synapse, "GET", "/me", kids[0])["schools"] == []
    good = {
        "members": [
            *({"user_id": k.user_id, "roles": ["student"], "classes": [cls]} for k in kids),
            # A parent may name a child the same batch makes a student.
            {"user_id": mum.user_id, "roles": ["parent"], "children": [kids[2].user_id]},
        ]
    }
    done = api(synapse, "POST", path, school.admin, good)
    assert [m["learns_in"] for m in done["members"][:3]] == [[cls]] * 3
    assert school.class_b["rooms"]["class_chat"] in await joined_rooms(synapse, kids[1])
    assert school.class_b["rooms"]["parents_chat"] in await joined_rooms(synapse, mum)
    err = api_error(synapse, "POST", path, school.teacher, good)
    assert err.status == 403


def test_an_import_does_not_take_a_name_someone_holds(
    synapse: RunningHomeserver, school: School
) -> None:
    """A new account for a name that is already someone's: 409 naming the entry."""
    path = f"/schools/{school.school_id}/members/batch"
    holder = synapse.register("holder")
    entry = {
        "user_id": holder.user_id,
        "roles": ["student"],
        "classes": [school.class_b["class_id"]],
        "account": {"display_name": "Тёзка", "sign_in_code": "ABCD-EFGH-JKLM"},
    }
    err = api_error(synapse, "POST", path, school.admin, {"members": [entry]})
    assert err.status == 409 and err.body["errcode"] == "M_USER_IN_USE", err.body
    assert "members/0" in err.body["error"]
    assert api(synapse, "GET", "/me", holder)["schools"] == []


def test_an_import_refuses_a_bad_account_name_and_makes_nothing(
    synapse: RunningHomeserver, school: School
) -> None:
    """A name Synapse would not take: 400 naming the entry; the other, valid entry of
    the same batch is not made either."""
    path = f"/schools/{school.school_id}/members/batch"
    good = f"@import-good-1:{synapse.server_name}"
    entries = [
        {
            "user_id": good,
            "roles": ["student"],
            "classes": [school.class_b["class_id"]],
            "account": {"display_name": "Хороший", "sign_in_code": "ABCD-EFGH-JKLN"},
        },
        {
            "user_id": f"@Bad*Name:{synapse.server_name}",
            "roles": ["student"],
            "classes": [school.class_b["class_id"]],
            "account": {"display_name": "Плохой", "sign_in_code": "ABCD-EFGH-JKLP"},
        },
    ]
    err = api_error(synapse, "POST", path, school.admin, {"members": entries})
    assert err.status == 400 and err.body["errcode"] == "M_INVALID_USERNAME", err.body
    assert "members/1" in err.body["error"]
    # Nothing half-done: no account, no roster row, and the code signs nobody in.
    with pytest.raises(HttpError) as login:
        synapse.request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": good},
                "password": "ABCD-EFGH-JKLN",
            },
        )
    assert login.value.status == 403
    members = api(synapse, "GET", f"/schools/{school.school_id}/members", school.admin)
    assert good not in {m["user_id"] for m in members["members"]}


def test_operator_limits_and_school_federation(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server whose operator lets schools federate with one partner, and no more."""
    from tests.harness import running_homeserver

    config = {
        "policy": {
            "allowed_dm_policies": ["staff_only", "class"],
            "federation_allowed_servers": ["partner.example"],
        }
    }
    with running_homeserver(tmp_path_factory.mktemp("limits"), module_config=config) as hs:
        operator = hs.register("op", admin=True)
        school = api(hs, "POST", "/schools", operator, {"name": "Школа партнёров"})
        path = f"/schools/{school['school_id']}"
        err = api_error(hs, "PATCH", path, operator, {"policy": {"dm_policy": "school"}})
        assert err.status == 403 and "school" in err.body["error"]
        api(
            hs,
            "PATCH",
            path,
            operator,
            {"policy": {"federation_allowed_servers": ["partner.example"]}},
        )
        state = hs.request(
            "GET",
            f"/_synapse/admin/v1/rooms/{school['rooms']['announcements']}/state",
            token=operator.access_token,
        )["state"]
        acl = next(e for e in state if e["type"] == "m.room.server_acl")
        assert acl["content"]["allow"] == [hs.server_name, "partner.example"]
        err = api_error(
            hs,
            "PATCH",
            path,
            operator,
            {"policy": {"federation_allowed_servers": ["stranger.example"]}},
        )
        assert err.status == 403 and "stranger.example" in err.body["error"]


async def test_students_may_write_to_the_school_bot(
    synapse: RunningHomeserver, school: School
) -> None:
    """The bot is a trusted bot (module config ``trusted_bots``): DM rules don't stop it."""
    with contextlib.suppress(HttpError):  # registered by an earlier test of this session
        synapse.hs.register_user("parta-bot", "the-bots-password-1")
    bot = f"@parta-bot:{synapse.server_name}"
    async with synapse.client(school.students[1]) as c:
        resp = await c.room_create(is_direct=True, invite=[bot])
        assert isinstance(resp, RoomCreateResponse), resp
    # Other grown-ups outside the school are still out of reach.
    async with synapse.client(school.students[1]) as c:
        resp = await c.room_create(is_direct=True, invite=[synapse.register("adult").user_id])
        assert isinstance(resp, RoomCreateError)


def test_me_lists_the_persons_class_rooms(synapse: RunningHomeserver, school: School) -> None:
    """/me names the rooms of the person's classes, so a client can open them."""
    a, b = school.class_a, school.class_b

    def class_rooms(user: User) -> set[tuple[str, str, str]]:
        me = api(synapse, "GET", "/me", user)
        (mine,) = [s for s in me["schools"] if s["school_id"] == school.school_id]
        return {(r["class_id"], r["kind"], r["room_id"]) for r in mine["class_rooms"]}

    def rooms_of(cls: dict[str, Any], *kinds: str) -> set[tuple[str, str, str]]:
        return {(cls["class_id"], k, cls["rooms"][k]) for k in kinds}

    assert class_rooms(school.students[1]) == rooms_of(a, "class_space", "class_chat")
    assert class_rooms(school.other_student) == rooms_of(b, "class_space", "class_chat")
    assert class_rooms(school.parent) == rooms_of(a, "parents_chat")
    assert class_rooms(school.teacher) == rooms_of(a, "class_space", "class_chat", "parents_chat")
    assert class_rooms(school.admin) == set()


@pytest.mark.parametrize(
    ("raw", "errcode"),
    [
        (b"{not json", "M_NOT_JSON"),  # does not parse
        (b"\xff\xfe", "M_NOT_JSON"),
        (b"[1, 2]", "M_BAD_JSON"),  # JSON, but not an object
        (b'{"grade": "seven"}', "M_BAD_JSON"),  # an object of the wrong shape
        # U+0000, which PostgreSQL cannot store (the API fuzzer found a 500 with it)
        (b'{"grade": 7, "letter": "\\u0000", "year": "2026/27"}', "M_BAD_JSON"),
    ],
)
async def test_bad_bodies_get_the_matrix_spec_errcodes(
    synapse: RunningHomeserver, school: School, raw: bytes, errcode: str
) -> None:
    """As the Matrix spec has it: M_NOT_JSON for a body that does not parse, M_BAD_JSON
    for valid JSON of the wrong shape; nothing is made."""
    path = f"schools/{school.school_id}/classes"
    async with synapse.http(school.admin) as http:
        async with http.get(path) as resp:
            before = (await resp.json())["classes"]
        async with http.post(path, data=raw) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["errcode"] == errcode, body
            assert " / " in body["error"]
        async with http.get(path) as resp:
            assert (await resp.json())["classes"] == before


def test_conflicts_are_m_bad_state(synapse: RunningHomeserver, school: School) -> None:
    """409 has one meaning: the thing's state forbids it (here: the class exists)."""
    err = api_error(
        synapse,
        "POST",
        f"/schools/{school.school_id}/classes",
        school.admin,
        {"grade": 7, "letter": "А", "year": "2026/27"},
    )
    assert err.status == 409 and err.body["errcode"] == "M_BAD_STATE", err.body
    assert " / " in err.body["error"]
