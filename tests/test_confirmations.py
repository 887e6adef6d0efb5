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
from tests.roster_helpers import api as roster_api

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


def test_who_and_the_children_in_scope() -> None:
    assert rules.who("@p:x") == "@p:x" and rules.who("@p:x", "@c:x") == "@p:x/@c:x"
    children = {"@c1:x": frozenset({"7a"}), "@c2:x": frozenset({"5b"})}
    assert rules.children_in_scope(children, "7a") == ["@c1:x"]
    assert rules.children_in_scope(children, None) == ["@c1:x", "@c2:x"]
    parent = Standing("s", frozenset({Role.PARENT}), children=frozenset(children))
    assert rules.expected_entries("@p:x", parent, True, children, None) == {
        "@p:x/@c1:x": ["7a"],
        "@p:x/@c2:x": ["5b"],
    }
    # not per child: once, under both classes
    assert rules.expected_entries("@p:x", parent, False, children, None) == {"@p:x": [""]}
    assert rules.expected_entries("@t:x", None, True, {}, "7a") == {"@t:x": [""]}


async def test_in_the_announcements_room_members_confirm_with_a_reaction_only(
    synapse: RunningHomeserver, school: School
) -> None:
    """Members have power 0 there and posting needs 50: ``m.reaction`` is opened to 0
    in its power levels, and the module lets through only confirming reactions."""
    room = school.rooms["announcements"]
    asked = await send(
        synapse,
        school.admin,
        room,
        "m.room.message",
        ask_content("Завтра линейка в 8:30", by_reaction=True),
    )
    assert isinstance(asked, RoomSendResponse), asked
    aid = asked.event_id
    status, event = await matrix(
        synapse, school.students[0], "GET", f"/_matrix/client/v3/rooms/{q(room)}/event/{q(aid)}"
    )
    assert status == 200 and event["content"]["body"].endswith("поставьте 👍")
    react = {"rel_type": "m.annotation", "event_id": aid, "key": "👍"}
    ok = await send(synapse, school.students[0], room, "m.reaction", {"m.relates_to": react})
    assert isinstance(ok, RoomSendResponse), ok
    angry = await send(
        synapse, school.students[1], room, "m.reaction", {"m.relates_to": {**react, "key": "😡"}}
    )
    assert isinstance(angry, RoomSendError) and angry.status_code == "M_FORBIDDEN", angry
    reply = {
        "msgtype": "m.text",
        "body": "+",
        "m.relates_to": {"m.in_reply_to": {"event_id": aid}},
    }
    refused = await send(synapse, school.students[1], room, "m.room.message", reply)
    assert isinstance(refused, RoomSendError), refused  # posting still needs 50
    # a member who cannot react confirms through the API (the bot's command)
    status, mine = await api(
        synapse, school.students[1], "POST", f"/rooms/{q(room)}/confirmations/{q(aid)}", {}
    )
    assert status == 200 and mine["confirmed"] == [school.students[1].user_id], mine
    path = f"/rooms/{q(room)}/confirmations/{q(aid)}"
    body = await wait_status(synapse, school.admin, path, 2)
    a = school.class_a["class_id"]
    s0, s1, s2 = (s.user_id for s in school.students)
    assert group(body, a)["confirmed"] == sorted([s0, s1])
    assert s2 in group(body, a)["not_confirmed"]
    # the sender does not confirm their own; an outsider of the room cannot
    status, err = await api(synapse, school.admin, "POST", f"{path}", {})
    assert status == 403, err


async def test_a_parent_of_two_children_confirms_per_child(
    synapse: RunningHomeserver, school: School
) -> None:
    """The school asks per child (``org.parta.confirm_per_child``): a parent of a 7А and a
    7Б pupil is expected twice in the announcements room, once in 7А's parents chat."""
    parent, child_a, child_b = school.parent, school.students[0], school.other_student
    roster_api(
        synapse,
        "PUT",
        f"/schools/{school.school_id}/members/{parent.user_id}",
        school.admin,
        {"roles": ["parent"], "children": [child_a.user_id, child_b.user_id]},
    )
    wait_for_rooms(synapse, parent)
    a, b = school.class_a["class_id"], school.class_b["class_id"]
    room = school.rooms["announcements"]
    asked = await send(
        synapse,
        school.admin,
        room,
        "m.room.message",
        ask_content("Согласие на экскурсию", by_reaction=True, per_child=True),
    )
    assert isinstance(asked, RoomSendResponse), asked
    path = f"/rooms/{q(room)}/confirmations/{q(asked.event_id)}"
    for_a, for_b = f"{parent.user_id}/{child_a.user_id}", f"{parent.user_id}/{child_b.user_id}"

    status, mine = await api(synapse, parent, "POST", path, {"children": [child_a.user_id]})
    assert status == 200 and mine["confirmed"] == [for_a], mine
    status, again = await api(synapse, parent, "POST", path, {"children": [child_a.user_id]})
    assert status == 200 and again["confirmed"] == [for_a], again  # counted once
    status, err = await api(
        synapse, parent, "POST", path, {"children": [school.students[1].user_id]}
    )
    assert status == 403 and err["errcode"] == "M_FORBIDDEN", err
    body = await wait_status(synapse, school.admin, path, 1)
    assert body["confirmed"] == 1
    assert for_a in group(body, a)["confirmed"] and for_b in group(body, b)["not_confirmed"]
    assert parent.user_id not in str(group(body, "")), body  # not also as a person

    # a reaction from any client confirms for every child in the room's scope
    react = {"rel_type": "m.annotation", "event_id": asked.event_id, "key": "👍"}
    ok = await send(synapse, parent, room, "m.reaction", {"m.relates_to": react})
    assert isinstance(ok, RoomSendResponse), ok
    body = await wait_status(synapse, school.admin, path, 2)
    assert for_b in group(body, b)["confirmed"] and body["confirmed"] == 2

    # in 7А's parents chat only the 7А child is in scope
    chat = school.class_a["rooms"]["parents_chat"]
    asked = await send(
        synapse,
        school.teacher,
        chat,
        "m.room.message",
        ask_content("Деньги на театр", per_child=True),
    )
    assert isinstance(asked, RoomSendResponse), asked
    reply = {
        "msgtype": "m.text",
        "body": "+",
        "m.relates_to": {"m.in_reply_to": {"event_id": asked.event_id}},
    }
    ok = await send(synapse, parent, chat, "m.room.message", reply)
    assert isinstance(ok, RoomSendResponse), ok
    body = await wait_status(
        synapse, school.teacher, f"/rooms/{q(chat)}/confirmations/{q(asked.event_id)}", 1
    )
    assert group(body, a)["confirmed"] == [for_a]
    assert all(for_b not in g["not_confirmed"] + g["confirmed"] for g in body["classes"])


async def test_a_confirmation_sent_before_the_request_is_indexed_is_not_lost(
    synapse: RunningHomeserver, school: School
) -> None:
    """The indexer records a request after Synapse has stored it (and on the indexing
    process); a parent confirming at once (the bot's command, the console) must not get
    «no such message». The request's row is taken away as if the indexer had not run yet:
    the confirmation finds the message in Synapse's store, records it, and counts."""
    room = school.rooms["announcements"]
    asked = await send(
        synapse, school.admin, room, "m.room.message", ask_content("Родительское собрание")
    )
    assert isinstance(asked, RoomSendResponse), asked
    path = f"/rooms/{q(room)}/confirmations/{q(asked.event_id)}"
    await wait_status(synapse, school.admin, path, 0)  # indexed …
    synapse.sql("DELETE FROM parta_confirm_requests WHERE event_id = ?", (asked.event_id,))
    # … and now as if not yet
    status, mine = await api(synapse, school.parent, "POST", path, {})
    assert status == 200 and mine["confirmed"] == [school.parent.user_id], mine
    body = await wait_status(synapse, school.admin, path, 1)
    assert body["confirmed"] == 1
    kept = synapse.rows(
        "SELECT sender FROM parta_confirm_requests WHERE event_id = ?", (asked.event_id,)
    )
    assert kept == [(school.admin.user_id,)]
    # A message that asks for nothing is still not a request, unindexed or not.
    plain = await send(
        synapse, school.admin, room, "m.room.message", {"msgtype": "m.text", "body": "Привет"}
    )
    assert isinstance(plain, RoomSendResponse), plain
    status, err = await api(
        synapse, school.parent, "POST", f"/rooms/{q(room)}/confirmations/{q(plain.event_id)}", {}
    )
    assert status == 404 and err["errcode"] == "M_NOT_FOUND", err


@pytest.mark.parametrize(
    ("standing", "user_id", "refusal"),
    [
        (Standing("s", frozenset({Role.TEACHER})), "@t:x", None),  # the sender, staff
        (Standing("s", frozenset({Role.ADMINISTRATOR})), "@a:x", None),
        (Standing("s", frozenset({Role.TEACHER})), "@t2:x", "rules.confirm_who_sees"),
        (Standing("s", frozenset({Role.PARENT})), "@t:x", "rules.confirm_who_sees"),
        (None, "@t:x", "rules.confirm_not_in_school"),  # the sender, off the roster
        (Standing("s"), "@t:x", "rules.confirm_not_in_school"),
    ],
)
def test_who_sees_who_has_confirmed(
    standing: Standing | None, user_id: str, refusal: str | None
) -> None:
    found = rules.who_sees_refusal(standing, user_id, "@t:x")
    assert (found.id if found is not None else None) == refusal
