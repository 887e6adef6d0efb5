"""Media tokens, lessons and attendance against a real Synapse with the module."""

import asyncio
import csv
import io
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from nio import (
    AsyncClient,
    JoinResponse,
    RoomCreateResponse,
    RoomGetStateEventError,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomInviteResponse,
)

from devtools.homeserver import HttpError
from parta_common import events, tokens
from synapse_module.lessons.rules import Session, summarise
from tests.harness import RunningHomeserver, User, free_port, running_homeserver
from tests.roster_helpers import School

SECRET = secrets.token_urlsafe(32)
SFU_URL = "http://127.0.0.1:8090/"
API = "/_synapse/client/parta/v1"


LIVEKIT = {"url": "wss://livekit.test", "api_key": "parta", "api_secret": "l" * 40}


@pytest.fixture(scope="module")
def hs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """A Synapse whose module has lessons enabled with a known secret."""
    config = {
        "media": {
            "enabled": True,
            "token_secret": SECRET,
            "sfu_public_url": SFU_URL,
            "livekit": LIVEKIT,
        }
    }
    with running_homeserver(tmp_path_factory.mktemp("lessons"), module_config=config) as running:
        wait_until_module_ready(running, SECRET)
        yield running


def wait_until_module_ready(hs: RunningHomeserver, secret: str, seconds: float = 180) -> None:
    """Wait until the module's tables are migrated (a busy machine can take a while).

    An empty attendance report goes through the store, so it answers 200 only once the
    schema is there; until then the module's callbacks would fail requests.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            token = tokens.sign_service_token(secret, "sfu")
            hs.request("POST", f"{API}/internal/attendance", {"events": []}, token)
            return
        except HttpError:
            if time.monotonic() > deadline:
                raise AssertionError(f"module not ready:\n{hs.hs.tail_output()}") from None
            time.sleep(0.5)


@attrs.define
class ClassRoom:
    room_id: str
    admin: User
    teacher: User
    students: list[User]
    invited: User
    outsider: User


def path_room(room_id: str) -> str:
    return urllib.parse.quote(room_id, safe="")


async def make_class_room(hs: RunningHomeserver, students: int = 2) -> ClassRoom:
    """A room an administrator made: a teacher (50), students (0), one only invited."""
    admin = hs.register("admin", displayname="Директор")
    teacher = hs.register("teacher", displayname="Мария Ивановна")
    pupils = [hs.register("pupil", displayname=f"Ученик {i + 1}") for i in range(students)]
    invited = hs.register("invited", displayname="Приглашённый")
    outsider = hs.register("outsider", displayname="Чужой")
    async with hs.client(admin) as client:
        created = await client.room_create(
            name="7А — математика", power_level_override={"users": {teacher.user_id: 50}}
        )
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
        for user in [teacher, *pupils, invited]:
            invite = await client.room_invite(room_id, user.user_id)
            assert isinstance(invite, RoomInviteResponse), (invite, hs.hs.tail_output())
    for user in [teacher, *pupils]:
        async with hs.client(user) as client:
            joined = await client.join(room_id)
            assert isinstance(joined, JoinResponse), joined
    return ClassRoom(room_id, admin, teacher, pupils, invited, outsider)


@pytest.fixture(scope="module")
def room(hs: RunningHomeserver) -> ClassRoom:
    return asyncio.run(make_class_room(hs))


def media_token(hs: RunningHomeserver, user: User, room_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = hs.request(
        "POST", f"{API}/rooms/{path_room(room_id)}/media_token", {}, user.access_token
    )
    return answer


def refused(call: Any, *args: Any) -> HttpError:
    with pytest.raises(HttpError) as info:
        call(*args)
    return info.value


def assert_bilingual(error: HttpError, errcode: str, status: int) -> None:
    assert error.status == status, error.body
    assert error.body["errcode"] == errcode, error.body
    assert " / " in error.body["error"], error.body


# -- media tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "role", "moderate", "screen"),
    [
        ("admin", "administrator", True, True),
        ("teacher", "teacher", True, True),
        ("student", "student", False, False),
    ],
)
async def test_media_token_grants_follow_the_role_in_the_room(
    hs: RunningHomeserver, room: ClassRoom, who: str, role: str, moderate: bool, screen: bool
) -> None:
    user = {"admin": room.admin, "teacher": room.teacher, "student": room.students[0]}[who]
    before = time.time()
    answer = media_token(hs, user, room.room_id)
    assert answer["sfu_url"] == SFU_URL
    assert answer["role"] == role
    assert before * 1000 < answer["expires_at"] <= (time.time() + 600) * 1000 + 1000
    claims = tokens.verify_media_token(answer["token"], SECRET, room_id=room.room_id)
    assert claims.user_id == user.user_id
    assert claims.role == role
    assert claims.grants.moderate is moderate
    assert claims.grants.publish_screen is screen
    assert claims.grants.publish_camera
    assert claims.grants.publish_microphone
    assert claims.grants.subscribe
    # The name the room shows, for the SFU's tiles.
    assert (
        claims.display_name
        == {
            "admin": "Директор",
            "teacher": "Мария Ивановна",
            "student": "Ученик 1",
        }[who]
    )


async def test_media_token_refused_to_non_members(hs: RunningHomeserver, room: ClassRoom) -> None:
    for user in (room.outsider, room.invited):
        error = refused(media_token, hs, user, room.room_id)
        assert_bilingual(error, "M_FORBIDDEN", 403)
        assert "не участник" in error.body["error"]
    # A room that does not exist is the same answer: nothing to learn from it.
    error = refused(media_token, hs, room.teacher, "!nosuchroom:localhost")
    assert_bilingual(error, "M_FORBIDDEN", 403)


async def test_media_token_wrong_input(hs: RunningHomeserver, room: ClassRoom) -> None:
    url = f"{API}/rooms/{path_room(room.room_id)}/media_token"
    error = refused(hs.request, "POST", url, {"unexpected": 1}, room.teacher.access_token)
    assert_bilingual(error, "M_BAD_JSON", 400)
    error = refused(hs.request, "POST", url, ["not", "an", "object"], room.teacher.access_token)
    assert error.status == 400
    error = refused(
        hs.request, "POST", f"{API}/rooms/not-a-room/media_token", {}, room.teacher.access_token
    )
    assert_bilingual(error, "M_INVALID_PARAM", 400)
    error = refused(hs.request, "POST", url, {})
    assert error.status == 401
    assert error.body["errcode"] == "M_MISSING_TOKEN"


async def test_media_token_for_an_openid_token(hs: RunningHomeserver, room: ClassRoom) -> None:
    """What a widget does: OpenID token from the homeserver → media token."""
    student = room.students[1]
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(student.user_id)}/openid/request_token",
        {},
        student.access_token,
    )
    assert openid["matrix_server_name"] == hs.server_name
    url = f"{API}/rooms/{path_room(room.room_id)}/media_token/openid"
    # No Matrix access token on this request: the OpenID token is the identity.
    answer = hs.request("POST", url, {"openid_token": openid})
    claims = tokens.verify_media_token(answer["token"], SECRET, room_id=room.room_id)
    assert claims.user_id == student.user_id
    assert claims.role == "student"
    assert not claims.grants.moderate

    forged = {**openid, "access_token": "forged" + openid["access_token"]}
    error = refused(hs.request, "POST", url, {"openid_token": forged})
    assert_bilingual(error, "M_UNKNOWN_TOKEN", 401)
    elsewhere = {**openid, "matrix_server_name": "other.example"}
    error = refused(hs.request, "POST", url, {"openid_token": elsewhere})
    assert_bilingual(error, "M_FORBIDDEN", 403)
    error = refused(hs.request, "POST", url, {"openid_token": {"access_token": 5}})
    assert_bilingual(error, "M_BAD_JSON", 400)

    # An outsider's valid OpenID token gets no media token for this room.
    outsider = room.outsider
    openid = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(outsider.user_id)}/openid/request_token",
        {},
        outsider.access_token,
    )
    error = refused(hs.request, "POST", url, {"openid_token": openid})
    assert_bilingual(error, "M_FORBIDDEN", 403)


def test_lessons_off_by_default(synapse: RunningHomeserver) -> None:
    """The harness's homeserver has no media section: lessons answer a clear 404."""
    user = synapse.register("nolessons")
    error = refused(
        synapse.request,
        "POST",
        f"{API}/rooms/{path_room('!r:localhost')}/media_token",
        {},
        user.access_token,
    )
    assert_bilingual(error, "M_NOT_FOUND", 404)
    assert "не включены" in error.body["error"]


# -- lessons ---------------------------------------------------------------------------


def lessons_url(room_id: str, tail: str = "") -> str:
    return f"{API}/rooms/{path_room(room_id)}/lessons{tail}"


async def state_event(
    client: AsyncClient, room_id: str, event_type: str, state_key: str
) -> dict[str, Any] | None:
    resp = await client.room_get_state_event(room_id, event_type, state_key)
    if isinstance(resp, RoomGetStateEventError):
        return None
    assert isinstance(resp, RoomGetStateEventResponse), resp
    content: dict[str, Any] = resp.content
    return content


async def test_start_and_end_a_lesson_updates_room_state(hs: RunningHomeserver) -> None:
    room = await make_class_room(hs, students=1)
    started = hs.request(
        "POST", lessons_url(room.room_id), {"title": "Дроби"}, room.teacher.access_token
    )
    assert started["status"] == "live"
    assert started["title"] == "Дроби"
    lesson_id = started["lesson_id"]

    # A student reads the room as any Matrix client does.
    async with hs.client(room.students[0]) as client:
        lesson = await state_event(client, room.room_id, events.LESSON, lesson_id)
        assert lesson is not None
        assert lesson["status"] == "live"
        assert lesson["title"] == "Дроби"
        assert lesson["url"].startswith(f"{SFU_URL}lesson/{path_room(room.room_id)}?lesson=")
        widget = await state_event(
            client, room.room_id, "im.vector.modular.widgets", started["widget_id"]
        )
        assert widget is not None
        assert widget["type"] == "m.custom"
        assert widget["name"] == "Урок: Дроби"
        assert widget["url"].startswith(f"{SFU_URL}lesson/$matrix_room_id?lesson={lesson_id}&hs=")
        for variable in (
            "$matrix_user_id",
            "$matrix_display_name",
            "$org.matrix.msc2873.client_language",
        ):
            assert variable in widget["url"]
        # The announcement with the link, for clients without widgets.
        messages = await client.room_messages(room.room_id, limit=10)
        bodies = [e.source["content"].get("body", "") for e in messages.chunk]
        assert any("Урок «Дроби» начался" in b and lesson_id in b for b in bodies), bodies

    listed = hs.request("GET", lessons_url(room.room_id), token=room.students[0].access_token)
    assert [entry["lesson_id"] for entry in listed["lessons"]] == [lesson_id]

    # A student may neither start nor end a lesson.
    error = refused(
        hs.request, "POST", lessons_url(room.room_id), {"title": "x"}, room.students[0].access_token
    )
    assert_bilingual(error, "M_FORBIDDEN", 403)
    error = refused(
        hs.request,
        "POST",
        lessons_url(room.room_id, f"/{lesson_id}/end"),
        {},
        room.students[0].access_token,
    )
    assert_bilingual(error, "M_FORBIDDEN", 403)
    # A second live lesson in the same room is refused while the first runs.
    error = refused(
        hs.request, "POST", lessons_url(room.room_id), {"title": "Ещё"}, room.admin.access_token
    )
    assert_bilingual(error, "M_BAD_STATE", 409)

    ended = hs.request(
        "POST", lessons_url(room.room_id, f"/{lesson_id}/end"), {}, room.admin.access_token
    )
    assert ended["status"] == "ended"
    async with hs.client(room.students[0]) as client:
        lesson = await state_event(client, room.room_id, events.LESSON, lesson_id)
        assert lesson is not None
        assert lesson["status"] == "ended"
        assert lesson["ended_at"] >= lesson["started_at"]
        # The widget is gone from the room (empty content removes it in Element).
        widget = await state_event(
            client, room.room_id, "im.vector.modular.widgets", started["widget_id"]
        )
        assert not widget
    error = refused(
        hs.request,
        "POST",
        lessons_url(room.room_id, f"/{lesson_id}/end"),
        {},
        room.teacher.access_token,
    )
    assert_bilingual(error, "M_BAD_STATE", 409)


async def test_schedule_then_start(hs: RunningHomeserver) -> None:
    room = await make_class_room(hs, students=1)
    start = int(time.time() * 1000) + 3600_000
    scheduled = hs.request(
        "POST",
        lessons_url(room.room_id),
        {"title": "Контрольная", "start": start},
        room.teacher.access_token,
    )
    assert scheduled["status"] == "scheduled"
    assert scheduled["start"] == start
    async with hs.client(room.students[0]) as client:
        lesson = await state_event(client, room.room_id, events.LESSON, scheduled["lesson_id"])
        assert lesson is not None
        assert lesson["status"] == "scheduled"
        # No widget before the lesson starts.
        widget = await state_event(
            client, room.room_id, "im.vector.modular.widgets", scheduled["widget_id"]
        )
        assert not widget
    live = hs.request(
        "POST",
        lessons_url(room.room_id, f"/{scheduled['lesson_id']}/start"),
        {},
        room.teacher.access_token,
    )
    assert live["status"] == "live"
    async with hs.client(room.students[0]) as client:
        widget = await state_event(
            client, room.room_id, "im.vector.modular.widgets", scheduled["widget_id"]
        )
        assert widget
        assert widget["type"] == "m.custom"
    error = refused(
        hs.request,
        "POST",
        lessons_url(room.room_id, f"/{scheduled['lesson_id']}/start"),
        {},
        room.teacher.access_token,
    )
    assert_bilingual(error, "M_BAD_STATE", 409)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": 5},
        {"title": "x" * 201},
        {"title": "Урок", "start": "завтра"},
        {"title": "Урок", "start": -1},
        {"title": "Урок", "colour": "red"},
        {"title": "Урок", "start": 10**16},
    ],
)
async def test_lesson_wrong_input_is_400(
    hs: RunningHomeserver, room: ClassRoom, body: dict[str, Any]
) -> None:
    error = refused(hs.request, "POST", lessons_url(room.room_id), body, room.teacher.access_token)
    assert error.status == 400, error.body
    assert error.body["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM")
    assert " / " in error.body["error"]
    # Nothing was stored.
    listed = hs.request("GET", lessons_url(room.room_id), token=room.teacher.access_token)
    assert all(entry["title"] != body.get("title") for entry in listed["lessons"])


async def test_unknown_lesson_is_404(hs: RunningHomeserver, room: ClassRoom) -> None:
    for tail in ("/not-a-lesson/end", "/" + "f" * 300 + "/end"):
        error = refused(
            hs.request, "POST", lessons_url(room.room_id, tail), {}, room.teacher.access_token
        )
        assert_bilingual(error, "M_NOT_FOUND", 404)
    error = refused(
        hs.request,
        "POST",
        lessons_url(room.room_id, "/0123456789abcdef/end"),
        {},
        room.teacher.access_token,
    )
    assert_bilingual(error, "M_NOT_FOUND", 404)


# -- attendance ------------------------------------------------------------------------


def sfu_token() -> str:
    return tokens.sign_service_token(SECRET, "sfu")


def report_attendance(hs: RunningHomeserver, token: str, reports: list[dict[str, Any]]) -> Any:
    return hs.request("POST", f"{API}/internal/attendance", {"events": reports}, token)


async def test_attendance_lists_present_and_absent_and_exports_csv(
    hs: RunningHomeserver,
) -> None:
    room = await make_class_room(hs, students=3)
    lesson = hs.request(
        "POST", lessons_url(room.room_id), {"title": "История"}, room.teacher.access_token
    )
    first, second, _absent = room.students
    t0 = lesson["started_at"]
    service = tokens.sign_service_token(SECRET, "sfu")
    joins = [
        {"kind": "join", "room_id": room.room_id, "user_id": u.user_id, "session_id": s, "ts": ts}
        for u, s, ts in [
            (room.teacher, "t1", t0 - 60_000),  # on the page before starting the lesson
            (first, "a1", t0 + 1000),
            (first, "a2", t0 + 600_000),  # a second device, overlapping the first
            (second, "b1", t0 + 60_000),
        ]
    ]
    leaves = [
        {
            "kind": "leave",
            "room_id": room.room_id,
            "user_id": first.user_id,
            "session_id": "a1",
            "ts": t0 + 1_201_000,
        },
        {
            "kind": "leave",
            "room_id": room.room_id,
            "user_id": first.user_id,
            "session_id": "a2",
            "ts": t0 + 900_000,
        },
        {
            "kind": "leave",
            "room_id": room.room_id,
            "user_id": second.user_id,
            "session_id": "b1",
            "ts": t0 + 360_000,
        },
    ]
    assert report_attendance(hs, service, joins)["recorded"] == 4
    # A service token is good for one request: the SFU signs one per report.
    with pytest.raises(HttpError) as replayed:
        report_attendance(hs, service, leaves)
    assert replayed.value.status == 401
    assert report_attendance(hs, sfu_token(), leaves)["recorded"] == 3
    # The same report again changes nothing (the SFU may retry).
    assert report_attendance(hs, sfu_token(), joins + leaves)["recorded"] == 0

    url = lessons_url(room.room_id, f"/{lesson['lesson_id']}/attendance")
    report = hs.request("GET", url, token=room.teacher.access_token)
    present = {p["user_id"]: p for p in report["present"]}
    assert present[first.user_id]["minutes"] == 20  # two devices counted once
    assert present[first.user_id]["sessions"] == 2
    assert present[first.user_id]["first_join"] == t0 + 1000
    assert present[first.user_id]["last_leave"] == t0 + 1_201_000
    assert present[second.user_id]["minutes"] == 5
    assert present[second.user_id]["display_name"] == "Ученик 2"
    # The teacher was there before the lesson started: counted from its start.
    assert present[room.teacher.user_id]["first_join"] == t0
    # The teacher is still in the live lesson: no last leave yet.
    assert present[room.teacher.user_id]["last_leave"] is None
    assert [a["user_id"] for a in report["absent"]] == [room.students[2].user_id]
    assert report["absent"][0]["display_name"] == "Ученик 3"

    # Students do not see attendance.
    error = refused(hs.request, "GET", url, None, first.access_token)
    assert_bilingual(error, "M_FORBIDDEN", 403)

    async with hs.http(room.teacher) as session:
        async with session.get(url.removeprefix(API + "/"), params={"format": "csv"}) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in resp.headers["Content-Disposition"]
            raw = await resp.read()
        async with session.get(url.removeprefix(API + "/"), params={"format": "xml"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["errcode"] == "M_INVALID_PARAM"
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Участник", "Matrix ID", "Статус", "Первый вход", "Последний выход", "Минут"]
    by_id = {r[1]: r for r in rows[1:]}
    assert by_id[first.user_id][0] == "Ученик 1"
    assert by_id[first.user_id][2] == "присутствовал"
    assert by_id[first.user_id][5] == "20"
    assert by_id[room.students[2].user_id][2] == "отсутствовал"
    assert len(rows) == 1 + 4

    # After the end, open sessions close at the lesson's end.
    hs.request(
        "POST",
        lessons_url(room.room_id, f"/{lesson['lesson_id']}/end"),
        {},
        room.teacher.access_token,
    )
    report = hs.request("GET", url, token=room.teacher.access_token)
    teacher_row = next(p for p in report["present"] if p["user_id"] == room.teacher.user_id)
    assert teacher_row["last_leave"] == report["lesson"]["ended_at"]


async def test_forged_service_tokens_are_refused(hs: RunningHomeserver, room: ClassRoom) -> None:
    import jwt

    report = [
        {
            "kind": "join",
            "room_id": room.room_id,
            "user_id": room.students[0].user_id,
            "session_id": "x",
            "ts": 1,
        }
    ]
    student_media = media_token(hs, room.students[0], room.room_id)["token"]
    for token in (
        tokens.sign_service_token("wrong-secret-" + "x" * 32, "sfu"),
        tokens.sign_service_token(SECRET, "sfu", now=time.time() - 3600),
        student_media,  # a media token is not a service token
        tokens.sign_service_token(SECRET, tokens.SERVICE_RELAY),  # the relay is not the SFU
        # signed with the shared secret itself, as before keys were derived per purpose
        jwt.encode(
            {
                "iss": "parta",
                "aud": "parta-module",
                "sub": "sfu",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
            },
            SECRET,
            algorithm="HS256",
        ),
        room.teacher.access_token,  # nor is a Matrix login
    ):
        error = refused(report_attendance, hs, token, report)
        assert_bilingual(error, "M_UNKNOWN_TOKEN", 401)
    error = refused(
        report_attendance, hs, tokens.sign_service_token(SECRET, "sfu"), [{"kind": "hop"}]
    )
    assert_bilingual(error, "M_BAD_JSON", 400)


@pytest.mark.parametrize(
    ("sessions", "until", "still_open", "expected"),
    [
        # one closed session
        ([("@a:x", 0, 60_000)], 100_000, False, {"@a:x": (60, 60_000)}),
        # overlapping sessions count once; gaps do not count
        (
            [("@a:x", 0, 60_000), ("@a:x", 30_000, 90_000), ("@a:x", 120_000, 180_000)],
            200_000,
            False,
            {"@a:x": (150, 180_000)},
        ),
        # an open session runs to `until`; while live there is no last leave
        ([("@a:x", 0, None)], 120_000, True, {"@a:x": (120, None)}),
        ([("@a:x", 0, None)], 120_000, False, {"@a:x": (120, 120_000)}),
    ],
)
def test_summarise(
    sessions: list[tuple[str, int, int | None]],
    until: int,
    still_open: bool,
    expected: dict[str, tuple[int, int | None]],
) -> None:
    result = summarise([Session(u, None, j, left) for u, j, left in sessions], until, still_open)
    assert {a.user_id: (a.seconds, a.last_leave) for a in result} == expected


async def test_sfu_attendance_client_reports_to_the_module(hs: RunningHomeserver) -> None:
    """The SFU side of the hook: sfu.attendance events posted with a service token."""
    from sfu.attendance import AttendanceEvent, AttendanceKind, LeaveReason
    from sfu.attendance_client import AttendanceRejected, ModuleAttendance

    room = await make_class_room(hs, students=2)
    lesson = hs.request(
        "POST", lessons_url(room.room_id), {"title": "Физика"}, room.teacher.access_token
    )
    pupil = room.students[0]
    t0 = lesson["started_at"] / 1000
    sink = ModuleAttendance(hs.base_url, SECRET)
    try:
        joined = AttendanceEvent(
            kind=AttendanceKind.JOINED,
            room_id=room.room_id,
            user_id=pupil.user_id,
            display_name="Ученик 1",
            role="student",
            participant_id="p3",
            at=t0 + 5,
        )
        await sink.report(joined)
        await sink.report(
            attrs.evolve(
                joined, kind=AttendanceKind.LEFT, at=t0 + 185, reason=LeaveReason.DISCONNECTED
            )
        )
    finally:
        await sink.close()
    url = lessons_url(room.room_id, f"/{lesson['lesson_id']}/attendance")
    report = hs.request("GET", url, token=room.teacher.access_token)
    assert [(p["user_id"], p["minutes"]) for p in report["present"]] == [(pupil.user_id, 3)]
    assert [a["user_id"] for a in report["absent"]] == [room.students[1].user_id]

    forged = ModuleAttendance(hs.base_url, "another-secret-" + "y" * 32)
    try:
        with pytest.raises(AttendanceRejected):
            await forged.report(
                AttendanceEvent(
                    kind=AttendanceKind.JOINED,
                    room_id=room.room_id,
                    user_id=room.students[1].user_id,
                    display_name="x",
                    role="student",
                    participant_id="p9",
                    at=t0 + 10,
                )
            )
    finally:
        await forged.close()
    report = hs.request("GET", url, token=room.teacher.access_token)
    assert len(report["present"]) == 1


async def test_attendance_waits_in_the_journal_while_the_module_is_away(
    hs: RunningHomeserver, tmp_path: Path
) -> None:
    """Reports the module did not confirm survive an SFU restart and are sent then."""
    from sfu.attendance import AttendanceEvent, AttendanceKind, LeaveReason
    from sfu.attendance_client import ModuleAttendance

    room = await make_class_room(hs, students=1)
    lesson = hs.request(
        "POST", lessons_url(room.room_id), {"title": "Химия"}, room.teacher.access_token
    )
    pupil = room.students[0]
    t0 = lesson["started_at"] / 1000
    journal = tmp_path / "sfu" / "attendance-journal.sqlite3"
    # The module is away (nothing listens there): the reports stay in the journal.
    away = ModuleAttendance(f"http://127.0.0.1:{free_port()}", SECRET, journal=journal)
    joined = AttendanceEvent(
        kind=AttendanceKind.JOINED,
        room_id=room.room_id,
        user_id=pupil.user_id,
        display_name="Ученик 1",
        role="student",
        participant_id="p7",
        at=t0 + 5,
    )
    try:
        await away.report(joined)
        await away.report(
            attrs.evolve(joined, kind=AttendanceKind.LEFT, at=t0 + 125, reason=LeaveReason.LEFT)
        )
        assert away.pending == 2
    finally:
        await away.close()  # the SFU stops
    url = lessons_url(room.room_id, f"/{lesson['lesson_id']}/attendance")
    report = hs.request("GET", url, token=room.teacher.access_token)
    assert report["present"] == []
    # The SFU starts again, now reaching the module: the journal is replayed, in order.
    back = ModuleAttendance(hs.base_url, SECRET, journal=journal)
    try:
        assert back.pending == 2
        await back.start()

        async def delivered() -> bool:
            return back.pending == 0

        deadline = time.monotonic() + 30
        while not await delivered():
            assert time.monotonic() < deadline, "the journal was not replayed"
            await asyncio.sleep(0.1)
    finally:
        await back.close()
    report = hs.request("GET", url, token=room.teacher.access_token)
    assert [(p["user_id"], p["minutes"]) for p in report["present"]] == [(pupil.user_id, 2)]


@pytest.mark.parametrize(
    ("media", "fragment"),
    [
        ({"enabled": True}, "token_secret: required when media.enabled is true"),
        ({"enabled": True, "token_secret": "short"}, "at least 32 characters"),
        ({"token_ttl_seconds": 5}, "outside 30..86400"),
        ({"sfu_public_url": "ftp://x"}, "not an http(s) URL"),
        ({"students_may_share_screen": "yes"}, "expected true or false"),
        ({"enable": True}, "unknown key(s): enable"),
        ({"livekit": {"url": "https://x", "api_key": "k", "api_secret": "s" * 40}}, "ws(s) URL"),
        ({"livekit": {"url": "wss://x", "api_key": "k", "api_secret": "short"}}, "32 characters"),
    ],
)
def test_media_config_errors_name_the_key(media: dict[str, Any], fragment: str) -> None:
    from synapse.module_api.errors import ConfigError

    from synapse_module import PartaModule

    with pytest.raises(ConfigError) as info:
        PartaModule.parse_config({"media": media})
    assert fragment in info.value.msg
    assert list(info.value.path or [])[:4] == ["modules", "<parta>", "config", "media"]


def test_make_run_turns_lessons_on_with_a_kept_secret(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools import run
    from synapse_module import PartaModule

    monkeypatch.setattr(run, "VAR", tmp_path)
    config = PartaModule.parse_config(run.module_config())
    assert config.media.enabled
    assert config.media.token_secret == run.media_token_secret()
    assert (tmp_path / "media-token-secret.txt").stat().st_mode & 0o777 == 0o600


def test_openapi_describes_the_lesson_endpoints(hs: RunningHomeserver) -> None:
    doc = hs.request("GET", f"{API}/openapi.json")
    for path, methods in {
        "/rooms/{roomId}/media_token": ["post"],
        "/rooms/{roomId}/media_token/openid": ["post"],
        "/rooms/{roomId}/lessons": ["get", "post"],
        "/rooms/{roomId}/lessons/{lessonId}/start": ["post"],
        "/rooms/{roomId}/lessons/{lessonId}/end": ["post"],
        "/rooms/{roomId}/lessons/{lessonId}/attendance": ["get"],
        "/internal/attendance": ["post"],
        "/livekit/sfu/get": ["post"],
        "/livekit/get_token": ["post"],
    }.items():
        assert sorted(doc["paths"][path]) == sorted(methods), path


# -- school rooms: the roster decides ----------------------------------------------------


@pytest.fixture(scope="module")
def school(hs: RunningHomeserver) -> School:
    from tests.roster_helpers import build_school

    operator = hs.register("operator", admin=True)
    return build_school(hs, operator, name="Школа уроков")


async def test_in_a_class_room_the_roster_decides(hs: RunningHomeserver, school: School) -> None:
    class_chat = school.class_a["rooms"]["class_chat"]
    assert media_token(hs, school.teacher, class_chat)["role"] == "teacher"
    assert media_token(hs, school.students[0], class_chat)["role"] == "student"
    # A student of another class gets nothing here, joined or not.
    error = refused(media_token, hs, school.other_student, class_chat)
    assert_bilingual(error, "M_FORBIDDEN", 403)

    lesson = hs.request(
        "POST", lessons_url(class_chat), {"title": "Алгебра"}, school.teacher.access_token
    )
    assert lesson["status"] == "live"
    # The service account (the rooms' creator) sends the lesson's state in school rooms.
    async with hs.client(school.students[0]) as client:
        resp = await client.room_get_state_event(class_chat, events.LESSON, lesson["lesson_id"])
        assert isinstance(resp, RoomGetStateEventResponse), resp
        state = await client.room_get_state(class_chat)
        assert isinstance(state, RoomGetStateResponse), state
    senders = {
        (e["type"], e["state_key"]): e["sender"]
        for e in state.events
        if e["type"] in (events.LESSON, "im.vector.modular.widgets")
    }
    service = f"@parta:{hs.server_name}"
    assert senders[(events.LESSON, lesson["lesson_id"])] == service
    widget = next(e for e in state.events if e["state_key"] == lesson["widget_id"])
    assert widget["sender"] == service
    assert widget["content"]["creatorUserId"] == school.teacher.user_id

    # Absent: the class's students who never came, from the roster.
    service_token = tokens.sign_service_token(SECRET, "sfu")
    report_attendance(
        hs,
        service_token,
        [
            {
                "kind": "join",
                "room_id": class_chat,
                "user_id": school.students[0].user_id,
                "session_id": "p1",
                "ts": lesson["started_at"] + 1000,
            }
        ],
    )
    report = hs.request(
        "GET",
        lessons_url(class_chat, f"/{lesson['lesson_id']}/attendance"),
        token=school.teacher.access_token,
    )
    assert [p["user_id"] for p in report["present"]] == [school.students[0].user_id]
    assert sorted(a["user_id"] for a in report["absent"]) == sorted(
        s.user_id for s in school.students[1:]
    )
    # A student cannot run lessons in the class room.
    error = refused(
        hs.request, "POST", lessons_url(class_chat), {"title": "x"}, school.students[0].access_token
    )
    assert_bilingual(error, "M_FORBIDDEN", 403)


# -- Element Call: the lk-jwt-service API ------------------------------------------------


def openid_token(hs: RunningHomeserver, user: User) -> dict[str, Any]:
    answer: dict[str, Any] = hs.request(
        "POST",
        f"/_matrix/client/v3/user/{urllib.parse.quote(user.user_id)}/openid/request_token",
        {},
        user.access_token,
    )
    return answer


def test_livekit_tokens_for_element_call(hs: RunningHomeserver, room: ClassRoom) -> None:
    import jwt

    from synapse_module.media_tokens.rules import livekit_room_alias

    def livekit_claims(answer: dict[str, Any]) -> dict[str, Any]:
        assert answer["url"] == LIVEKIT["url"]
        claims: dict[str, Any] = jwt.decode(
            answer["jwt"], LIVEKIT["api_secret"], algorithms=["HS256"]
        )
        assert claims["iss"] == LIVEKIT["api_key"]
        assert claims["video"]["room"] == livekit_room_alias(room.room_id)
        assert claims["video"]["roomJoin"] is True
        return claims

    teacher = hs.request(
        "POST",
        f"{API}/livekit/sfu/get",
        {"room": room.room_id, "openid_token": openid_token(hs, room.teacher), "device_id": "DEV"},
    )
    claims = livekit_claims(teacher)
    assert claims["sub"] == f"{room.teacher.user_id}:DEV"
    assert claims["video"]["roomAdmin"] is True
    assert "screen_share" in claims["video"]["canPublishSources"]

    pupil = room.students[0]
    student = hs.request(
        "POST",
        f"{API}/livekit/get_token",
        {
            "room_id": room.room_id,
            "slot_id": "m.call#ROOM",
            "openid_token": openid_token(hs, pupil),
            "member": {"id": "x", "claimed_user_id": pupil.user_id, "claimed_device_id": "D2"},
        },
    )
    claims = livekit_claims(student)
    assert claims["video"]["roomAdmin"] is False
    assert claims["video"]["canPublishSources"] == ["camera", "microphone"]

    # Claiming to be someone else, or not being in the room: refused.
    error = refused(
        hs.request,
        "POST",
        f"{API}/livekit/get_token",
        {
            "room_id": room.room_id,
            "openid_token": openid_token(hs, pupil),
            "member": {"claimed_user_id": room.teacher.user_id, "claimed_device_id": "D2"},
        },
    )
    assert_bilingual(error, "M_FORBIDDEN", 403)
    error = refused(
        hs.request,
        "POST",
        f"{API}/livekit/sfu/get",
        {"room": room.room_id, "openid_token": openid_token(hs, room.outsider), "device_id": "D"},
    )
    assert_bilingual(error, "M_FORBIDDEN", 403)
    error = refused(hs.request, "POST", f"{API}/livekit/sfu/get", {"room": room.room_id})
    assert_bilingual(error, "M_BAD_JSON", 400)
