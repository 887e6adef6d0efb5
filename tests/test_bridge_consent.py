"""Consents through the school bot (docs/bridge.md, docs/privacy.md "Consent").

A parent in their chat client lists their children's consents and grants or withdraws
one; the bot calls the module's ``PUT …/consents`` as the parent, so the record says the
parent gave it with their account. Against a real Synapse and the bot as a process.
"""

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from nio import RoomCreateResponse

from tests.bridge_env import BridgeEnv, bridge_env
from tests.harness import User
from tests.roster_helpers import School, api, build_school
from tests.test_bridge_bot import ask, poll


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    with bridge_env(tmp_path_factory.mktemp("bridge_consent")) as running:
        yield running


@pytest.fixture(scope="module")
def school(env: BridgeEnv) -> School:
    operator = env.hs.register("operator", admin=True)
    built = build_school(env.hs, operator)
    for student, name in zip(
        built.students, ("Маша Иванова", "Петя Иванов", "Оля Смирнова"), strict=True
    ):
        set_name(env, student, name)
    return built


def set_name(env: BridgeEnv, user: User, name: str) -> None:
    path = f"/_matrix/client/v3/profile/{urllib.parse.quote(user.user_id)}/displayname"
    env.hs.request("PUT", path, {"displayname": name}, token=user.access_token)


def consents(env: BridgeEnv, school: School, reader: User, child: User) -> dict[str, Any]:
    path = f"/schools/{school.school_id}/members/{child.user_id}/consents"
    found: dict[str, Any] = api(env.hs, "GET", path, reader)["consents"]
    return found


async def test_a_parent_of_one_child_lists_grants_and_withdraws(
    env: BridgeEnv, school: School
) -> None:
    """«согласие дать фото» with one child names nobody; the module records it as the
    parent's, with their account; «согласия» shows it; the English alias withdraws."""
    parent, child = school.parent, school.students[0]
    answer = await ask(env, parent, "согласие дать фото")
    assert answer.startswith("Готово: Маша Иванова — согласие на фото дано"), answer
    assert "«согласие отозвать фото»" in answer
    record = consents(env, school, parent, child)["photos"]
    assert record["granted"] is True
    assert record["recorded_by"] == parent.user_id and record["via"] == "account"

    listing = await ask(env, parent, "согласия")
    assert listing.startswith("Согласия — Школа № 1:"), listing
    assert (
        "• Маша Иванова: общение — не дано; видеоуроки — не дано; трансляции — не дано;"
        " фото — дано" in listing
    )
    assert "• Вы: " in listing  # an adult records their own
    assert "«согласие дать фото Маша»" in listing

    answer = await ask(env, parent, "consent withdraw photos")
    assert answer.startswith("Done: consent to photos for Маша Иванова withdrawn"), answer
    record = consents(env, school, parent, child)["photos"]
    assert record["granted"] is False and record["withdrawn_ts"] is not None
    assert "фото — отозвано" in await ask(env, parent, "согласия")


async def test_a_parent_of_several_children_names_one(env: BridgeEnv, school: School) -> None:
    """With two children the command needs a name (given or full, any case); a name
    that is not a child's is answered with the children's names."""
    parent, masha, petya = school.parent, school.students[0], school.students[1]
    api(
        env.hs,
        "PUT",
        f"/schools/{school.school_id}/members/{parent.user_id}",
        school.admin,
        {"roles": ["parent"], "children": [masha.user_id, petya.user_id]},
    )
    which = await ask(env, parent, "согласие дать видеоуроки")
    assert which.startswith("Не получилось: За кого?"), which
    assert "Маша Иванова, Петя Иванов" in which
    answer = await ask(env, parent, "согласие дать видеоуроки петя")
    assert answer.startswith("Готово: Петя Иванов — согласие на видеоуроки дано"), answer
    assert consents(env, school, parent, petya)["video_lessons"]["granted"] is True
    assert "video_lessons" not in consents(env, school, parent, masha)
    answer = await ask(env, parent, "согласие дать общение Маша Иванова")
    assert answer.startswith("Готово: Маша Иванова — согласие на общение дано"), answer
    assert consents(env, school, parent, masha)["communication"]["recorded_by"] == parent.user_id
    unknown = await ask(env, parent, "согласие дать общение Коля")
    assert unknown.startswith("Не найдено: У вас нет ребёнка «Коля»"), unknown


async def test_refusals_are_plain_answers(env: BridgeEnv, school: School) -> None:
    """A 7th-grader may not record their own consent (the school's grade is 8): the
    module's refusal comes back in words; an unknown purpose is explained."""
    student = school.students[2]
    refused = await ask(env, student, "согласие дать общение")
    assert refused.startswith("Нельзя: Записывать согласие этого человека могут"), refused
    assert consents(env, school, school.admin, student) == {}
    assert "Не знаю цели «рисунки»" in await ask(env, school.parent, "согласие дать рисунки")
    listing = await ask(env, student, "согласия")
    assert listing.startswith("Здесь нечего показать"), listing


async def test_not_in_a_group_room(env: BridgeEnv, school: School) -> None:
    """A child's consents are neither shown nor recorded where others read: in a room
    with more people the bot points to the direct chat and records nothing."""
    parent, teacher, child = school.parent, school.teacher, school.students[0]
    async with env.hs.client(parent) as client:
        created = await client.room_create(invite=[env.bot_user_id, teacher.user_id])
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
    path = f"/_matrix/client/v3/join/{urllib.parse.quote(room_id)}"
    env.hs.request("POST", path, {}, token=teacher.access_token)

    def three_joined() -> bool:
        members = f"/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/joined_members"
        return len(env.hs.request("GET", members, token=parent.access_token)["joined"]) == 3

    await poll(three_joined, "the bot and the teacher to join")
    before = consents(env, school, parent, child).get("broadcasts")
    for text in ("бот, согласия", "бот, согласие дать трансляции Маша"):
        answer = await ask(env, parent, text, room_id)
        assert answer.startswith("Согласия я показываю и записываю только в личном чате"), answer
    assert consents(env, school, parent, child).get("broadcasts") == before
