"""Quiet hours (issue 13, item 2): the school's rules per role, and against a real Synapse
with matrix-nio clients — a teacher's message at 22:00 to the parents chat waits and
arrives at 08:00, an administrator's «срочно» goes through and is in the audit log,
parents' and students' messages are never held. The time is a file the test writes
(``PARTA_TEST_CLOCK_FILE``, read by the module's clock): no sleeping until morning."""

import asyncio
import datetime as dt
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from parta_common.roles import Role
from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.quiet_hours import rules
from synapse_module.quiet_hours.callbacks import HELD_ERRCODE, HELD_FIELD
from tests.content_school import api, matrix, parta_notice, q, room_events
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, build_school, wait_for_rooms
from tests.roster_helpers import api as roster_api

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")
EVENINGS = rules.QuietHours("teacher", dt.time(21), dt.time(8), weekends=True)
LUNCH = rules.QuietHours("teacher", dt.time(13), dt.time(14, 30))


def moscow(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A wall-clock time in December 2026 (the 7th is a Monday)."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("rule", "local", "quiet", "until"),
    [
        (EVENINGS, moscow(7, 22), True, moscow(8, 8)),  # Monday evening
        (EVENINGS, moscow(8, 7, 59), True, moscow(8, 8)),
        (EVENINGS, moscow(8, 8), False, None),
        (EVENINGS, moscow(8, 20, 59), False, None),
        (EVENINGS, moscow(11, 21), True, moscow(14, 8)),  # Friday: until Monday
        (EVENINGS, moscow(12, 12), True, moscow(14, 8)),  # Saturday noon
        (EVENINGS, moscow(13, 23), True, moscow(14, 8)),  # Sunday night
        (rules.QuietHours("teacher", dt.time(21), dt.time(8)), moscow(12, 12), False, None),
        (LUNCH, moscow(7, 13, 30), True, moscow(7, 14, 30)),
        (LUNCH, moscow(7, 14, 30), False, None),
        (LUNCH, moscow(7, 12), False, None),
    ],
)
def test_quiet_and_until(
    rule: rules.QuietHours, local: dt.datetime, quiet: bool, until: dt.datetime | None
) -> None:
    assert rules.is_quiet(rule, local) is quiet
    if until is not None:
        assert rules.quiet_until(rule, local) == until


def test_until_keeps_the_wall_clock_across_daylight_saving() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    saturday = dt.datetime(2026, 3, 28, 23, 0, tzinfo=berlin)  # clocks go forward that night
    until = rules.quiet_until(rules.QuietHours("teacher", dt.time(21), dt.time(8)), saturday)
    assert (until.hour, until.minute, until.day) == (8, 0, 29)
    assert until.timestamp() - saturday.timestamp() == 8 * 3600  # one hour less


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({Role.TEACHER}, "teacher"),
        ({Role.TEACHER, Role.ADMINISTRATOR}, "administrator"),
        ({Role.STUDENT}, None),
        ({Role.PARENT}, None),
        ({Role.PARENT, Role.TEACHER}, "teacher"),
    ],
)
def test_rule_for_role(roles: set[Role], expected: str | None) -> None:
    both = (EVENINGS, rules.QuietHours("administrator", dt.time(22), dt.time(7)))
    found = rules.rule_for(both, roles)
    assert (found.role if found else None) == expected
    assert rules.rule_for((EVENINGS,), {Role.ADMINISTRATOR}) is None


@pytest.mark.parametrize(
    ("content", "urgent"),
    [
        ({"msgtype": "m.text", "body": "Срочно: завтра школа закрыта"}, True),
        ({"msgtype": "m.text", "body": "!СРОЧНО занятия отменены"}, True),
        ({"msgtype": "m.text", "body": "urgent: no school"}, True),
        ({"msgtype": "m.text", "body": "срочность не важна"}, False),
        ({"msgtype": "m.text", "body": "Не срочно"}, False),
        ({"msgtype": "m.text", "body": "x", rules.URGENT: True}, True),
        ({"msgtype": "m.image", "url": "mxc://x/y"}, False),
    ],
)
def test_urgent(content: dict[str, Any], urgent: bool) -> None:
    assert rules.is_urgent(content) is urgent


def test_held_messages_are_new_messages_and_polls_not_edits() -> None:
    text = {"msgtype": "m.text", "body": "x"}
    assert rules.is_held_message("m.room.message", text)
    assert rules.is_held_message("org.matrix.msc3381.poll.start", {})
    assert not rules.is_held_message("m.reaction", {})
    edit = {**text, "m.relates_to": {"rel_type": "m.replace", "event_id": "$a"}}
    assert not rules.is_held_message("m.room.message", edit)


def test_policy_json_round_trip() -> None:
    raw = {"teacher": {"from": "21:00", "until": "08:00", "weekends": True}}
    assert rules.rules_to_json(rules.rules_from_json(raw)) == raw
    with pytest.raises(ValueError, match="not a time"):
        rules.parse_hhmm("24:00")


# -- against the real Synapse -------------------------------------------------------


class SchoolClock:
    """The file the module reads the time from."""

    def __init__(self, path: Path):
        self.path = path

    def set(self, when: dt.datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(when.timestamp()), encoding="utf-8")
        tmp.replace(self.path)


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> SchoolClock:
    return SchoolClock(tmp_path_factory.mktemp("clock") / "now")


@pytest.fixture(scope="module")
def quiet_synapse(
    tmp_path_factory: pytest.TempPathFactory, clock: SchoolClock
) -> Iterator[RunningHomeserver]:
    """A Synapse of its own: its module reads the time from the test's clock file."""
    clock.set(moscow(7, 12))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
        with running_homeserver(tmp_path_factory.mktemp("synapse-quiet")) as running:
            env.delenv(CLOCK_FILE_VARIABLE)
            yield running


@pytest.fixture(scope="module")
def school(quiet_synapse: RunningHomeserver) -> School:
    built = build_school(quiet_synapse, quiet_synapse.register("operator", admin=True))
    for user in (built.admin, built.teacher, *built.students, built.parent):
        wait_for_rooms(quiet_synapse, user)
    policy = {
        "quiet_hours": {
            "teacher": {"from": "21:00", "until": "08:00", "weekends": True},
            "administrator": {"from": "21:00", "until": "08:00", "weekends": True},
        }
    }
    body = roster_api(
        quiet_synapse, "PATCH", f"/schools/{built.school_id}", built.admin, {"policy": policy}
    )
    assert body["policy"]["quiet_hours"]["teacher"] == policy["quiet_hours"]["teacher"]
    return built


async def send(
    synapse: RunningHomeserver, user: User, room_id: str, body: str
) -> RoomSendResponse | RoomSendError:
    async with synapse.client(user) as client:
        resp = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )
        assert isinstance(resp, RoomSendResponse | RoomSendError)
        return resp


async def bodies_from(
    synapse: RunningHomeserver, reader: User, room_id: str, sender: User
) -> list[str]:
    return [
        e["content"].get("body", "")
        for e in await room_events(synapse, reader, room_id)
        if e["type"] == "m.room.message" and e["sender"] == sender.user_id
    ]


async def test_a_teachers_evening_message_waits_for_the_morning(
    quiet_synapse: RunningHomeserver, school: School, clock: SchoolClock
) -> None:
    synapse = quiet_synapse
    parents = school.class_a["rooms"]["parents_chat"]
    class_chat = school.class_a["rooms"]["class_chat"]
    announcements = school.rooms["announcements"]
    text = "Родительское собрание в четверг в 19:00"

    clock.set(moscow(7, 14))  # Monday afternoon: nothing held
    sent = await send(synapse, school.teacher, parents, "Добрый день! Завтра экскурсия.")
    assert isinstance(sent, RoomSendResponse), sent

    clock.set(moscow(7, 22))  # Monday, 22:00 in Moscow
    held = await send(synapse, school.teacher, parents, text)
    assert isinstance(held, RoomSendError) and held.status_code == HELD_ERRCODE, held
    assert "08.12.2026 в 08:00" in held.message and "08:00" in held.message.split(" / ")[1]
    status, again = await matrix(  # the client resends it
        synapse,
        school.teacher,
        "PUT",
        f"/_matrix/client/v3/rooms/{q(parents)}/send/m.room.message/resend1",
        {"msgtype": "m.text", "body": text},
    )
    assert status == 403 and again["errcode"] == HELD_ERRCODE, again
    assert again["org.parta.message"]["id"] == "rules.quiet_held"
    teacher_says_urgent = await send(synapse, school.teacher, class_chat, "Срочно: сдать тетради")
    assert isinstance(teacher_says_urgent, RoomSendError), teacher_says_urgent

    # parents and students are never held
    for user, room_id in ((school.parent, parents), (school.students[0], class_chat)):
        resp = await send(synapse, user, room_id, "Спасибо, до завтра")
        assert isinstance(resp, RoomSendResponse), resp

    # the teacher is told, in their «Parta» room, and sees it waiting
    assert "08:00" in await parta_notice(synapse, school.teacher, "08.12.2026")
    status, mine = await api(synapse, school.teacher, "GET", "/me/held_messages")
    assert status == 200, mine
    waiting = [h for h in mine["held"] if h["room_id"] == parents]
    assert len(waiting) == 1, mine  # the resend did not hold it twice
    assert waiting[0]["release_at"] == int(moscow(8, 8).timestamp() * 1000)
    assert waiting[0]["event_id"] is None
    assert waiting[0]["held_id"] == again[HELD_FIELD]["held_id"]
    assert text not in await bodies_from(synapse, school.parent, parents, school.teacher)

    # an administrator's «срочно» goes now and is in the audit log; a plain one waits
    urgent = await send(synapse, school.admin, announcements, "Срочно: завтра школа закрыта")
    assert isinstance(urgent, RoomSendResponse), urgent
    plain = await send(synapse, school.admin, announcements, "Напоминаем о форме")
    assert isinstance(plain, RoomSendError) and plain.status_code == HELD_ERRCODE
    status, log = await api(synapse, school.admin, "GET", f"/schools/{school.school_id}/audit")
    assert status == 200, log
    entries = [e for e in log["entries"] if e["action"] == "quiet_hours.urgent"]
    assert [(e["actor"], e["target"], e["details"]["event_id"]) for e in entries] == [
        (school.admin.user_id, announcements, urgent.event_id)
    ]

    clock.set(moscow(8, 7, 59))  # still quiet: nothing arrives
    clock.set(moscow(8, 8))  # Tuesday, 08:00: it arrives, as the teacher, once
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while text not in await bodies_from(synapse, school.parent, parents, school.teacher):
        assert loop.time() < deadline, "the held message did not arrive after 08:00"
        await asyncio.sleep(0.5)
    status, mine = await api(synapse, school.teacher, "GET", "/me/held_messages")
    delivered = [h for h in mine["held"] if h["room_id"] == parents]
    assert delivered[0]["event_id"] is not None and delivered[0]["failed"] is None
    events = await room_events(synapse, school.parent, parents)
    copies = [e for e in events if e["content"].get("body") == text]
    assert len(copies) == 1 and copies[0]["sender"] == school.teacher.user_id
    assert copies[0]["content"][rules.HELD_ID] == delivered[0]["held_id"]
    # the others held that evening arrive too
    while "Напоминаем о форме" not in await bodies_from(
        synapse, school.students[0], announcements, school.admin
    ):
        assert loop.time() < deadline, "the administrator's held message did not arrive"
        await asyncio.sleep(0.5)
