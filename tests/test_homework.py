"""Homework (issue 13, item 4) against the real Synapse with matrix-nio clients:
malformed assignments refused with nothing stored, lists in due order, hand-ins."""

import asyncio
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from parta_common import events
from parta_common.roles import Role
from synapse_module.homework import rules
from synapse_module.homework.events import homework_content
from synapse_module.roster.rules import Standing
from tests.content_school import api, q, room_events, upload
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import School, build_school, wait_for_rooms

# -- pure decisions -------------------------------------------------------------------

ADMIN = Standing("s", frozenset({Role.ADMINISTRATOR}))
TEACHER = Standing("s", frozenset({Role.TEACHER}), teaches=frozenset({"c1"}))
STUDENT = Standing("s", frozenset({Role.STUDENT}), learns_in=frozenset({"c1"}))
PARENT = Standing("s", frozenset({Role.PARENT}), children_classes=frozenset({"c1"}))


@pytest.mark.parametrize(
    ("standing", "may_set", "may_read"),
    [
        (ADMIN, True, True),
        (TEACHER, True, True),
        (STUDENT, False, True),
        (PARENT, False, True),
        (Standing("s", frozenset({Role.TEACHER}), teaches=frozenset({"c2"})), False, False),
        (None, False, False),
    ],
)
def test_who_sets_and_reads(standing: Standing | None, may_set: bool, may_read: bool) -> None:
    assert rules.may_set(standing, "c1") is may_set
    assert rules.may_see_handins(standing, "c1") is may_set
    assert rules.may_read(standing, "c1") is may_read


@pytest.mark.parametrize(
    ("value", "valid"),
    [("2026-12-10", True), ("2026-02-30", False), ("2026-1-1", False), ("", False)],
)
def test_parse_due(value: str, valid: bool) -> None:
    assert (rules.parse_due(value) is not None) is valid


REPLY = {"m.in_reply_to": {"event_id": "$hw"}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"msgtype": "m.file", "url": "mxc://x/a", "body": "f", "m.relates_to": REPLY}, "$hw"),
        ({"msgtype": "m.image", "url": "mxc://x/a", "body": "f", "m.relates_to": REPLY}, "$hw"),
        ({"msgtype": "m.text", "body": "сделал", "m.relates_to": REPLY}, None),
        ({"msgtype": "m.file", "url": "mxc://x/a", "body": "f"}, None),
        ({"msgtype": "m.file", "url": "https://x/a", "m.relates_to": REPLY}, None),
        ({"msgtype": "m.file", "url": "mxc://x/a", "m.relates_to": {"m.in_reply_to": 1}}, None),
    ],
)
def test_handin_of(content: dict[str, Any], expected: str | None) -> None:
    assert rules.handin_of(content) == expected


def test_fallback_body_shows_subject_due_text_and_files() -> None:
    body = rules.fallback_body("Алгебра", "2026-12-10", "№ 12, 14", ["лист.pdf"])
    assert body == "Домашнее задание — Алгебра, к 2026-12-10:\n№ 12, 14\nФайлы: лист.pdf"


# -- against the real Synapse ------------------------------------------------------------


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> School:
    built = build_school(synapse, synapse.register("operator", admin=True))
    for user in (built.teacher, built.other_teacher, *built.students, built.other_student):
        wait_for_rooms(synapse, user)
    return built


def chat(school: School) -> str:
    room: str = school.class_a["rooms"]["class_chat"]
    return room


async def post(
    synapse: RunningHomeserver, user: User, room_id: str, content: dict[str, Any]
) -> RoomSendResponse | RoomSendError:
    async with synapse.client(user) as client:
        resp = await client.room_send(room_id, "m.room.message", content)
        assert isinstance(resp, RoomSendResponse | RoomSendError)
        return resp


async def listing(synapse: RunningHomeserver, user: User, path: str) -> dict[str, Any]:
    status, body = await api(synapse, user, "GET", path)
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def until(check: Any, seconds: float = 30) -> Any:
    """Indexing runs after the event is stored: poll with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await check()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_malformed_homework_is_refused_and_nothing_is_stored(
    synapse: RunningHomeserver, school: School
) -> None:
    class_id = school.class_a["class_id"]
    good = homework_content("Физика", "Параграф 7, задачи 1–3", "2026-12-11", class_id)
    no_subject = {
        **good,
        events.HOMEWORK: {k: v for k, v in good[events.HOMEWORK].items() if k != "subject"},
    }
    bad_date = homework_content("Физика", "НЕСОХРАНЁННОЕ-1", "2026-02-30", class_id)
    other_class = homework_content(
        "Физика", "НЕСОХРАНЁННОЕ-2", "2026-12-11", school.class_b["class_id"]
    )
    bad_file = homework_content(
        "Физика",
        "НЕСОХРАНЁННОЕ-3",
        "2026-12-11",
        class_id,
        [{"url": "https://evil.example/x", "name": "x"}],
    )
    for content in (no_subject, bad_date, other_class, bad_file):
        resp = await post(synapse, school.teacher, chat(school), content)
        assert isinstance(resp, RoomSendError), content
        assert resp.status_code == "M_BAD_JSON", resp
        assert " / " in resp.message  # Russian and English
    # a student may not set homework
    resp = await post(
        synapse,
        school.students[0],
        chat(school),
        homework_content("Физика", "НЕСОХРАНЁННОЕ-4", "2026-12-11", class_id),
    )
    assert isinstance(resp, RoomSendError) and resp.status_code == "M_FORBIDDEN", resp

    bodies = [
        e["content"].get("body", "")
        for e in await room_events(synapse, school.teacher, chat(school))
    ]
    assert not any("НЕСОХРАНЁННОЕ" in b or "Параграф 7" in b for b in bodies)
    listed = await listing(
        synapse, school.teacher, f"/schools/{school.school_id}/classes/{q(class_id)}/homework"
    )
    assert all("НЕСОХРАНЁННОЕ" not in h["text"] for h in listed["homework"])


async def test_homework_is_listed_in_due_order_per_class_student_and_child(
    synapse: RunningHomeserver, school: School
) -> None:
    class_id = school.class_a["class_id"]
    sent = {}
    for subject, due in (
        ("История", "2026-12-20"),
        ("Алгебра", "2026-12-09"),
        ("Русский язык", "2026-12-14"),
    ):
        resp = await post(
            synapse,
            school.teacher,
            chat(school),
            homework_content(subject, f"Задание по предмету {subject}", due, class_id),
        )
        assert isinstance(resp, RoomSendResponse), resp
        sent[subject] = resp.event_id
    # what any client shows: the m.text body with subject, due date and text
    timeline = {
        e["event_id"]: e for e in await room_events(synapse, school.students[0], chat(school))
    }
    shown = timeline[sent["Алгебра"]]["content"]
    assert shown["msgtype"] == "m.text"
    assert "Алгебра" in shown["body"] and "2026-12-09" in shown["body"]
    assert "Задание по предмету Алгебра" in shown["body"]

    path = f"/schools/{school.school_id}/classes/{q(class_id)}/homework"

    async def three() -> list[dict[str, Any]] | None:
        items = (await listing(synapse, school.students[1], path))["homework"]
        return items if len(items) >= 3 else None

    items = await until(three)
    assert [h["subject"] for h in items] == ["Алгебра", "Русский язык", "История"]
    assert items[0]["event_id"] == sent["Алгебра"] and items[0]["sender"] == school.teacher.user_id

    mine = await listing(synapse, school.students[0], "/me/homework")
    assert [h["subject"] for h in mine["homework"]] == ["Алгебра", "Русский язык", "История"]
    parent = await listing(synapse, school.parent, "/me/homework")
    assert parent["homework"] == []
    assert [c["user_id"] for c in parent["children"]] == [school.students[0].user_id]
    assert [h["subject"] for h in parent["children"][0]["homework"]] == [
        "Алгебра",
        "Русский язык",
        "История",
    ]
    # 7Б's student and teacher do not read 7А's homework
    for outsider in (school.other_student, school.other_teacher):
        status, body = await api(synapse, outsider, "GET", path)
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", body
    assert (await listing(synapse, school.other_student, "/me/homework"))["homework"] == []


async def test_handins_are_file_replies_listed_for_the_teacher(
    synapse: RunningHomeserver, school: School
) -> None:
    class_id = school.class_a["class_id"]
    resp = await post(
        synapse,
        school.teacher,
        chat(school),
        homework_content("Биология", "Нарисуйте клетку", "2026-12-12", class_id),
    )
    assert isinstance(resp, RoomSendResponse), resp
    homework_id = resp.event_id
    handed = []
    for student in school.students[:2]:
        status, uploaded = await upload(
            synapse, student, b"%PDF-1.4\n%%EOF\n", "application/pdf", "kletka.pdf"
        )
        assert status == 200, uploaded
        reply = await post(
            synapse,
            student,
            chat(school),
            {
                "msgtype": "m.file",
                "body": "kletka.pdf",
                "filename": "kletka.pdf",
                "url": uploaded["content_uri"],
                "info": {"mimetype": "application/pdf", "size": 15},
                "m.relates_to": {"m.in_reply_to": {"event_id": homework_id}},
            },
        )
        assert isinstance(reply, RoomSendResponse), reply
        handed.append((student.user_id, reply.event_id))
    # a plain text reply is no hand-in
    text = await post(
        synapse,
        school.students[2],
        chat(school),
        {
            "msgtype": "m.text",
            "body": "А можно завтра?",
            "m.relates_to": {"m.in_reply_to": {"event_id": homework_id}},
        },
    )
    assert isinstance(text, RoomSendResponse)

    path = f"/schools/{school.school_id}/classes/{q(class_id)}/homework/{q(homework_id)}/handins"

    async def two() -> list[dict[str, Any]] | None:
        got = (await listing(synapse, school.teacher, path))["handins"]
        return got if len(got) >= 2 else None

    handins = await until(two)
    assert [(h["student"], h["event_id"]) for h in handins] == handed
    assert all(h["name"] == "kletka.pdf" and h["url"].startswith("mxc://") for h in handins)
    # students do not see each other's work; an unknown assignment is 404
    status, body = await api(synapse, school.students[0], "GET", path)
    assert status == 403, body
    status, body = await api(
        synapse,
        school.teacher,
        "GET",
        f"/schools/{school.school_id}/classes/{q(class_id)}/homework/%24nope/handins",
    )
    assert status == 404 and body["errcode"] == "M_NOT_FOUND", body


def test_a_parent_reads_a_childs_classes_only_where_named_the_parent() -> None:
    """``/me/homework``: a child's classes in the schools whose roster names the parent
    as theirs; not in a school where the parent is a parent of someone else."""
    from synapse_module.roster.rules import Person

    child = Person(
        "@c:x",
        {
            "A": Standing("A", frozenset({Role.STUDENT}), learns_in=frozenset({"a7"})),
            "B": Standing("B", frozenset({Role.STUDENT}), learns_in=frozenset({"b7"})),
        },
    )
    in_a = Standing("A", frozenset({Role.PARENT}), children=frozenset({"@c:x"}))
    of_other = Standing("B", frozenset({Role.PARENT}), children=frozenset({"@d:x"}))
    assert rules.child_classes(Person("@p:x", {"A": in_a}), child) == ["a7"]
    assert rules.child_classes(Person("@p:x", {"A": in_a, "B": of_other}), child) == ["a7"]
    assert rules.child_classes(Person("@p:x", {"B": of_other}), child) == []
