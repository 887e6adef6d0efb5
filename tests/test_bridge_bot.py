"""The school bot against a real Synapse with its application service registered.

The bot runs as its own process (``python -m bridge``); people talk to it with
matrix-nio clients; what it does goes through the module as the person who asked.
"""

import asyncio
import datetime
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, RoomCreateResponse, RoomSendResponse

from bridge.api import ModuleClient, carrying_out
from bridge.config import load
from bridge.db import create_database
from bridge.schedule import Scheduler, txn_id_for
from parta_common import events
from synapse_module.homework.events import homework_content
from synapse_module.roster import texts as msg
from tests.bridge_env import BridgeEnv, bridge_env
from tests.harness import User
from tests.roster_helpers import School, api, build_school, wait_for_rooms

DEADLINE = 60.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    with bridge_env(tmp_path_factory.mktemp("bridge")) as running:
        yield running


@pytest.fixture(scope="module")
def school(env: BridgeEnv) -> School:
    operator = env.hs.register("operator", admin=True)
    return build_school(env.hs, operator)


def messages(env: BridgeEnv, user: User, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest messages of a room, oldest first."""
    path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/messages?dir=b&limit={limit}"
    chunk = env.hs.request("GET", path, token=user.access_token)["chunk"]
    return [e for e in reversed(chunk) if e["type"] == "m.room.message"]


async def poll(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def open_dm(env: BridgeEnv, client: AsyncClient, user: User) -> str:
    resp = await client.room_create(invite=[env.bot_user_id], is_direct=True)
    assert isinstance(resp, RoomCreateResponse), resp
    room_id: str = resp.room_id

    def bot_joined() -> bool:
        path = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/joined_members"
        joined = env.hs.request("GET", path, token=user.access_token)["joined"]
        return env.bot_user_id in joined

    await poll(bot_joined, "the bot to join the DM")
    return room_id


async def ask(env: BridgeEnv, user: User, text: str, room_id: str | None = None) -> str:
    """Send ``text`` to the bot (in a DM) and return its next reply."""
    async with env.hs.client(user) as client:
        room_id = room_id or await open_dm(env, client, user)
        before = {e["event_id"] for e in messages(env, user, room_id)}
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert isinstance(sent, RoomSendResponse), sent

        def reply() -> str | None:
            for e in messages(env, user, room_id):
                if e["event_id"] not in before and e["sender"] == env.bot_user_id:
                    body: str = e["content"]["body"]
                    return body
            return None

        answer: str = await poll(reply, f"the bot's answer to {text!r}")
        return answer


async def test_the_bot_token_cannot_become_a_person(env: BridgeEnv) -> None:
    """The registration names only the bot: Synapse refuses its token with ``?user_id=``."""
    alice = env.hs.register("alice")
    headers = {"Authorization": f"Bearer {env.bot.registration.as_token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        params = {"user_id": alice.user_id}
        for url in (f"{env.hs.api_url}/me", f"{env.hs.base_url}/_matrix/client/v3/account/whoami"):
            async with s.get(url, params=params) as r:
                assert r.status == 403, await r.text()
                assert (await r.json())["errcode"] in ("M_FORBIDDEN", "M_EXCLUSIVE")
        # As itself it is the bot, nobody else.
        async with s.get(f"{env.hs.base_url}/_matrix/client/v3/account/whoami") as r:
            assert (await r.json())["user_id"] == env.bot_user_id
    async with aiohttp.ClientSession(headers=headers) as s:
        body = {"room_id": "!r:x", "body": "x", "schedule_id": "x"}
        async with s.post(f"{env.hs.api_url}/scheduled_posts", json=body, params=params) as r:
            assert r.status == 403, await r.text()


async def _as_bot(
    env: BridgeEnv,
    method: str,
    path: str,
    person: str | None,
    command: str | None,
    body: Any = None,
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {env.bot.registration.as_token}"}
    if person is not None:
        headers["X-Parta-On-Behalf-Of"] = person
    if command is not None:
        headers["X-Parta-Command"] = command
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.request(method, f"{env.hs.api_url}{path}", json=body) as r,
    ):
        data: dict[str, Any] = await r.json()
        return r.status, data


def _refused(answer: tuple[int, dict[str, Any]], english: str) -> None:
    status, data = answer
    assert status == 403, data
    assert data["errcode"] == "M_FORBIDDEN"
    ru, en = data["error"].split(" / ")
    assert english in en, data
    assert any("а" <= c <= "я" for c in ru.lower()), data


async def test_the_bot_acts_for_a_person_only_on_their_recent_command(
    env: BridgeEnv, school: School
) -> None:
    student = school.students[0]
    async with env.hs.client(student) as client:
        dm = await open_dm(env, client, student)
        sent = await client.room_send(dm, "m.room.message", {"msgtype": "m.text", "body": "?"})
        assert isinstance(sent, RoomSendResponse), sent
        command = sent.event_id
    async with env.hs.client(school.teacher) as client:
        # A room the bot is not in.
        other = await client.room_create(name="без бота")
        assert isinstance(other, RoomCreateResponse), other
        elsewhere = await client.room_send(
            other.room_id, "m.room.message", {"msgtype": "m.text", "body": "?"}
        )
        assert isinstance(elsewhere, RoomSendResponse), elsewhere
    me = student.user_id
    # No command, an unknown one, someone else's, one outside the bot's rooms: refused.
    _refused(await _as_bot(env, "GET", "/me", me, None), "both the person and their command")
    _refused(await _as_bot(env, "GET", "/me", me, "$nothing:x"), "is not on this server")
    _refused(await _as_bot(env, "GET", "/me", school.admin.user_id, command), "was not sent by")
    _refused(
        await _as_bot(env, "GET", "/me", school.teacher.user_id, elsewhere.event_id),
        "not sent in a room the bot",
    )
    # Only the school bot may name a person, even with the person's own command.
    async with (
        aiohttp.ClientSession(
            headers={
                "Authorization": f"Bearer {school.teacher.access_token}",
                "X-Parta-On-Behalf-Of": me,
                "X-Parta-Command": command,
            }
        ) as s,
        s.get(f"{env.hs.api_url}/me") as r,
    ):
        _refused((r.status, await r.json()), "Only the school bot")
    # With the student's own command: the student, with a student's rights only.
    status, data = await _as_bot(env, "GET", "/me", me, command)
    assert (status, data["user_id"]) == (200, me)
    school_id = school.school_id
    status, data = await _as_bot(
        env,
        "POST",
        f"/schools/{school_id}/classes",
        me,
        command,
        {"grade": 9, "letter": "Я", "year": "2026/27"},
    )
    assert status == 403, data
    assert data["error"] == msg.NOT_SCHOOL_ADMIN.format()


async def test_bot_answers_help_in_russian(env: BridgeEnv) -> None:
    user = env.hs.register("newbie")
    answer = await ask(env, user, "помощь")
    assert "Я школьный бот Parta" in answer
    assert "пригласить" in answer
    assert "every command above also works in English" not in answer
    answer = await ask(env, user, "help")  # an English command: the answer in English
    assert "I am Parta's school bot" in answer
    assert "invite teacher|student|parent|administrator" in answer
    assert "Я школьный бот" not in answer


async def test_unknown_text_and_bad_arguments_are_explained(env: BridgeEnv) -> None:
    user = env.hs.register("confused")
    assert "Не понял" in await ask(env, user, "привет, как дела")
    assert "Укажите класс" in await ask(env, user, "создать класс")
    assert "не состоите ни в одной школе" in await ask(env, user, "мои школы")


async def test_module_refusal_is_relayed_in_plain_words(env: BridgeEnv, school: School) -> None:
    answer = await ask(env, school.teacher, "пригласить администратора")
    assert answer == "Нельзя: " + msg.TEACHER_OWN_CLASSES.ru
    # The module sent the text's id: the same refusal reads in English for an English command.
    answer = await ask(env, school.teacher, "invite administrator")
    assert answer == "Not allowed: " + msg.TEACHER_OWN_CLASSES.en


async def test_teacher_invites_a_student_who_redeems_the_code(
    env: BridgeEnv, school: School
) -> None:
    answer = await ask(env, school.teacher, "пригласить ученика в 7А")
    assert "Код: " in answer, answer
    code = answer.split("Код: ", 1)[1].split("\n", 1)[0].strip()
    newcomer = env.hs.register("newcomer")
    reply = await ask(env, newcomer, code)
    assert reply.startswith("Готово"), reply
    me = api(env.hs, "GET", "/me", newcomer)
    [joined] = me["schools"]
    assert joined["school_id"] == school.school_id
    assert joined["roles"] == ["student"]
    assert joined["classes"] == [school.class_a["class_id"]]
    # The same one-use code again: the module says why not.
    other = env.hs.register("latecomer")
    refusal = await ask(env, other, f"код {code}")
    assert refusal.startswith(("Нельзя", "Не найдено", "Не получилось")), refusal


async def test_my_schools_and_members(env: BridgeEnv, school: School) -> None:
    mine = await ask(env, school.teacher, "мои школы")
    assert "Школа № 1" in mine
    assert "учитель" in mine
    assert "7А" in mine
    members = await ask(env, school.admin, "участники 7А")
    assert school.teacher.user_id in members
    assert all(s.user_id in members for s in school.students)
    assert school.other_student.user_id not in members
    # A teacher may not create classes: the module refuses, the bot explains.
    refused = await ask(env, school.teacher, "создать класс 5А")
    assert refused.startswith("Нельзя: "), refused


async def test_create_class_and_link_parent(env: BridgeEnv, school: School) -> None:
    answer = await ask(env, school.admin, "создать класс 9В")
    assert "Класс 9В создан" in answer, answer
    classes = api(env.hs, "GET", f"/schools/{school.school_id}/classes", school.admin)["classes"]
    assert any(c["grade"] == 9 and c["letter"] == "В" for c in classes)
    answer = await ask(
        env, school.admin, f"связать родителя {school.parent.user_id} {school.students[1].user_id}"
    )
    assert "теперь родитель" in answer, answer
    me = api(env.hs, "GET", "/me", school.parent)
    assert set(me["schools"][0]["children"]) == {
        school.students[0].user_id,
        school.students[1].user_id,
    }


async def test_announcement_goes_out_as_the_administrator(env: BridgeEnv, school: School) -> None:
    answer = await ask(env, school.admin, "объявление Завтра линейка в 9:00")
    assert "Отправлено" in answer, answer
    room = school.rooms["announcements"]

    def posted() -> list[dict[str, Any]]:
        return [
            e
            for e in messages(env, school.admin, room)
            if e["content"].get("body") == "Завтра линейка в 9:00"
        ]

    [event] = await poll(posted, "the announcement")
    assert event["sender"] == school.admin.user_id
    # The homeroom teacher into the class's parents chat, by the class's name.
    answer = await ask(env, school.teacher, "объявление родители 7А Собрание в четверг")
    assert "Отправлено в чат родителей 7А" in answer, answer
    parents_room = school.class_a["rooms"]["parents_chat"]
    [event] = [
        e
        for e in messages(env, school.teacher, parents_room)
        if e["content"].get("body") == "Собрание в четверг"
    ]
    assert event["sender"] == school.teacher.user_id
    # A parent is not allowed to post into the school's announcements: explained.
    answer = await ask(env, school.teacher, "объявление 7Б Чужой класс")
    assert answer.startswith("Не отправлено в чат класса 7Б"), answer


async def test_lesson_and_attendance_through_the_bot(env: BridgeEnv, school: School) -> None:
    answer = await ask(env, school.teacher, "урок 7А Дроби")
    assert answer.startswith("Урок «Дроби» начат в чате класса 7А"), answer
    chat = school.class_a["rooms"]["class_chat"]
    [lesson] = api(env.hs, "GET", f"/rooms/{urllib.parse.quote(chat)}/lessons", school.teacher)[
        "lessons"
    ]
    # Written in a DM, far from the class chat: the answer carries the lesson page's link.
    assert answer.endswith(lesson["url"]), answer
    assert lesson["title"] == "Дроби"
    assert lesson["created_by"] == school.teacher.user_id
    report = await ask(env, school.teacher, "посещаемость 7А")
    assert "Урок «Дроби»" in report
    assert "были 0" in report
    assert all(s.localpart in report for s in school.students)
    # A student may not start one: the module says why, the bot passes it on.
    later = await ask(env, school.teacher, "урок 7Б Чужой урок")
    assert later.startswith("Нельзя: "), later


async def test_poll_results_and_broadcast_through_the_bot(env: BridgeEnv, school: School) -> None:
    answer = await ask(env, school.teacher, "опрос 7А Едем на экскурсию? | Да | Нет | Не знаю")
    assert answer.startswith("Опрос «Едем на экскурсию?» опубликован"), answer
    chat = school.class_a["rooms"]["class_chat"]
    [poll] = api(env.hs, "GET", f"/rooms/{urllib.parse.quote(chat)}/polls", school.teacher)["polls"]
    details = api(env.hs, "GET", f"/polls/{poll['poll_id']}", school.teacher)
    first = details["answers"][0]["id"]
    api(env.hs, "POST", f"/polls/{poll['poll_id']}/votes", school.students[0], {"answers": [first]})
    results = await ask(env, school.teacher, "результаты 7А")
    assert "проголосовали 1" in results, results
    assert "• Да: 1" in results
    quiz = await ask(env, school.teacher, "викторина 7А 2+2? | 3 | *4")
    assert quiz.startswith("Викторина «2+2?» опубликован"), quiz
    broadcast = await ask(env, school.admin, "трансляция Последний звонок")
    assert broadcast.startswith(("Трансляция «Последний звонок» создана", "Нельзя", "Не ")), (
        broadcast
    )


async def test_scheduled_announcement_is_sent_once_across_restarts(
    env: BridgeEnv, school: School
) -> None:
    room = school.rooms["announcements"]
    config = load(env.bot.config_path)
    admin = school.admin
    async with env.hs.client(admin) as client:
        dm = await open_dm(env, client, admin)
        env.bot.stop()
        # The administrator's command the posts are made on (the bot answers it later).
        sent = await client.room_send(
            dm, "m.room.message", {"msgtype": "m.text", "body": "запланировано"}
        )
        assert isinstance(sent, RoomSendResponse), sent
    db = create_database(config.database)
    await db.start()
    try:
        async with aiohttp.ClientSession() as session:
            module = ModuleClient(session, env.hs.base_url, env.bot.registration.as_token)
            scheduler = Scheduler(db, config, module)
            now = datetime.datetime.now(datetime.UTC)
            with carrying_out(sent.event_id):
                soon = await scheduler.schedule(
                    room,
                    "Запланировано: уроки сокращены",
                    now + datetime.timedelta(seconds=2),
                    admin.user_id,
                )
                # A message the bot had claimed and had the module send just before it
                # crashed, without recording it: the retry must not repeat it.
                crashed = await scheduler.schedule(
                    room,
                    "Запланировано: до краша",
                    now - datetime.timedelta(minutes=1),
                    admin.user_id,
                )
            assert crashed.post_id is not None
            # The bot sends as itself: no command, no person named.
            first_event = await module.send_post(crashed.post_id)
        await db.execute(
            "UPDATE scheduled_message SET state='claimed', claimed_at=0, attempts=1 WHERE id=$1",
            crashed.id,
        )
    finally:
        await db.stop()
    event = env.hs.request(
        "GET",
        f"/_matrix/client/v3/rooms/{urllib.parse.quote(room)}/event/"
        f"{urllib.parse.quote(first_event)}",
        token=admin.access_token,
    )
    # Posted as its author, carrying its schedule id.
    assert event["sender"] == admin.user_id
    assert event["content"][events.SCHEDULE_ID] == txn_id_for(crashed.id)
    # The homeserver restarts too before the retry: its application-service transaction
    # cache (in memory) forgets the txn id, so only the marker in the room prevents a copy.
    env.hs.restart()
    env.bot.start()

    def count(body: str) -> int:
        return sum(
            1 for e in messages(env, school.admin, room, 100) if e["content"].get("body") == body
        )

    await poll(lambda: count(soon.body) == 1, "the scheduled announcement")

    async def crashed_sent() -> bool:
        return await _state(env, crashed.id) == "sent"

    await poll(crashed_sent, "the crashed message to be finished")
    # The bot recorded the event the module had sent before the crash.
    db = create_database(config.database)
    await db.start()
    try:
        recorded = await db.fetchval(
            "SELECT event_id FROM scheduled_message WHERE id=$1", crashed.id
        )
    finally:
        await db.stop()
    assert recorded == first_event
    env.bot.restart()
    # After another restart, a fresh message goes out; the earlier ones stay single.
    answer = await ask(env, school.admin, "объявление После перезапуска")
    assert "Отправлено" in answer
    await poll(lambda: count("После перезапуска") == 1, "the message after the restart")
    assert count(soon.body) == 1
    assert count(crashed.body) == 1


async def _state(env: BridgeEnv, message_id: str) -> str | None:
    db = create_database(load(env.bot.config_path).database)
    await db.start()
    try:
        value = await db.fetchval("SELECT state FROM scheduled_message WHERE id=$1", message_id)
        return str(value) if value is not None else None
    finally:
        await db.stop()


def answers_to(env: BridgeEnv, user: User, room_id: str, event_id: str) -> list[dict[str, Any]]:
    """The bot's messages that answer ``event_id`` (a reply to it, and Parta's own field)."""
    found = []
    for e in messages(env, user, room_id, 100):
        content = e["content"]
        if e["sender"] == env.bot_user_id and content.get("org.parta.answers") == event_id:
            assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
            found.append(e)
    return found


async def caught_up(env: BridgeEnv, times: int) -> None:
    """Wait until the bot's log says it read its rooms' history after its ``times``-th start."""
    await poll(
        lambda: env.bot.log_path.read_text(errors="replace").count("caught up with") >= times,
        "the bot to catch up after its start",
    )


async def test_a_dm_opened_with_its_first_message_is_answered_exactly_once(
    env: BridgeEnv,
) -> None:
    """As Element does it: createRoom inviting the bot, the message at once, before the bot
    joins. The bot answers it once; a restart does not answer it again; a command sent
    while the bot was down is answered after it starts."""
    user = env.hs.register("element")
    starts = env.bot.log_path.read_text(errors="replace").count("caught up with")
    async with env.hs.client(user) as client:
        created = await client.room_create(invite=[env.bot_user_id], is_direct=True)
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "помощь"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        first = sent.event_id
        [answer] = await poll(
            lambda: answers_to(env, user, room_id, first), "the answer to the first message"
        )
        assert "Я школьный бот Parta" in answer["content"]["body"]

        # A restart reads the room again: the first message stays answered once.
        env.bot.restart()
        await caught_up(env, starts + 1)
        after = await ask(env, user, "мои школы", room_id)
        assert "школ" in after
        assert len(answers_to(env, user, room_id, first)) == 1

        # A command sent while the bot is down is answered once it is back.
        env.bot.stop()
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "help"}
        )
        assert isinstance(sent, RoomSendResponse), sent
        while_down = sent.event_id
        env.bot.start()
        [late] = await poll(
            lambda: answers_to(env, user, room_id, while_down), "the answer after the start"
        )
        assert "I am Parta's school bot" in late["content"]["body"]
        await caught_up(env, starts + 2)
        await ask(env, user, "мои школы", room_id)
        assert len(answers_to(env, user, room_id, while_down)) == 1
        assert len(answers_to(env, user, room_id, first)) == 1


async def test_homework_listed_per_class_and_per_child(env: BridgeEnv, school: School) -> None:
    """«дз» alone: the homework the module lists for the person (GET /me/homework)."""
    wait_for_rooms(env.hs, school.teacher)
    chat = school.class_a["rooms"]["class_chat"]
    content = homework_content("Алгебра", "№ 125, 126", "2026-12-10", school.class_a["class_id"])
    async with env.hs.client(school.teacher) as client:
        sent = await client.room_send(chat, "m.room.message", content)
        assert isinstance(sent, RoomSendResponse), sent
    student = school.students[0]
    await poll(
        lambda: api(env.hs, "GET", "/me/homework", student)["homework"], "the homework indexed"
    )
    answer = await ask(env, student, "дз")
    assert answer.startswith("Домашние задания") and "к 2026-12-10 — Алгебра: № 125, 126" in answer
    answer = await ask(env, school.parent, "дз")
    assert f"Ребёнок {student.user_id}:" in answer and "Алгебра: № 125, 126" in answer
    assert await ask(env, school.other_student, "homework") == "No homework."
