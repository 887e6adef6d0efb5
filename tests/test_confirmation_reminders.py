"""The bot's single reminder to those who have not confirmed reading (issue 13, item 1).

A real Synapse with the module and the bot as a process; parents confirm with matrix-nio
clients; the module's clock is a file the test sets (``PARTA_TEST_CLOCK_FILE``): "a day
later" without sleeping. The reminder is a direct message from @parta-bot, once per
person (per child for a request per child), and a restart of the bot and of the
homeserver sends none again.
"""

import asyncio
import datetime
import functools
import logging
import time
import urllib.parse
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from mautrix.appservice import AppServiceAPI, IntentAPI
from mautrix.types import UserID
from mautrix.util.logging import TraceLogger
from nio import RoomSendResponse

from bridge.app import MemoryASStateStore
from bridge.reminders import REMINDER_ID, ConfirmationReminders, message_link
from devtools.homeserver import HttpError
from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.confirmations import rules
from synapse_module.confirmations.callbacks import ENGLISH_PROMPTS
from synapse_module.confirmations.events import ask_content
from synapse_module.homework.events import homework_content
from tests.bridge_env import BridgeEnv, bridge_env
from tests.harness import User
from tests.roster_helpers import School, api, build_school, wait_for_rooms
from tests.test_bridge_bot import ask as ask_bot

DEADLINE = 60.0
HOUR = 3600.0


@pytest.mark.parametrize(
    ("asked", "hours", "now", "state"),
    [
        (0, None, 10**12, "never"),
        (0, 24, 24 * 3_600_000 - 1, "wait"),
        (0, 24, 24 * 3_600_000, "due"),
        (1000, 1, 3_601_000, "due"),
    ],
)
def test_reminder_state(asked: int, hours: int | None, now: int, state: str) -> None:
    assert rules.reminder_state(asked, hours, now) == state


def test_whom_to_remind_and_in_which_language() -> None:
    expected = {"@a:x": ["7a"], "@b:x": ["7a"], "@p:x/@c:x": ["7a"], "@p:x/@d:x": ["7b"]}
    confirmed = {"@a:x": 1, "@p:x/@c:x": 2}
    assert rules.to_remind(expected, confirmed, {"@b:x"}) == [("@p:x", "@d:x")]
    assert rules.to_remind(expected, {}, set())[0] == ("@a:x", "")
    assert rules.unwho(rules.who("@p:x", "@c:x")) == ("@p:x", "@c:x")
    english = ask_content("Trip on Friday", "en")["body"]
    assert rules.request_language(english, ENGLISH_PROMPTS) == "en"
    assert rules.request_language(ask_content("Экскурсия")["body"], ENGLISH_PROMPTS) == "ru"
    assert rules.request_language(None, ENGLISH_PROMPTS) == "ru"


class ModuleClock:
    """The module's time: a file of Unix seconds the test rewrites."""

    def __init__(self, path: Path):
        self.path = path

    def set(self, seconds: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(seconds), encoding="utf-8")
        tmp.replace(self.path)


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> ModuleClock:
    made = ModuleClock(tmp_path_factory.mktemp("clock") / "now")
    made.set(time.time())
    return made


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, clock: ModuleClock) -> Iterator[BridgeEnv]:
    # Set for the whole module: a restarted Synapse reads the test's clock too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
        with bridge_env(tmp_path_factory.mktemp("reminders")) as running:
            yield running


@pytest.fixture(scope="module")
def school(env: BridgeEnv) -> School:
    return build_school(env.hs, env.hs.register("operator", admin=True))


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


async def poll(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def reminder_rows(env: BridgeEnv, request_id: str) -> list[dict[str, Any]]:
    """What the bot keeps about its reminders of a request."""
    async with env.bot_side() as (_, db, _module):
        rows = await db.fetch(
            "SELECT user_id, child_id, state FROM confirm_reminder WHERE request_id=$1"
            " ORDER BY user_id, child_id",
            request_id,
        )
        return [dict(r) for r in rows]


async def direct_room(env: BridgeEnv, user: User) -> str | None:
    async with env.bot_side() as (_, db, _module):
        row = await db.fetchrow("SELECT room_id FROM direct_room WHERE user_id=$1", user.user_id)
        return str(row["room_id"]) if row else None


def reminders_in(env: BridgeEnv, user: User, room_id: str) -> list[dict[str, Any]]:
    """The bot's reminders in its direct chat with ``user`` (who joins it first)."""
    env.hs.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {}, user.access_token)
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages?dir=b&limit=50"
    chunk = env.hs.request("GET", path, token=user.access_token)["chunk"]
    return [
        e["content"]
        for e in reversed(chunk)
        if e["sender"] == env.bot_user_id and REMINDER_ID in e.get("content", {})
    ]


async def ask(env: BridgeEnv, teacher: User, room_id: str, content: dict[str, Any]) -> str:
    async with env.hs.client(teacher) as client:
        resp = await client.room_send(room_id, "m.room.message", content)
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)


async def due_of(env: BridgeEnv, request_id: str) -> list[dict[str, Any]]:
    async with env.bot_side() as (_, _db, module):
        return [d for d in await module.confirmations_due() if d["event_id"] == request_id]


async def test_the_one_who_has_not_confirmed_is_reminded_once_across_restarts(
    env: BridgeEnv, school: School, clock: ModuleClock
) -> None:
    hs = env.hs
    sid = school.school_id
    # Three parents in 7А's parents chat, one child each.
    parents = [school.parent]
    for child in school.students[1:]:
        parent = hs.register("parent")
        api(hs, "PUT", f"/schools/{sid}/members/{parent.user_id}", school.admin,
            {"roles": ["parent"], "children": [child.user_id]})  # fmt: skip
        parents.append(parent)
    for user in (school.teacher, *parents):
        wait_for_rooms(hs, user)

    # The school sets the delay: validated (1 … 720 hours), null turns it off.
    for bad in (0, 721, "24"):
        with pytest.raises(HttpError) as refused:
            api(hs, "PATCH", f"/schools/{sid}", school.admin,
                {"policy": {"confirmation_reminder_hours": bad}})  # fmt: skip
        assert refused.value.status == 400
    patched = api(hs, "PATCH", f"/schools/{sid}", school.admin,
                  {"policy": {"confirmation_reminder_hours": 24}})  # fmt: skip
    assert patched["policy"]["confirmation_reminder_hours"] == 24

    # Only the bot asks the module what is due.
    with pytest.raises(HttpError) as refused:
        api(hs, "GET", "/internal/confirmations/due", school.admin)
    assert refused.value.status == 403

    chat = school.class_a["rooms"]["parents_chat"]
    start = time.time()
    clock.set(start)
    asked = await ask(env, school.teacher, chat, ask_content("Собрание в четверг в 18:00"))
    react = {"rel_type": "m.annotation", "event_id": asked, "key": "👍"}
    for parent in parents[:2]:
        async with hs.client(parent) as client:
            resp = await client.room_send(chat, "m.reaction", {"m.relates_to": react})
            assert isinstance(resp, RoomSendResponse), resp
    status_path = f"/rooms/{q(chat)}/confirmations/{q(asked)}"
    await poll(
        lambda: api(hs, "GET", status_path, school.teacher)["confirmed"] == 2, "two confirmations"
    )

    # 23 hours later nothing is due yet.
    clock.set(start + 23 * HOUR)
    assert await due_of(env, asked) == []
    # 25 hours later the third parent gets one direct message from the bot.
    clock.set(start + 25 * HOUR)
    third = parents[2]
    room = await poll(lambda: direct_room(env, third), "the bot's direct chat with the parent")
    sent = await poll(
        lambda: _sent_to(env, asked, third), "the reminder marked sent in the bot's store"
    )
    assert sent == [{"user_id": third.user_id, "child_id": "", "state": "sent"}]
    got = reminders_in(env, third, room)
    assert len(got) == 1
    assert message_link(chat, asked) in got[0]["body"]
    assert got[0]["body"].startswith("Напоминание")
    for confirmed_parent in parents[:2]:
        assert await direct_room(env, confirmed_parent) is None

    # Both restart; a second request (per child, in English) shows the bot is working
    # again: the third parent gets its reminder, and the first one stays single.
    env.bot.stop()
    hs.restart()
    env.bot.start()
    clock.set(time.time())
    second = await ask(
        env, school.teacher, chat, ask_content("Trip permission", "en", per_child=True)
    )
    clock.set(time.time() + 25 * HOUR)
    await poll(lambda: _sent_to(env, second, third), "the second reminder")
    got = reminders_in(env, third, room)
    assert [message_link(chat, asked) in c["body"] for c in got] == [True, False]
    child_id = school.students[2].user_id
    assert got[1]["body"].startswith("Reminder") and child_id in got[1]["body"]
    assert message_link(chat, second) in got[1]["body"]
    rows = await reminder_rows(env, asked)
    assert [r["user_id"] for r in rows if r["user_id"] in {p.user_id for p in parents}] == [
        third.user_id
    ]


async def _sent_to(env: BridgeEnv, request_id: str, user: User) -> list[dict[str, Any]]:
    rows = [r for r in await reminder_rows(env, request_id) if r["user_id"] == user.user_id]
    return rows if rows and all(r["state"] == "sent" for r in rows) else []


async def test_a_homework_reminder_names_the_assignments_the_module_lists(
    env: BridgeEnv, school: School
) -> None:
    """«дз 7А <срок> [предмет]»: the reminder's text is the class's homework list."""
    hs = env.hs
    wait_for_rooms(hs, school.teacher)
    chat = school.class_a["rooms"]["class_chat"]
    cid = school.class_a["class_id"]
    msk = zoneinfo.ZoneInfo("Europe/Moscow")
    due = datetime.datetime.now(msk).replace(second=0, microsecond=0) + datetime.timedelta(hours=2)
    when = due.strftime("%Y-%m-%d %H:%M")
    refused = await ask_bot(env, school.teacher, f"дз 7А {when}")
    assert "нет задания" in refused, refused

    assignment = homework_content("Алгебра", "№ 125, 126", due.date().isoformat(), cid)
    await ask(env, school.teacher, chat, assignment)
    listed = f"/schools/{school.school_id}/classes/{cid}/homework"
    await poll(lambda: api(hs, "GET", listed, school.teacher)["homework"], "the homework listed")
    assert "нет задания" in await ask_bot(env, school.teacher, f"дз 7А {when} история")
    await ask_bot(env, school.teacher, f"дз 7А {when} алгебра")

    def reminders() -> list[str]:
        path = f"/_matrix/client/v3/rooms/{q(chat)}/messages?dir=b&limit=50"
        chunk = hs.request("GET", path, token=school.teacher.access_token)["chunk"]
        return [
            e["content"]["body"]
            for e in chunk
            if e["sender"] == school.teacher.user_id
            and e["content"].get("body", "").startswith("Напоминание: домашнее задание")
        ]

    # Due in two hours, reminded 18 hours before: at once, as the teacher.
    got = await poll(reminders, "the homework reminder in the class chat")
    assert got == [f"Напоминание: домашнее задание к {due:%d.%m %H:%M}: Алгебра — № 125, 126"]


async def test_two_bots_reminding_at_once_post_each_reminder_once(
    env: BridgeEnv, school: School, clock: ModuleClock
) -> None:
    """Two bot processes (here: the bot's own code twice, on its database) take up the
    same due request at the same moment: the module's ``reminded`` route never answers
    500, each person is recorded by exactly one call, and each reminder is posted once —
    a parent of two children gets two (one per child) in one direct chat."""
    hs = env.hs
    sid = school.school_id
    api(hs, "PATCH", f"/schools/{sid}", school.admin,
        {"policy": {"confirmation_reminder_hours": 24}})  # fmt: skip
    chat = school.class_a["rooms"]["parents_chat"]
    two_children = hs.register("parent-two")
    children = [school.students[1].user_id, school.students[2].user_id]
    api(hs, "PUT", f"/schools/{sid}/members/{two_children.user_id}", school.admin,
        {"roles": ["parent"], "children": children})  # fmt: skip
    wait_for_rooms(hs, two_children)
    env.bot.stop()  # only the two below take it up
    try:
        # The module's route, called by two bots at once with the same people.
        url = f"{hs.base_url}/_synapse/client/parta/v1/internal/confirmations/reminded"
        headers = {"Authorization": f"Bearer {env.bot.registration.as_token}"}
        people = [{"user_id": f"@someone{n}:{hs.server_name}", "child_id": ""} for n in range(40)]
        async with aiohttp.ClientSession(headers=headers) as session:

            async def post(request_id: str) -> tuple[int, Any]:
                body = {"event_id": request_id, "people": people}
                async with session.post(url, json=body) as resp:
                    return resp.status, await resp.json()

            for n in range(6):
                asked = await ask(env, school.teacher, chat, ask_content(f"Собрание №{n}"))
                await poll(functools.partial(_indexed, env, school, chat, asked), "the request")
                answers = await asyncio.gather(post(asked), post(asked), post(asked))
                assert [status for status, _ in answers] == [200, 200, 200], answers
                recorded = [p["user_id"] for _, body in answers for p in body["reminded"]]
                assert sorted(recorded) == sorted(p["user_id"] for p in people), answers

        # The bot's own code twice, at the same moment, on a request per child.
        clock.set(time.time())
        asked = await ask(env, school.teacher, chat, ask_content("Разрешение на экскурсию",
                                                                 per_child=True))  # fmt: skip
        clock.set(time.time() + 25 * HOUR)
        async with (
            env.bot_side() as (_, db_one, module_one),
            env.bot_side() as (_, db_two, module_two),
            aiohttp.ClientSession() as http_one,
            aiohttp.ClientSession() as http_two,
        ):
            bots = [
                ConfirmationReminders(db_one, module_one, _bot_intent(env, http_one)),
                ConfirmationReminders(db_two, module_two, _bot_intent(env, http_two)),
            ]
            await asyncio.gather(*(bot.run_due() for bot in bots))
            for _ in range(3):  # whatever a claim left over (it is retried after a pause)
                await asyncio.gather(*(bot.send_pending() for bot in bots))
        rows = [r for r in await reminder_rows(env, asked) if r["user_id"] == two_children.user_id]
        assert rows == [
            {"user_id": two_children.user_id, "child_id": c, "state": "sent"}
            for c in sorted(children)
        ]
        room = await direct_room(env, two_children)
        assert room is not None
        got = [c for c in reminders_in(env, two_children, room) if asked in c[REMINDER_ID]]
        assert sorted(c[REMINDER_ID] for c in got) == sorted(
            f"{asked}|{two_children.user_id}|{c}" for c in children
        )
        # One direct chat: an invitation to a second one, if two were made, taken back.
        sync = "/_matrix/client/v3/sync?timeout=0"
        invited = hs.request("GET", sync, token=two_children.access_token)["rooms"]
        assert not invited.get("invite"), invited.get("invite")
    finally:
        env.bot.start()


def _bot_intent(env: BridgeEnv, session: aiohttp.ClientSession) -> IntentAPI:
    """The bot's intent as ``bridge.app`` makes it (its application-service token)."""
    intent: IntentAPI = AppServiceAPI(
        base_url=env.hs.base_url,
        bot_mxid=UserID(env.bot_user_id),
        token=env.bot.registration.as_token,
        state_store=MemoryASStateStore(),
        client_session=session,
        log=cast(TraceLogger, logging.getLogger("bridge.appservice")),
    ).bot_intent()
    return intent


def _indexed(env: BridgeEnv, school: School, chat: str, asked: str) -> bool:
    """Whether the module has taken up a confirmation request (its status answers)."""
    try:
        api(env.hs, "GET", f"/rooms/{q(chat)}/confirmations/{q(asked)}", school.teacher)
    except HttpError:
        return False
    return True
