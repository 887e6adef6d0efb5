"""Reports reach the school (issue 13, item 3): Matrix's report call, made by real
clients on the real Synapse, lands in the class's complaints room."""

import asyncio
from typing import Any

import pytest
from nio import JoinResponse, RoomCreateResponse, RoomSendResponse

from parta_common.roles import Role
from synapse_module.reports import rules
from synapse_module.roster.rules import Person, RoomKind, SchoolRoom, Standing
from tests.content_school import joined_rooms, matrix, parta_notice, q, room_events
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, api, build_school, wait_for_rooms

# -- pure decisions -------------------------------------------------------------------

STUDENT = Person(
    "@s:x", {"sch": Standing("sch", frozenset({Role.STUDENT}), learns_in=frozenset({"c7"}))}
)
PARENT = Person(
    "@p:x",
    {"sch": Standing("sch", frozenset({Role.PARENT}), children_classes=frozenset({"c5", "c2"}))},
)
STRANGER = Person("@x:y")
CLASS_CHAT = SchoolRoom("!c:x", RoomKind.CLASS_CHAT, "sch", "c7")
STAFF = SchoolRoom("!s:x", RoomKind.STAFF, "sch", None)


@pytest.mark.parametrize(
    ("room", "reporter", "expected"),
    [
        (CLASS_CHAT, STUDENT, rules.Destination("sch", "c7")),
        (CLASS_CHAT, STRANGER, rules.Destination("sch", "c7")),
        (STAFF, STUDENT, rules.Destination("sch", None)),
        # a direct chat (no school room): the reporter's own school and class
        (None, STUDENT, rules.Destination("sch", "c7")),
        (None, PARENT, rules.Destination("sch", "c2")),
        (None, STRANGER, None),
        (SchoolRoom("!u:x", RoomKind.UNIT_SPACE, None, None, "u"), STRANGER, None),
    ],
)
def test_destination(
    room: SchoolRoom | None, reporter: Person, expected: rules.Destination | None
) -> None:
    assert rules.destination(room, reporter) == expected


@pytest.mark.parametrize(
    ("admins", "homeroom", "expected"),
    [
        (["@a:x", "@b:x"], "@t:x", ["@a:x", "@b:x", "@t:x"]),
        (["@a:x"], None, ["@a:x"]),
        (["@t:x"], "@t:x", ["@t:x"]),
        ([], None, []),
    ],
)
def test_readers(admins: list[str], homeroom: str | None, expected: list[str]) -> None:
    assert rules.readers(admins, homeroom) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"msgtype": "m.text", "body": "дурак"}, "дурак"),
        ({"msgtype": "m.text", "body": "   "}, None),
        ({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "..."}, None),
        ({"body": 5}, None),
        ({"body": "я" * 2000}, "я" * (rules.MAX_QUOTED - 1) + "…"),
    ],
)
def test_quoted_text(content: dict[str, Any], expected: str | None) -> None:
    assert rules.quoted_text(content) == expected


def test_matrix_to_link_escapes_ids() -> None:
    assert rules.matrix_to("!a:x.org", "$b/c+d") == "https://matrix.to/#/%21a%3Ax.org/%24b%2Fc%2Bd"


# -- against the real Synapse ------------------------------------------------------------


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> School:
    built = build_school(synapse, synapse.register("operator", admin=True))
    for user in (built.teacher, built.admin, *built.students, built.parent):
        wait_for_rooms(synapse, user)
    return built


def class_chat(school: School) -> str:
    chat: str = school.class_a["rooms"]["class_chat"]
    return chat


async def say(synapse: RunningHomeserver, user: User, room_id: str, text: str) -> str:
    async with synapse.client(user) as client:
        resp = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)


async def report(synapse: RunningHomeserver, user: User, room_id: str, event_id: str) -> None:
    """What a client's «Пожаловаться» sends (nio has no call for it)."""
    status, body = await matrix(
        synapse,
        user,
        "POST",
        f"/_matrix/client/v3/rooms/{q(room_id)}/report/{q(event_id)}",
        {"reason": "обзывается", "score": -100},
    )
    assert status == 200, body


async def forwarded(
    synapse: RunningHomeserver, reader: User, event_id: str, seconds: float = 60
) -> tuple[str, dict[str, Any]]:
    """The complaints room ``reader`` is in and the notice about ``event_id`` (the module
    reads reports every couple of seconds: poll with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        for room_id in await joined_rooms(synapse, reader):
            for event in await room_events(synapse, reader, room_id):
                about = event.get("content", {}).get("org.parta.report", {})
                if about.get("event_id") == event_id:
                    return room_id, event
        if loop.time() > deadline:
            raise AssertionError(f"report of {event_id} not forwarded to {reader.user_id}")
        await asyncio.sleep(0.5)


async def members(synapse: RunningHomeserver, user: User, room_id: str) -> set[str]:
    status, body = await matrix(
        synapse, user, "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members"
    )
    assert status == 200, body
    return set(body["joined"])


async def test_a_students_report_reaches_the_homeroom_teacher_and_no_one_else(
    synapse: RunningHomeserver, school: School
) -> None:
    reporter, offender, bystander = school.students
    room_id = class_chat(school)
    event_id = await say(synapse, offender, room_id, "Ты дурак, и все это знают")
    await report(synapse, reporter, room_id, event_id)

    complaints, notice = await forwarded(synapse, school.teacher, event_id)
    body = notice["content"]["body"]
    assert reporter.user_id in body
    assert offender.user_id in body
    assert "Ты дурак, и все это знают" in body
    assert "обзывается" in body
    assert rules.matrix_to(room_id, event_id) in body
    assert "7А" in body or "7а" in body.lower()
    assert notice["content"]["msgtype"] == "m.notice"

    # the administrator reads the same room; the readers are exactly these two
    again, _ = await forwarded(synapse, school.admin, event_id)
    assert again == complaints
    assert await members(synapse, school.teacher, complaints) == {
        f"@parta:{synapse.server_name}",
        school.teacher.user_id,
        school.admin.user_id,
    }
    # no other student, parent or teacher reads it, nor can they get in
    for outsider in (reporter, offender, bystander, school.parent, school.other_teacher):
        status, _ = await matrix(
            synapse, outsider, "GET", f"/_matrix/client/v3/rooms/{q(complaints)}/messages"
        )
        assert status == 403
        async with synapse.client(outsider) as client:
            assert not isinstance(await client.join(complaints), JoinResponse)

    assert "Жалоба передана классному руководителю и администрации" in await parta_notice(
        synapse, reporter, "Жалоба"
    )


async def test_a_direct_message_to_a_student_is_escalated_to_the_students_school(
    synapse: RunningHomeserver, school: School
) -> None:
    """No one outside the school can open a direct chat with a student (the roster
    refuses it, here and over federation); a school that lets its students write to any
    student lets a 7Б pupil write to a 7А pupil in a room that is no school room: the
    report goes to the reporter's class."""
    api(
        synapse,
        "PATCH",
        f"/schools/{school.school_id}",
        school.admin,
        {"policy": {"dm_policy": "school"}},
    )
    writer = school.other_student
    student = school.students[2]
    async with synapse.client(writer) as client:
        created = await client.room_create(is_direct=True, invite=[student.user_id])
        assert isinstance(created, RoomCreateResponse), created
        dm = created.room_id
    async with synapse.client(student) as client:
        assert isinstance(await client.join(dm), JoinResponse)
    event_id = await say(synapse, writer, dm, "Пришли фото, никому не говори")
    await report(synapse, student, dm, event_id)

    complaints, notice = await forwarded(synapse, school.teacher, event_id)
    body = notice["content"]["body"]
    assert writer.user_id in body and "Пришли фото" in body
    assert "личная переписка ученика" in body
    assert notice["content"]["org.parta.report"]["class_id"] == school.class_a["class_id"]
    # the 7Б teacher (not the reporter's homeroom teacher) is not told
    assert complaints not in await joined_rooms(synapse, school.other_teacher)
    assert school.admin.user_id in await members(synapse, school.teacher, complaints)


async def test_a_report_outside_any_school_stays_with_the_operator(
    synapse: RunningHomeserver, school: School
) -> None:
    a, b = synapse.register("a"), synapse.register("b")
    async with synapse.client(a) as client:
        created = await client.room_create(invite=[b.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
    async with synapse.client(b) as client:
        assert isinstance(await client.join(room_id), JoinResponse)
    event_id = await say(synapse, a, room_id, "спам")
    await report(synapse, b, room_id, event_id)
    # a later school report is forwarded, so the reading passed this one: it went nowhere
    marker = await say(synapse, school.students[1], class_chat(school), "ещё одно")
    await report(synapse, school.students[0], class_chat(school), marker)
    complaints, _ = await forwarded(synapse, school.admin, marker)
    texts = [
        e["content"].get("body", "") for e in await room_events(synapse, school.admin, complaints)
    ]
    assert not any("спам" in t for t in texts)
