"""Requests to erase through the school bot (docs/bridge.md, docs/privacy.md "A person
asks to be erased"): the person asks, confirms with «да», the bot files the request
through the module as them and says the due date; «мои запросы» lists them; when the
school answers in its console the person is told in their direct chat with the bot.
Against a real Synapse and the bot as a process."""

import datetime
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.commands import Command, CommandError, parse
from bridge.erasure_requests import REQUEST_FIELD, local_date, news_content
from synapse_module.privacy.rules import erasure_request_due
from tests.bridge_env import BridgeEnv, bridge_env
from tests.harness import User
from tests.roster_helpers import School, api, build_school
from tests.test_bridge_bot import ask, messages, open_dm, poll

# -- the words, without a server -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("удалить мои данные", Command("erase", args=("self",))),
        ("Erase my data", Command("erase", args=("self",), language="en")),
        ("удалить данные Маша", Command("erase", text="Маша")),
        ("delete data Masha Ivanova", Command("erase", text="Masha Ivanova", language="en")),
        ("удалить данные я", Command("erase", text="я")),
        ("мои запросы", Command("my_requests")),
        ("my requests", Command("my_requests", language="en")),
    ],
)
def test_the_erasure_commands_are_read(text: str, command: Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize("text", ["удалить данные", "удалить мои данные срочно"])
def test_an_erasure_command_without_whom_is_explained(text: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse(text)
    assert raised.value.text().startswith("Напишите, чьи данные удалить")


def test_the_news_says_done_or_the_reason_in_the_requesters_language() -> None:
    request = {
        "request_id": "erq_1",
        "school_name": "Школа № 1",
        "created_ts": 1_796_000_000_000,
        "status": "declined",
        "reason": "The register is kept by law.",
        "language": "en",
    }
    content = news_content(request)
    assert content[REQUEST_FIELD] == "erq_1"
    assert content["body"].endswith("Reason: The register is kept by law.")
    done = news_content({**request, "status": "done", "language": "ru"})
    assert "выполнила ваш запрос" in done["body"] and "erq_1" in done["body"]
    assert local_date("2026-12-21") == "21.12.2026"


# -- with Synapse and the bot ------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    with bridge_env(tmp_path_factory.mktemp("bridge_erasure")) as running:
        yield running


def set_name(env: BridgeEnv, user: User, name: str) -> None:
    path = f"/_matrix/client/v3/profile/{urllib.parse.quote(user.user_id)}/displayname"
    env.hs.request("PUT", path, {"displayname": name}, token=user.access_token)


@pytest.fixture(scope="module")
def school(env: BridgeEnv) -> School:
    built = build_school(env.hs, env.hs.register("operator", admin=True))
    set_name(env, built.students[0], "Маша Иванова")
    return built


async def dm(env: BridgeEnv, user: User) -> str:
    async with env.hs.client(user) as client:
        return await open_dm(env, client, user)


def due_text(env: BridgeEnv, school: School) -> str:
    path = f"/schools/{school.school_id}/erasure_requests"
    today = datetime.date.fromisoformat(api(env.hs, "GET", path, school.admin)["today"])
    return erasure_request_due(today).strftime("%d.%m.%Y")


def requests_of(env: BridgeEnv, school: School) -> list[dict[str, Any]]:
    path = f"/schools/{school.school_id}/erasure_requests"
    found: list[dict[str, Any]] = api(env.hs, "GET", path, school.admin)["requests"]
    return found


async def told(env: BridgeEnv, user: User, room_id: str, words: str) -> str:
    """The bot's message in the chat that contains ``words`` (it comes on its own)."""

    def found() -> str | None:
        for event in messages(env, user, room_id):
            body = event["content"].get("body", "")
            if event["sender"] == env.bot_user_id and words in body:
                return str(body)
        return None

    answer: str = await poll(found, f"the bot to say {words!r}")
    return answer


async def test_a_parent_asks_to_erase_their_childs_data_and_is_told_when_done(
    env: BridgeEnv, school: School
) -> None:
    parent, child = school.parent, school.students[0]
    room = await dm(env, parent)
    question = await ask(env, parent, "удалить данные Маша", room)
    assert "Маша Иванова" in question and "«Школа № 1»" in question, question
    assert "«да»" in question
    assert requests_of(env, school) == []  # nothing filed before «да»
    filed = await ask(env, parent, "да", room)
    assert "Запрос подан в «Школа № 1»" in filed, filed
    assert f"до {due_text(env, school)}" in filed
    assert "«мои запросы»" in filed
    [request] = requests_of(env, school)
    assert (request["user_id"], request["requested_by"]) == (child.user_id, parent.user_id)
    assert request["relation"] == "guardian"
    # «да» again files nothing more; the same words again answer the waiting request.
    await ask(env, parent, "удалить данные маша", room)
    again = await ask(env, parent, "да", room)
    assert "уже подан" in again and request["request_id"] in again, again
    assert len(requests_of(env, school)) == 1
    mine = await ask(env, parent, "мои запросы", room)
    assert request["request_id"] in mine and "Маша Иванова" in mine, mine
    assert "ждёт ответа школы до" in mine
    # The school carries it out in its console: the existing erasure runs; when it is
    # done the parent is told here.
    carry = f"/schools/{school.school_id}/erasure_requests/{request['request_id']}/carry_out"
    api(env.hs, "POST", carry, school.admin, {})
    news = await told(env, parent, room, "выполнила ваш запрос")
    assert request["request_id"] in news and "«Школа № 1»" in news, news
    listed = await ask(env, parent, "мои запросы", room)
    assert "выполнен: данные удалены" in listed, listed
    # Told once: the module recorded it, and the next ticks said nothing more.
    bodies = [e["content"].get("body", "") for e in messages(env, parent, room)]
    assert sum("выполнила ваш запрос" in b for b in bodies) == 1


async def test_a_teacher_asks_in_english_and_reads_why_the_school_declined(
    env: BridgeEnv, school: School
) -> None:
    teacher = school.teacher
    room = await dm(env, teacher)
    question = await ask(env, teacher, "erase my data", room)
    assert "answer «yes»" in question, question
    assert "no request filed" in await ask(env, teacher, "no", room)
    assert not [r for r in requests_of(env, school) if r["requested_by"] == teacher.user_id]
    await ask(env, teacher, "erase my data", room)
    filed = await ask(env, teacher, "yes", room)
    assert "Request filed with «Школа № 1»" in filed and due_text(env, school) in filed, filed
    [request] = [r for r in requests_of(env, school) if r["requested_by"] == teacher.user_id]
    reason = "The school must keep class registers for 5 years by law."
    decline = f"/schools/{school.school_id}/erasure_requests/{request['request_id']}/decline"
    api(env.hs, "POST", decline, school.admin, {"reason": reason})
    news = await told(env, teacher, room, "has declined your request")
    assert f"Reason: {reason}" in news, news
    assert f"declined: {reason}" in await ask(env, teacher, "my requests", room)


async def test_a_seventh_grader_is_told_who_may_ask(env: BridgeEnv, school: School) -> None:
    """The module's rule, relayed in words: a student below the school's grade asks
    through their parent; nothing is filed."""
    pupil = school.students[2]
    room = await dm(env, pupil)
    await ask(env, pupil, "удалить мои данные", room)
    answer = await ask(env, pupil, "да", room)
    assert "Нельзя:" in answer and "родитель" in answer, answer
    assert not [r for r in requests_of(env, school) if r["requested_by"] == pupil.user_id]
    assert "Напишите, чьи данные удалить" in await ask(env, pupil, "удалить данные", room)
