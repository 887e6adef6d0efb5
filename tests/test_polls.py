"""Polls and quizzes against the real Synapse: MSC3381 as Element sends it, Parta's API."""

import asyncio
import json
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from parta_common import events, schemas
from tests.content_school import ClassRoom, api, make_school_class, matrix, q, room_events, send
from tests.harness import RunningHomeserver, User


@pytest.fixture(scope="module")
def school(synapse: RunningHomeserver) -> ClassRoom:
    """One school and class for this file's tests (building one takes seconds)."""
    return make_school_class(synapse, students=3)


async def vote_like_element(
    synapse: RunningHomeserver, user: User, room_id: str, start_id: str, answers: list[str]
) -> str:
    """What Element sends when someone clicks an answer: a reference to the start event."""
    async with synapse.client(user) as client:
        resp = await client.room_send(
            room_id,
            events.POLL_RESPONSE,
            {
                events.POLL_RESPONSE: {"answers": answers},
                "m.relates_to": {"rel_type": "m.reference", "event_id": start_id},
            },
        )
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)


async def results(synapse: RunningHomeserver, user: User, poll_id: str) -> dict[str, Any]:
    status, body = await api(synapse, user, "GET", f"/polls/{poll_id}")
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def wait_votes(
    synapse: RunningHomeserver, user: User, poll_id: str, voters: int
) -> dict[str, Any]:
    """Indexing runs after the event is stored: poll with a deadline."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        body = await results(synapse, user, poll_id)
        if body["voters"] == voters or loop.time() > deadline:
            return body
        await asyncio.sleep(0.1)


async def start_poll(
    synapse: RunningHomeserver, school: ClassRoom, **options: Any
) -> dict[str, Any]:
    body = {
        "question": "Когда контрольная?",
        "answers": [{"text": "В понедельник"}, {"text": "Во вторник"}, {"text": "В среду"}],
        **options,
    }
    status, created = await api(
        synapse, school.teacher, "POST", f"/rooms/{q(school.room_id)}/polls", body
    )
    assert status == 201, created
    result: dict[str, Any] = created
    return result


def event_by_id(timeline: list[Any], event_id: str) -> dict[str, Any]:
    for event in timeline:
        if event["event_id"] == event_id:
            found: dict[str, Any] = event
            return found
    raise AssertionError(f"{event_id} not in the timeline")


async def test_api_poll_is_msc3381_and_element_votes_are_counted(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    created = await start_poll(synapse, school)
    timeline = await room_events(synapse, school.students[0], school.room_id)
    start = event_by_id(timeline, created["event_id"])
    # A valid MSC3381 start event, as Element renders it.
    assert start["type"] == events.POLL_START
    assert schemas.problem(events.POLL_START, start["content"]) is None
    poll = start["content"][events.POLL_START]
    assert poll["question"][events.TEXT_FALLBACK] == "Когда контрольная?"
    assert poll["kind"] == "org.matrix.msc3381.poll.disclosed"
    assert poll["max_selections"] == 1
    assert [a[events.TEXT_FALLBACK] for a in poll["answers"]] == [
        "В понедельник",
        "Во вторник",
        "В среду",
    ]
    assert "Когда контрольная?" in start["content"][events.TEXT_FALLBACK]
    ids = [a["id"] for a in poll["answers"]]

    s1, s2, s3 = school.students
    await vote_like_element(synapse, s1, school.room_id, created["event_id"], [ids[0]])
    # A person's last response counts: s2 changes their mind.
    await vote_like_element(synapse, s2, school.room_id, created["event_id"], [ids[0]])
    await vote_like_element(synapse, s2, school.room_id, created["event_id"], [ids[1]])
    # Unknown answers are ignored: s3's response is spoiled and does not count.
    await vote_like_element(synapse, s3, school.room_id, created["event_id"], ["nonsense"])
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 2)
    assert [a["votes"] for a in body["answers"]] == [1, 1, 0]
    assert body["voters"] == 2
    # The owner sees who answered what (a non-anonymous poll); a student does not.
    assert {p["user_id"]: p["answers"] for p in body["by_person"]} == {
        s1.user_id: [ids[0]],
        s2.user_id: [ids[1]],
    }
    seen_by_student = await results(synapse, s1, created["poll_id"])
    assert "by_person" not in seen_by_student
    assert seen_by_student["my_answers"] == [ids[0]]
    assert [a["votes"] for a in seen_by_student["answers"]] == [1, 1, 0]

    # Ending: a student may not; the teacher may, and later votes do not count.
    status, refused = await api(synapse, s1, "POST", f"/polls/{created['poll_id']}/end")
    assert status == 403, refused
    assert "Завершить опрос" in refused["error"]
    status, ended = await api(synapse, school.teacher, "POST", f"/polls/{created['poll_id']}/end")
    assert status == 200, ended
    assert ended["ended"] is True
    await vote_like_element(synapse, s3, school.room_id, created["event_id"], [ids[2]])
    timeline = await room_events(synapse, s1, school.room_id)
    assert any(e["type"] == events.POLL_END for e in timeline)
    after = await results(synapse, school.teacher, created["poll_id"])
    assert [a["votes"] for a in after["answers"]] == [1, 1, 0]


async def test_poll_started_in_element_is_indexed_and_students_may_not_start(
    synapse: RunningHomeserver,
    school: ClassRoom,
) -> None:
    content = {
        events.POLL_START: {
            "question": {events.TEXT_FALLBACK: "Идём в музей?"},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 2,
            "answers": [
                {"id": "yes", events.TEXT_FALLBACK: "Да"},
                {"id": "no", events.TEXT_FALLBACK: "Нет"},
                {"id": "maybe", events.TEXT_FALLBACK: "Может быть"},
            ],
        },
        events.TEXT_FALLBACK: "Идём в музей?\n1. Да\n2. Нет\n3. Может быть",
    }
    status, refused = await send(
        synapse, school.students[0], school.room_id, events.POLL_START, content
    )
    assert status == 403, refused
    assert "Only teachers and administrators may start polls" in refused["error"]
    async with synapse.client(school.teacher) as client:
        sent = await client.room_send(school.room_id, events.POLL_START, content)
        assert isinstance(sent, RoomSendResponse), sent
    start_id = str(sent.event_id)
    # max_selections = 2: the first two valid answers count, duplicates once.
    await vote_like_element(
        synapse, school.students[0], school.room_id, start_id, ["maybe", "maybe", "yes", "no"]
    )
    body = await wait_votes(synapse, school.teacher, q(start_id), 1)
    assert {a["id"]: a["votes"] for a in body["answers"]} == {"yes": 1, "no": 0, "maybe": 1}
    status, listed = await api(
        synapse, school.students[0], "GET", f"/rooms/{q(school.room_id)}/polls"
    )
    assert status == 200, listed
    assert start_id in [p["event_id"] for p in listed["polls"]]


def _no_correct_anywhere(value: Any, correct_markers: list[str]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert '"correct' not in text, text[:500]
    for marker in correct_markers:
        assert marker not in text


async def test_quiz_answers_stay_secret_until_the_end(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(
        synapse,
        school,
        quiz=True,
        question="Столица России?",
        answers=[{"text": "Москва", "correct": True}, {"text": "Казань"}],
    )
    s1, s2 = school.students[:2]
    status, started = await api(synapse, s1, "GET", f"/polls/{created['poll_id']}")
    assert status == 200, started
    moscow = started["answers"][0]["id"]
    kazan = started["answers"][1]["id"]
    await vote_like_element(synapse, s1, school.room_id, created["event_id"], [moscow])
    await vote_like_element(synapse, s2, school.room_id, created["event_id"], [kazan])
    await wait_votes(synapse, school.teacher, created["poll_id"], 2)

    # Every route a student has: nothing says which answer is right.
    room = q(school.room_id)
    routes: list[tuple[str, dict[str, str] | None]] = [
        (f"/_matrix/client/v3/rooms/{room}/messages", {"dir": "b", "limit": "100"}),
        (f"/_matrix/client/v3/rooms/{room}/context/{q(created['event_id'])}", None),
        (f"/_matrix/client/v3/rooms/{room}/event/{q(created['event_id'])}", None),
        (f"/_matrix/client/v3/rooms/{room}/state", None),
        ("/_matrix/client/v3/sync", None),
        (f"/_synapse/client/parta/v1/polls/{created['poll_id']}", None),
        (f"/_synapse/client/parta/v1/rooms/{room}/polls", None),
    ]
    for path, params in routes:
        status, body = await matrix(synapse, s1, "GET", path, params=params)
        assert status == 200, (path, body)
        _no_correct_anywhere(body, ["is_correct", "right_answer"])
    status, csv_body = await matrix(
        synapse, s1, "GET", f"/_synapse/client/parta/v1/polls/{created['poll_id']}/results.csv"
    )
    assert status == 200
    assert "correct" not in csv_body.decode("utf-8")
    # Scores are the teacher's, and only after the end.
    status, body = await api(synapse, school.teacher, "GET", f"/polls/{created['poll_id']}/scores")
    assert status == 409 and body["errcode"] == "M_BAD_STATE", body
    status, body = await api(synapse, s1, "GET", f"/polls/{created['poll_id']}/scores")
    assert status == 403, body

    status, ended = await api(synapse, school.teacher, "POST", f"/polls/{created['poll_id']}/end")
    assert status == 200, ended
    assert [a["correct"] for a in ended["answers"]] == [True, False]
    status, scores = await api(
        synapse, school.teacher, "GET", f"/polls/{created['poll_id']}/scores"
    )
    assert status == 200, scores
    assert scores["correct"] == [moscow]
    assert {s["user_id"]: s["score"] for s in scores["scores"]} == {s1.user_id: 1, s2.user_id: 0}
    assert scores["participants"] == 2
    assert scores["correct_count"] == 1
    mine = await results(synapse, s1, created["poll_id"])
    assert mine["my_score"] == 1
    status, body = await api(synapse, s1, "GET", f"/polls/{created['poll_id']}/scores")
    assert status == 403, body
    # The end event tells the room the right answer.
    timeline = await room_events(synapse, s1, school.room_id)
    end = next(
        e
        for e in timeline
        if e["type"] == events.POLL_END
        and e["content"]["m.relates_to"]["event_id"] == created["event_id"]
    )
    assert "Москва" in end["content"][events.TEXT_FALLBACK]


async def test_anonymous_poll_keeps_choices_out_of_the_room(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school, anonymous=True)
    s1, s2, s3 = school.students
    started = await results(synapse, s1, created["poll_id"])
    assert started["anonymous"] is True
    assert started["disclosed"] is False
    ids = [a["id"] for a in started["answers"]]
    # From Element: the room gets a response without the choice.
    vote_id = await vote_like_element(synapse, s1, school.room_id, created["event_id"], [ids[2]])
    # Through the API: nothing in the room at all.
    status, voted = await api(
        synapse, s2, "POST", f"/polls/{created['poll_id']}/votes", {"answers": [ids[2]]}
    )
    assert status == 200, voted
    assert voted["event_id"] is None
    status, voted = await api(
        synapse, s3, "POST", f"/polls/{created['poll_id']}/votes", {"answers": [ids[0]]}
    )
    assert status == 200, voted
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 3)
    assert [a["votes"] for a in body["answers"]] == [1, 0, 2]
    # Nobody gets names, not even the owner or an administrator.
    assert "by_person" not in body
    assert "by_person" not in await results(synapse, school.admin, created["poll_id"])
    timeline = await room_events(synapse, school.teacher, school.room_id)
    responses = [
        e
        for e in timeline
        if e["type"] == events.POLL_RESPONSE
        and e["content"]["m.relates_to"]["event_id"] == created["event_id"]
    ]
    assert len(responses) == 1
    assert responses[0]["sender"] == s1.user_id
    assert responses[0]["content"][events.POLL_RESPONSE]["answers"] == []
    # The client was given the ID of the stored, anonymised event.
    assert responses[0]["event_id"] == vote_id
    # The voter still sees their own choice through the API.
    assert (await results(synapse, s1, created["poll_id"]))["my_answers"] == [ids[2]]


async def test_csv_export_has_bom_and_names_for_the_owner(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school)
    ids = [a["id"] for a in (await results(synapse, school.teacher, created["poll_id"]))["answers"]]
    await vote_like_element(
        synapse, school.students[0], school.room_id, created["event_id"], [ids[1]]
    )
    await wait_votes(synapse, school.teacher, created["poll_id"], 1)
    status, raw = await matrix(
        synapse,
        school.teacher,
        "GET",
        f"/_synapse/client/parta/v1/polls/{created['poll_id']}/results.csv",
    )
    assert status == 200
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "answer_id,answer,votes"
    assert f"{ids[1]},Во вторник,1" in lines
    assert f"{school.students[0].user_id},Во вторник" in lines
    status, raw = await matrix(
        synapse,
        school.students[0],
        "GET",
        f"/_synapse/client/parta/v1/polls/{created['poll_id']}/results.csv",
    )
    assert status == 200
    assert school.students[0].user_id not in raw.decode("utf-8-sig")


async def test_malformed_poll_events_are_refused(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school)
    bad_start = {
        events.POLL_START: {"question": {events.TEXT_FALLBACK: "?"}, "answers": "да"},
        events.TEXT_FALLBACK: "?",
    }
    bad_response = {
        events.POLL_RESPONSE: {"answers": "all"},
        "m.relates_to": {"rel_type": "m.reference", "event_id": created["event_id"]},
    }
    bad_end = {events.POLL_END: {}, events.TEXT_FALLBACK: "конец"}
    duplicate_ids = {
        events.POLL_START: {
            "question": {events.TEXT_FALLBACK: "?"},
            "answers": [
                {"id": "a", events.TEXT_FALLBACK: "1"},
                {"id": "a", events.TEXT_FALLBACK: "2"},
            ],
        },
        events.TEXT_FALLBACK: "?",
    }
    forged_quiz = {
        **duplicate_ids,
        events.POLL_START: {
            "question": {events.TEXT_FALLBACK: "?"},
            "answers": [{"id": "a", events.TEXT_FALLBACK: "1"}],
        },
        "org.parta.poll": {"poll_id": "pol_forged", "quiz": True, "correct": ["a"]},
    }
    before = len(await room_events(synapse, school.teacher, school.room_id))
    for sender, event_type, content, field in [
        (school.teacher, events.POLL_START, bad_start, "answers"),
        (school.students[0], events.POLL_RESPONSE, bad_response, "answers"),
        (school.teacher, events.POLL_END, bad_end, "m.relates_to"),
        (school.teacher, events.POLL_START, duplicate_ids, "duplicate"),
        (school.teacher, events.POLL_START, forged_quiz, "correct"),
    ]:
        status, body = await send(synapse, sender, school.room_id, event_type, content)
        assert status == 400, (event_type, body)
        assert body["errcode"] == "M_BAD_JSON"
        assert " / " in body["error"]
        assert field in body["error"], body
    assert len(await room_events(synapse, school.teacher, school.room_id)) == before
    # A quiz cannot be made without the API (the server would not know the answers).
    unknown_quiz = {**forged_quiz, "org.parta.poll": {"poll_id": "pol_forged", "quiz": True}}
    status, body = await send(
        synapse, school.teacher, school.room_id, events.POLL_START, unknown_quiz
    )
    assert status == 400, body
    assert "POST /rooms/{room_id}/polls" in body["error"]


async def test_poll_api_refuses_bad_requests(synapse: RunningHomeserver, school: ClassRoom) -> None:
    room = q(school.room_id)
    for body, status_expected in [
        ({"question": "?", "answers": [{"text": "a"}]}, 400),
        ({"question": "?", "answers": [{"text": "a"}, {"text": "b"}], "quiz": True}, 400),
        ({"question": "?", "answers": [{"text": "a", "correct": True}, {"text": "b"}]}, 400),
        ({"question": "?", "answers": [{"text": "a"}, {"text": "b"}], "max_selections": 3}, 400),
    ]:
        status, answer = await api(synapse, school.teacher, "POST", f"/rooms/{room}/polls", body)
        assert status == status_expected, answer
        assert " / " in answer["error"]
    status, answer = await api(
        synapse,
        school.students[0],
        "POST",
        f"/rooms/{room}/polls",
        {"question": "?", "answers": [{"text": "a"}, {"text": "b"}]},
    )
    assert status == 403, answer
    created = await start_poll(synapse, school)
    status, answer = await api(
        synapse,
        school.students[0],
        "POST",
        f"/polls/{created['poll_id']}/votes",
        {"answers": ["zz"]},
    )
    assert status == 400, answer
    status, answer = await api(synapse, school.students[0], "GET", "/polls/pol_nothing")
    assert status == 404, answer
    outsider = synapse.register("outsider")
    status, answer = await api(synapse, outsider, "GET", f"/polls/{created['poll_id']}")
    assert status == 403, answer


# -- the stable m.poll.* types (Matrix spec v1.7), held to the same rules -------------


def _stable_start(question: str, answers: list[tuple[str, str]], **poll: Any) -> dict[str, Any]:
    return {
        "m.poll": {
            "question": {"m.text": [{"body": question}]},
            "kind": "m.disclosed",
            "max_selections": 1,
            "answers": [{"m.id": i, "m.text": [{"body": text}]} for i, text in answers],
            **poll,
        },
        "m.text": [{"body": question}],
    }


async def send_stable(
    synapse: RunningHomeserver, user: User, room_id: str, event_type: str, content: Any
) -> str:
    """What a client on the stable types sends, through matrix-nio."""
    async with synapse.client(user) as client:
        resp = await client.room_send(room_id, event_type, content)
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)


async def test_stable_poll_is_indexed_counted_and_ended(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    content = _stable_start("Куда едем?", [("park", "В парк"), ("zoo", "В зоопарк")])
    # Students may not start one, as with the unstable type.
    status, refused = await send(
        synapse, school.students[0], school.room_id, events.STABLE_POLL_START, content
    )
    assert status == 403, refused
    assert "Only teachers and administrators may start polls" in refused["error"]
    start_id = await send_stable(
        synapse, school.teacher, school.room_id, events.STABLE_POLL_START, content
    )
    s1, s2, _ = school.students
    for student, choice in ((s1, "zoo"), (s2, "park")):
        await send_stable(
            synapse,
            student,
            school.room_id,
            events.STABLE_POLL_RESPONSE,
            {
                "m.selections": [choice],
                "m.relates_to": {"rel_type": "m.reference", "event_id": start_id},
            },
        )
    body = await wait_votes(synapse, school.teacher, q(start_id), 2)
    assert body["question"] == "Куда едем?"
    assert {a["id"]: a["votes"] for a in body["answers"]} == {"park": 1, "zoo": 1}
    assert body["disclosed"] is True
    # Only staff end someone else's poll; the teacher's stable end ends it.
    end = {
        "m.relates_to": {"rel_type": "m.reference", "event_id": start_id},
        "m.text": [{"body": "Опрос завершён"}],
    }
    status, refused = await send(synapse, s1, school.room_id, events.STABLE_POLL_END, end)
    assert status == 403, refused
    await send_stable(synapse, school.teacher, school.room_id, events.STABLE_POLL_END, end)
    # Indexing runs after the event is stored: poll with a deadline.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    loop_results = await results(synapse, school.teacher, q(start_id))
    while not loop_results["ended"] and loop.time() < deadline:
        await asyncio.sleep(0.1)
        loop_results = await results(synapse, school.teacher, q(start_id))
    assert loop_results["ended"] is True


async def test_malformed_stable_poll_events_are_refused(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school)
    relates = {"rel_type": "m.reference", "event_id": created["event_id"]}
    no_answers = _stable_start("?", [])
    duplicate_ids = _stable_start("?", [("a", "1"), ("a", "2")])
    for sender, event_type, content, field in [
        (school.teacher, events.STABLE_POLL_START, no_answers, "answers"),
        (school.teacher, events.STABLE_POLL_START, duplicate_ids, "duplicate"),
        (
            school.students[0],
            events.STABLE_POLL_RESPONSE,
            {"m.selections": "all", "m.relates_to": relates},
            "m.selections",
        ),
        (school.teacher, events.STABLE_POLL_END, {"m.text": [{"body": "конец"}]}, "m.relates_to"),
    ]:
        status, body = await send(synapse, sender, school.room_id, event_type, content)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON"), (event_type, body)
        assert field in body["error"], body


async def test_stable_vote_on_an_anonymous_poll_keeps_the_choice_out_of_the_room(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school, anonymous=True)
    s1 = school.students[0]
    ids = [a["id"] for a in (await results(synapse, s1, created["poll_id"]))["answers"]]
    vote_id = await send_stable(
        synapse,
        s1,
        school.room_id,
        events.STABLE_POLL_RESPONSE,
        {
            "m.selections": [ids[1]],
            "m.relates_to": {"rel_type": "m.reference", "event_id": created["event_id"]},
        },
    )
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 1)
    assert [a["votes"] for a in body["answers"]] == [0, 1, 0]
    assert "by_person" not in body
    stored = event_by_id(await room_events(synapse, school.teacher, school.room_id), vote_id)
    assert stored["type"] == events.STABLE_POLL_RESPONSE
    assert stored["content"]["m.selections"] == []
    assert ids[1] not in json.dumps(stored["content"])
    assert stored["content"]["org.parta.ballot"].startswith("blt_")
    assert (await results(synapse, s1, created["poll_id"]))["my_answers"] == [ids[1]]


# -- voting by reply: clients without polls (nheko 0.11) ------------------------------


def poll_notice(timeline: list[Any], start_id: str) -> dict[str, Any]:
    """The ``m.notice`` that repeats an API poll as text (it refers to the start event)."""
    for event in timeline:
        content = event["content"]
        if (
            event["type"] == "m.room.message"
            and content.get("msgtype") == "m.notice"
            and content.get("m.relates_to", {}).get("event_id") == start_id
        ):
            found: dict[str, Any] = event
            return found
    raise AssertionError(f"no notice for {start_id}")


async def reply(synapse: RunningHomeserver, user: User, room_id: str, to: str, body: str) -> Any:
    """A plain text reply, as a client without polls sends it (reply fallback included)."""
    async with synapse.client(user) as client:
        return await client.room_send(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": f"> <@teacher:x> Опрос\n\n{body}",
                "m.relates_to": {"m.in_reply_to": {"event_id": to}},
            },
        )


async def test_a_reply_with_a_number_is_a_vote_and_a_later_reply_replaces_it(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school)
    s1, s2, s3 = school.students
    timeline = await room_events(synapse, school.teacher, school.room_id)
    notice = poll_notice(timeline, created["event_id"])
    assert "ответьте на это сообщение номером ответа" in notice["content"]["body"]
    ids = [a["id"] for a in (await results(synapse, s1, created["poll_id"]))["answers"]]

    sent = await reply(synapse, s1, school.room_id, notice["event_id"], "2")
    assert isinstance(sent, RoomSendResponse), sent
    # Chat in reply to the poll is not a vote; nor is a number with no such answer.
    assert isinstance(
        await reply(synapse, s2, school.room_id, notice["event_id"], "спасибо"), RoomSendResponse
    )
    assert isinstance(
        await reply(synapse, s2, school.room_id, notice["event_id"], "7"), RoomSendResponse
    )
    # A reply to the poll event itself counts too.
    assert isinstance(
        await reply(synapse, s3, school.room_id, created["event_id"], "1"), RoomSendResponse
    )
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 2)
    assert [a["votes"] for a in body["answers"]] == [1, 1, 0]
    assert (await results(synapse, s1, created["poll_id"]))["my_answers"] == [ids[1]]
    assert (await results(synapse, s2, created["poll_id"]))["my_answers"] == []

    # A later reply replaces the earlier vote (MSC3381: the latest response counts).
    assert isinstance(
        await reply(synapse, s1, school.room_id, notice["event_id"], "3"), RoomSendResponse
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (await results(synapse, s1, created["poll_id"]))["my_answers"] != [ids[2]]:
        assert loop.time() < deadline, "the second reply did not replace the vote"
        await asyncio.sleep(0.1)
    body = await results(synapse, school.teacher, created["poll_id"])
    assert [a["votes"] for a in body["answers"]] == [1, 0, 1]
    assert body["voters"] == 2
    # The reply counted once: one response row per reply event.
    people = {p["user_id"]: p["answers"] for p in body["by_person"]}
    assert people == {s1.user_id: [ids[2]], s3.user_id: [ids[0]]}


async def test_a_reply_chooses_several_answers_up_to_max_selections(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school, max_selections=2)
    s1 = school.students[0]
    timeline = await room_events(synapse, school.teacher, school.room_id)
    notice = poll_notice(timeline, created["event_id"])
    assert "номерами ответов через запятую" in notice["content"]["body"]
    ids = [a["id"] for a in (await results(synapse, s1, created["poll_id"]))["answers"]]
    sent = await reply(synapse, s1, school.room_id, notice["event_id"], "1, 3, 2")
    assert isinstance(sent, RoomSendResponse), sent
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 1)
    # The same counting as a native response: the first max_selections answers count.
    assert [a["votes"] for a in body["answers"]] == [1, 0, 1]
    assert (await results(synapse, s1, created["poll_id"]))["my_answers"] == [ids[0], ids[2]]


async def test_a_reply_to_an_ended_poll_is_refused_and_a_non_member_cannot_vote(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school)
    s1 = school.students[0]
    timeline = await room_events(synapse, school.teacher, school.room_id)
    notice = poll_notice(timeline, created["event_id"])
    outsider = synapse.register("outsider")
    refused = await reply(synapse, outsider, school.room_id, notice["event_id"], "1")
    assert isinstance(refused, RoomSendError)
    assert refused.status_code == "M_FORBIDDEN"

    status, ended = await api(synapse, school.teacher, "POST", f"/polls/{created['poll_id']}/end")
    assert status == 200, ended
    refused = await reply(synapse, s1, school.room_id, notice["event_id"], "2")
    assert isinstance(refused, RoomSendError)
    assert "Опрос уже завершён" in refused.message
    # Chat in reply to an ended poll is still chat.
    sent = await reply(synapse, s1, school.room_id, notice["event_id"], "жаль")
    assert isinstance(sent, RoomSendResponse), sent
    body = await results(synapse, school.teacher, created["poll_id"])
    assert body["voters"] == 0


async def test_a_reply_to_an_anonymous_poll_shows_no_number_in_the_room(
    synapse: RunningHomeserver, school: ClassRoom
) -> None:
    created = await start_poll(synapse, school, anonymous=True)
    s1, s2 = school.students[:2]
    timeline = await room_events(synapse, school.teacher, school.room_id)
    notice = poll_notice(timeline, created["event_id"])
    assert "номер в вашем ответе никто не увидит" in notice["content"]["body"]
    ids = [a["id"] for a in (await results(synapse, s1, created["poll_id"]))["answers"]]
    sent = await reply(synapse, s1, school.room_id, notice["event_id"], "3")
    assert isinstance(sent, RoomSendResponse), sent
    sent2 = await reply(synapse, s2, school.room_id, notice["event_id"], "3")
    assert isinstance(sent2, RoomSendResponse), sent2
    body = await wait_votes(synapse, school.teacher, created["poll_id"], 2)
    assert "by_person" not in body
    assert (await results(synapse, s1, created["poll_id"]))["my_answers"] == [ids[2]]
    stored = event_by_id(await room_events(synapse, school.teacher, school.room_id), sent.event_id)
    assert stored["content"]["body"] == "Голос принят"
    assert "3" not in json.dumps(stored["content"], ensure_ascii=False).replace(
        notice["event_id"], ""
    ).replace(stored["content"]["org.parta.ballot"], "")
    assert stored["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == notice["event_id"]
