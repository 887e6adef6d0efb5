"""Read confirmations (issue 13, item 1) with matrix-nio clients on the real Synapse:
an announcement asks, members confirm with a reply «+» or a reaction, once each."""

import asyncio
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from parta_common.roles import Role
from synapse_module.confirmations import rules
from synapse_module.confirmations.events import ask_content
from synapse_module.roster.rules import Standing
from tests.content_school import api, matrix, q
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, build_school, wait_for_rooms

REPLY = {"m.in_reply_to": {"event_id": "$a"}}


@pytest.mark.parametrize(
    ("event_type", "content", "expected"),
    [
        (
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "👍"}},
            "$a",
        ),
        (
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$a", "key": "😡"}},
            None,
        ),
        (
            "m.room.message",
            {"msgtype": "m.text", "body": "> <@t:x> Собрание\n\n+", "m.relates_to": REPLY},
            "$a",
        ),
        ("m.room.message", {"msgtype": "m.text", "body": "+", "m.relates_to": REPLY}, "$a"),
        (
            "m.room.message",
            {"msgtype": "m.text", "body": "+ приду позже", "m.relates_to": REPLY},
            None,
        ),
        ("m.room.message", {"msgtype": "m.text", "body": "+"}, None),
        (
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "+",
                "m.relates_to": {"m.in_reply_to": {"event_id": "x"}},
            },
            None,
        ),
    ],
)
def test_confirmation_target(
    event_type: str, content: dict[str, Any], expected: str | None
) -> None:
    assert rules.confirmation_target(event_type, content) == expected


def test_status_counts_each_person_once_per_class() -> None:
    expected = {"@s1:x": ["c1"], "@s2:x": ["c1"], "@p:x": ["c1", "c2"], "@t:x": [rules.NO_CLASS]}
    result = rules.status(expected, {"@s1:x": 1, "@p:x": 2, "@stranger:x": 3})
    assert result == {
        "expected": 4,
        "confirmed": 2,
        "classes": [
            {"class_id": "", "confirmed": [], "not_confirmed": ["@t:x"]},
            {"class_id": "c1", "confirmed": ["@p:x", "@s1:x"], "not_confirmed": ["@s2:x"]},
            {"class_id": "c2", "confirmed": ["@p:x"], "not_confirmed": []},
        ],
    }


@pytest.mark.parametrize(
    ("standing", "classes", "may_mark"),
    [
        (Standing("s", frozenset({Role.STUDENT}), learns_in=frozenset({"c1"})), ["c1"], False),
        (
            Standing("s", frozenset({Role.PARENT}), children_classes=frozenset({"c2", "c1"})),
            ["c1", "c2"],
            False,
        ),
        (Standing("s", frozenset({Role.TEACHER}), teaches=frozenset({"c1"})), [""], True),
        (None, [""], False),
    ],
)
def test_classes_and_who_may_ask(
    standing: Standing | None, classes: list[str], may_mark: bool
) -> None:
    assert rules.classes_of(standing) == classes
    assert rules.may_mark(standing) is may_mark


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> School:
    built = build_school(synapse, synapse.register("operator", admin=True))
    everyone = (
        built.admin,
        built.teacher,
        built.other_teacher,
        *built.students,
        built.other_student,
        built.parent,
    )
    for user in everyone:
        wait_for_rooms(synapse, user)
    return built


async def send(
    synapse: RunningHomeserver, user: User, room_id: str, event_type: str, content: dict[str, Any]
) -> RoomSendResponse | RoomSendError:
    async with synapse.client(user) as client:
        resp = await client.room_send(room_id, event_type, content)
        assert isinstance(resp, RoomSendResponse | RoomSendError)
        return resp


async def wait_status(
    synapse: RunningHomeserver, user: User, path: str, confirmed: int
) -> dict[str, Any]:
    """Indexed after it is stored: poll with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        status, body = await api(synapse, user, "GET", path)
        assert status == 200, body
        if body["confirmed"] >= confirmed or loop.time() > deadline:
            result: dict[str, Any] = body
            return result
        await asyncio.sleep(0.1)


def group(body: dict[str, Any], class_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [g for g in body["classes"] if g["class_id"] == class_id]
    assert len(found) == 1, body
    return found[0]


async def test_confirmations_by_reply_and_reaction_counted_once_per_person(
    synapse: RunningHomeserver, school: School
) -> None:
    chat = school.class_a["rooms"]["class_chat"]
    refused = await send(
        synapse, school.students[0], chat, "m.room.message", ask_content("Все завтра в 8:00")
    )
    assert isinstance(refused, RoomSendError) and refused.status_code == "M_FORBIDDEN"

    asked = await send(
        synapse, school.teacher, chat, "m.room.message", ask_content("Экскурсия в пятницу в 9:00")
    )
    assert isinstance(asked, RoomSendResponse), asked
    aid = asked.event_id
    reply = {
        "msgtype": "m.text",
        "body": f"> <{school.teacher.user_id}> Экскурсия в пятницу\n\n+",
        "m.relates_to": {"m.in_reply_to": {"event_id": aid}},
    }
    react = {"rel_type": "m.annotation", "event_id": aid, "key": "👍"}
    for user, event_type, content in (
        (school.students[0], "m.room.message", reply),
        (school.students[1], "m.reaction", {"m.relates_to": react}),
        (school.students[1], "m.room.message", reply),  # again: counted once
        (school.students[2], "m.reaction", {"m.relates_to": {**react, "key": "😡"}}),
    ):
        resp = await send(synapse, user, chat, event_type, content)
        assert isinstance(resp, RoomSendResponse), resp

    path = f"/rooms/{q(chat)}/confirmations/{q(aid)}"
    body = await wait_status(synapse, school.teacher, path, 2)
    a = school.class_a["class_id"]
    s0, s1, s2 = (s.user_id for s in school.students)
    assert body["confirmed"] == 2
    assert group(body, a) == {"class_id": a, "confirmed": sorted([s0, s1]), "not_confirmed": [s2]}

    csv_status, csv = await matrix(
        synapse,
        school.teacher,
        "GET",
        "/_synapse/client/parta/v1" + path,
        params={"format": "csv"},
    )
    assert csv_status == 200
    text = csv.decode("utf-8")
    assert text.startswith("\ufeffКласс;Пользователь;Подтвердил\r\n")
    assert f"{a};{s2};нет" in text and f"{a};{s0};да" in text

    # the other teacher (not its sender, no administrator) sees nothing; unknown: 404
    status, err = await api(synapse, school.other_teacher, "GET", path)
    assert status == 403 and err["errcode"] == "M_FORBIDDEN", err
    status, err = await api(synapse, school.teacher, "GET", f"/rooms/{q(chat)}/confirmations/%24no")
    assert status == 404, err


async def test_a_parent_confirms_in_the_parents_chat_under_the_childs_class(
    synapse: RunningHomeserver, school: School
) -> None:
    chat = school.class_a["rooms"]["parents_chat"]
    asked = await send(
        synapse, school.teacher, chat, "m.room.message", ask_content("Сдаём на шторы до среды")
    )
    assert isinstance(asked, RoomSendResponse), asked
    # what any client shows: the text and the line asking for «+»
    status, event = await matrix(
        synapse,
        school.parent,
        "GET",
        f"/_matrix/client/v3/rooms/{q(chat)}/event/{q(asked.event_id)}",
    )
    assert status == 200 and event["content"]["body"].endswith("Подтвердите прочтение: ответьте +")
    react = {"rel_type": "m.annotation", "event_id": asked.event_id, "key": "✅"}
    resp = await send(synapse, school.parent, chat, "m.reaction", {"m.relates_to": react})
    assert isinstance(resp, RoomSendResponse), resp
    path = f"/rooms/{q(chat)}/confirmations/{q(asked.event_id)}"
    body = await wait_status(synapse, school.admin, path, 1)
    a = school.class_a["class_id"]
    assert group(body, a)["confirmed"] == [school.parent.user_id]
