"""Quiet hours (issue 13, item 2): the school's rules per role, and against a real Synapse
with matrix-nio clients — a teacher's message at 22:00 to the parents chat waits and
arrives at 08:00, an administrator's «срочно» goes through and is in the audit log,
parents' and students' messages are never held. The time is a file the test writes
(``PARTA_TEST_CLOCK_FILE``, read by the module's clock): no sleeping until morning."""

import asyncio
import datetime as dt
import json
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nio import (
    JoinResponse,
    RoomCreateError,
    RoomCreateResponse,
    RoomPutStateResponse,
    RoomRedactResponse,
    RoomSendError,
    RoomSendResponse,
)

from devtools.homeserver import HttpError
from parta_common.roles import Role
from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.homework.events import homework_content
from synapse_module.http import TIME_PATTERN
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


EDIT = {"rel_type": "m.replace", "event_id": "$earlier"}
NEW = {"msgtype": "m.text", "body": "Собрание в 19:00"}
MENTION = {"user_ids": ["@parent:x"]}
ROOM = {"room": True}


@pytest.mark.parametrize(
    ("event_type", "content", "is_state", "action"),
    [
        ("m.room.message", {"msgtype": "m.text", "body": "x"}, False, rules.HOLD),
        ("m.room.message", {"msgtype": "m.file", "url": "mxc://a/b"}, False, rules.HOLD),
        ("m.room.message", {"body": "x", "m.relates_to": {"rel_type": "m.thread"}}, False, "hold"),
        ("m.sticker", {"body": "🙂", "url": "mxc://a/b"}, False, rules.HOLD),
        ("m.room.encrypted", {"algorithm": "m.megolm.v1.aes-sha2"}, False, rules.HOLD),
        ("m.poll.start", {}, False, rules.HOLD),
        ("org.matrix.msc3381.poll.start", {}, False, rules.HOLD),
        ("m.poll.end", {}, False, rules.HOLD),
        ("com.example.nudge", {"body": "x"}, False, rules.HOLD),
        # edits: silent only when m.mentions says nobody is mentioned
        ("m.room.message", {**NEW, "m.relates_to": EDIT, "m.mentions": {}}, False, rules.PASS),
        ("m.room.message", {**NEW, "m.new_content": NEW, "m.relates_to": EDIT}, False, "hold"),
        ("m.room.message", {**NEW, "m.relates_to": EDIT, "m.mentions": MENTION}, False, "hold"),
        ("m.room.message", {**NEW, "m.relates_to": EDIT, "m.mentions": ROOM}, False, "hold"),
        ("m.room.encrypted", {"m.relates_to": EDIT, "m.mentions": {}}, False, rules.HOLD),
        ("m.reaction", {"m.relates_to": {"rel_type": "m.annotation"}}, False, rules.PASS),
        ("m.room.redaction", {}, False, rules.PASS),
        ("m.poll.response", {}, False, rules.PASS),
        ("org.matrix.msc3381.poll.response", {}, False, rules.PASS),
        ("m.key.verification.start", {}, False, rules.PASS),
        ("m.call.invite", {"lifetime": 60000}, False, rules.REFUSE_CALL),
        ("org.matrix.msc4075.rtc.notification", {}, False, rules.REFUSE_CALL),
        ("m.call.hangup", {}, False, rules.PASS),
        ("m.call.answer", {}, False, rules.PASS),
        ("org.matrix.msc3401.call.member", {"application": "m.call"}, True, rules.REFUSE_CALL),
        ("org.matrix.msc3401.call.member", {}, True, rules.PASS),  # leaving the call
        ("m.room.member", {"membership": "invite"}, True, rules.REFUSE_INVITE),
        ("m.room.member", {"membership": "join"}, True, rules.PASS),
        ("m.room.topic", {"topic": "x"}, True, rules.PASS),
        ("m.room.name", {"name": "x"}, True, rules.PASS),
        ("m.room.pinned_events", {"pinned": ["$a"]}, True, rules.PASS),
    ],
)
def test_what_quiet_hours_do_with_each_event(
    event_type: str, content: dict[str, Any], is_state: bool, action: str
) -> None:
    assert rules.quiet_action(event_type, content, is_state) == action


@pytest.mark.parametrize(
    ("roles", "held"),
    [
        ({Role.STUDENT}, True),
        ({Role.PARENT}, True),
        ({Role.PARENT, Role.TEACHER}, False),  # a colleague
        ({Role.TEACHER}, False),
        ({Role.ADMINISTRATOR}, False),
        (set(), False),
    ],
)
def test_whom_quiet_hours_protect(roles: set[Role], held: bool) -> None:
    assert rules.is_held_reader(roles) is held


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
        # Lessons on (a secret, an SFU address that is never called): a lesson's notice.
        media = {"enabled": True, "token_secret": "q" * 40, "sfu_public_url": "http://127.0.0.1:9/"}
        with running_homeserver(
            tmp_path_factory.mktemp("synapse-quiet"), module_config={"media": media}
        ) as running:
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


async def attempt(
    synapse: RunningHomeserver,
    user: User,
    room_id: str,
    event_type: str,
    content: dict[str, Any],
    state_key: str | None = None,
) -> str:
    """What a plain client sees: ``sent``, ``held`` (ORG.PARTA.HELD) or ``refused`` (a
    quiet-hours refusal); anything else is returned as its error, to fail the table."""
    async with synapse.client(user) as client:
        if state_key is None:
            resp: Any = await client.room_send(room_id, event_type, content)
        else:
            resp = await client.room_put_state(room_id, event_type, content, state_key)
    if isinstance(resp, RoomSendResponse | RoomPutStateResponse):
        return "sent"
    if resp.status_code == HELD_ERRCODE:
        return "held"
    if resp.status_code == "M_FORBIDDEN" and "тихие часы" in resp.message:
        return "refused"
    return f"{resp.status_code}: {resp.message}"


async def test_every_way_around_quiet_hours(
    quiet_synapse: RunningHomeserver, school: School, clock: SchoolClock
) -> None:
    """A teacher at 22:00 tries every kind of event a plain Matrix client can send to
    parents and students: messages in any disguise are held, calls and invitations are
    refused, what notifies nobody goes through; a direct chat with a parent is held like
    the parents chat, one with a colleague is not. The held direct message arrives at
    08:00."""
    synapse = quiet_synapse
    teacher, parent = school.teacher, school.parent
    parents = school.class_a["rooms"]["parents_chat"]
    class_chat = school.class_a["rooms"]["class_chat"]

    clock.set(moscow(8, 14))  # Tuesday afternoon: what the evening builds on
    async with synapse.client(teacher) as client:
        earlier = await client.room_send(
            parents, "m.room.message", {"msgtype": "m.text", "body": "Завтра экскурсия"}
        )
        assert isinstance(earlier, RoomSendResponse), earlier
        to_parent = await client.room_create(is_direct=True, invite=[parent.user_id])
        to_colleague = await client.room_create(is_direct=True, invite=[school.admin.user_id])
        assert isinstance(to_parent, RoomCreateResponse), to_parent
        assert isinstance(to_colleague, RoomCreateResponse), to_colleague
    for user, room in ((parent, to_parent.room_id), (school.admin, to_colleague.room_id)):
        async with synapse.client(user) as client:
            assert isinstance(await client.join(room), JoinResponse)
    direct = to_parent.room_id
    target = earlier.event_id
    edit = {"rel_type": "m.replace", "event_id": target}
    new = {"msgtype": "m.text", "body": "Экскурсия переносится"}
    ciphertext = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg37af",
        "sender_key": "IlRMeOPX2e0MurIyfWEucYBRVOEEUMrOHqn/8mLqMjA",
        "session_id": "X3lUlvLELLYxeTx4yOVu6UDpasGEVO0Jbu+QFnm0cKQ",
        "device_id": teacher.device_id or "DEVICE",
    }
    poll = "org.matrix.msc3381.poll.start"
    text = "org.matrix.msc1767.text"
    msc_poll = {
        poll: {
            "question": {text: "Когда собрание?"},
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": 1,
            "answers": [{"id": "a", text: "В четверг"}, {"id": "b", text: "В пятницу"}],
        },
        text: "Когда собрание?\n1. В четверг\n2. В пятницу",
    }
    stable_poll = {
        "m.poll": {
            "question": {"m.text": [{"body": "Когда собрание?"}]},
            "kind": "m.disclosed",
            "max_selections": 1,
            "answers": [
                {"m.id": "a", "m.text": [{"body": "В четверг"}]},
                {"m.id": "b", "m.text": [{"body": "В пятницу"}]},
            ],
        },
        "m.text": [{"body": "Когда собрание?"}],
    }
    due = (moscow(8, 14) + dt.timedelta(days=3)).date().isoformat()
    call_member = {
        "application": "m.call",
        "call_id": "",
        "scope": "m.room",
        "device_id": teacher.device_id or "DEVICE",
        "focus_active": {"type": "livekit"},
        "foci_preferred": [],
    }
    # (what, room, event type, content, state key, expected)
    table: list[tuple[str, str, str, dict[str, Any], str | None, str]] = [
        ("encrypted message", parents, "m.room.encrypted", ciphertext, None, "held"),
        ("sticker", parents, "m.sticker",
         {"body": "🙂", "url": "mxc://example.org/sticker", "info": {}}, None, "held"),
        ("thread reply", parents, "m.room.message",
         {"msgtype": "m.text", "body": "И ещё",
          "m.relates_to": {"rel_type": "m.thread", "event_id": target}}, None, "held"),
        ("edit without m.mentions", parents, "m.room.message",
         {**new, "body": "* " + new["body"], "m.new_content": new, "m.relates_to": edit},
         None, "held"),
        ("edit mentioning a parent", parents, "m.room.message",
         {**new, "m.new_content": new, "m.relates_to": edit,
          "m.mentions": {"user_ids": [parent.user_id]}}, None, "held"),
        ("silent edit", parents, "m.room.message",
         {**new, "m.new_content": new, "m.relates_to": edit, "m.mentions": {}}, None, "sent"),
        ("reaction", parents, "m.reaction",
         {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}},
         None, "sent"),
        ("MSC3381 poll", parents, poll, msc_poll, None, "held"),
        ("stable poll", parents, "m.poll.start", stable_poll, None, "held"),
        ("homework", class_chat, "m.room.message",
         homework_content("Алгебра", "№ 1", due, school.class_a["class_id"]), None, "held"),
        ("custom event type", parents, "com.example.nudge", {"body": "Проверьте дневники"},
         None, "held"),
        ("topic", parents, "m.room.topic", {"topic": "Экскурсия в среду"}, "", "sent"),
        ("pinned events", parents, "m.room.pinned_events", {"pinned": [target]}, "", "sent"),
        ("joining a group call", parents, "org.matrix.msc3401.call.member", call_member,
         teacher.user_id, "refused"),
        ("leaving a group call", parents, "org.matrix.msc3401.call.member", {},
         teacher.user_id, "sent"),
        ("direct message to a parent", direct, "m.room.message",
         {"msgtype": "m.text", "body": "Как дела у Пети?"}, None, "held"),
        ("encrypted direct message", direct, "m.room.encrypted",
         {**ciphertext, "session_id": "other"}, None, "held"),
        ("call to a parent", direct, "m.call.invite",
         {"call_id": "c1", "version": "1", "lifetime": 60000, "party_id": "p",
          "offer": {"type": "offer", "sdp": "v=0"}}, None, "refused"),
        ("hanging up", direct, "m.call.hangup",
         {"call_id": "c1", "version": "1", "party_id": "p"}, None, "sent"),
        ("direct message to a colleague", to_colleague.room_id, "m.room.message",
         {"msgtype": "m.text", "body": "Завтра педсовет"}, None, "sent"),
    ]  # fmt: skip

    clock.set(moscow(8, 22))  # Tuesday, 22:00
    got = {
        what: await attempt(synapse, teacher, room, kind, content, key)
        for what, room, kind, content, key, _ in table
    }
    assert got == {what: expected for what, *_, expected in table}

    # A new direct chat with a student: the invitation is refused (it would ring now).
    async with synapse.client(teacher) as client:
        invited = await client.room_create(is_direct=True, invite=[school.students[1].user_id])
        assert isinstance(invited, RoomCreateError), invited
        assert invited.status_code == "M_FORBIDDEN" and "тихие часы" in invited.message, invited
        assert "You can invite after 09.12.2026 08:00" in invited.message.split(" / ")[1]
        # A redaction notifies nobody: the teacher may take a message back at night.
        redacted = await client.room_redact(parents, target)
        assert isinstance(redacted, RoomRedactResponse), redacted

    # Nothing held reached the parent; what went through did.
    events = await room_events(synapse, parent, parents)
    mine = [e for e in events if e["sender"] == teacher.user_id]
    assert not [e for e in mine if e["type"] in ("m.room.encrypted", "m.sticker", poll)]
    assert [e["type"] for e in mine if e["content"].get("m.relates_to", {}).get("rel_type")] == [
        "m.reaction",
        "m.room.message",  # the silent edit
    ]
    assert await bodies_from(synapse, parent, direct, teacher) == []

    # Wednesday 08:00: the direct message arrives as the teacher, with the rest (each
    # held event is sent on its own: wait until all of them are there, not only the text).
    clock.set(moscow(9, 8))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    held = ["m.call.hangup", "m.room.encrypted", "m.room.message"]
    while True:
        arrived = [
            e["type"]
            for e in await room_events(synapse, parent, direct)
            if e["sender"] == teacher.user_id and "state_key" not in e
        ]
        if sorted(arrived) == held:
            break
        assert len(arrived) < len(held), arrived  # never more than was held
        assert loop.time() < deadline, f"after 08:00 only {arrived} arrived"
        await asyncio.sleep(0.5)
    assert "Как дела у Пети?" in await bodies_from(synapse, parent, direct, teacher)


async def test_a_lesson_started_in_quiet_hours_starts_without_a_notice(
    quiet_synapse: RunningHomeserver, school: School, clock: SchoolClock
) -> None:
    """A teacher starts a lesson at 22:00: it is live (its state and widget are in the
    room, silent by Matrix's push rules), but no "lesson started" notice is sent — nor
    held for 08:00, when the lesson is long over — and the start is not refused."""
    synapse = quiet_synapse
    class_chat = school.class_a["rooms"]["class_chat"]

    async def held_in_class_chat() -> set[str]:
        status, mine = await api(synapse, school.teacher, "GET", "/me/held_messages")
        assert status == 200, mine
        return {h["held_id"] for h in mine["held"] if h["room_id"] == class_chat}

    held_before = await held_in_class_chat()  # the earlier tests' evening messages
    clock.set(moscow(14, 22))  # Monday, 22:00 in Moscow
    status, lesson = await api(
        synapse,
        school.teacher,
        "POST",
        f"/rooms/{q(class_chat)}/lessons",
        {"title": "Консультация"},
    )
    assert status == 200, lesson
    assert lesson["status"] == "live"
    events_now = await room_events(synapse, school.students[0], class_chat)
    states = [
        e
        for e in events_now
        if e["type"] == "org.parta.lesson" and e.get("state_key") == lesson["lesson_id"]
    ]
    assert states and states[-1]["content"]["title"] == "Консультация"
    notices = [
        e
        for e in events_now
        if e["type"] == "m.room.message"
        and e["content"].get("org.parta.lesson", {}).get("lesson_id") == lesson["lesson_id"]
    ]
    assert notices == []
    assert await held_in_class_chat() <= held_before  # nothing new held for the morning

    # In the day the same start announces the lesson.
    status, ended = await api(
        synapse,
        school.teacher,
        "POST",
        f"/rooms/{q(class_chat)}/lessons/{lesson['lesson_id']}/end",
    )
    assert status == 200, ended
    clock.set(moscow(15, 10))
    status, day = await api(
        synapse, school.teacher, "POST", f"/rooms/{q(class_chat)}/lessons", {"title": "Дроби"}
    )
    assert status == 200, day
    notices = [
        e
        for e in await room_events(synapse, school.students[0], class_chat)
        if e["type"] == "m.room.message"
        and e["content"].get("org.parta.lesson", {}).get("lesson_id") == day["lesson_id"]
    ]
    assert len(notices) == 1


async def test_a_lesson_in_a_teachers_own_room_at_night_is_not_refused(
    quiet_synapse: RunningHomeserver, school: School, clock: SchoolClock
) -> None:
    """In a room the teacher made (not the roster's), the teacher sends the notice; quiet
    hours used to hold it and so refuse the whole start. Now the lesson starts silently."""
    synapse = quiet_synapse
    pupil = school.students[2]
    clock.set(moscow(15, 11))  # Tuesday, 11:00: inviting is fine
    async with synapse.client(school.teacher) as client:
        made = await client.room_create(name="Кружок", invite=[pupil.user_id])
        assert isinstance(made, RoomCreateResponse), made
    async with synapse.client(pupil) as client:
        assert isinstance(await client.join(made.room_id), JoinResponse)
    clock.set(moscow(15, 23))
    status, lesson = await api(
        synapse, school.teacher, "POST", f"/rooms/{q(made.room_id)}/lessons", {"title": "Кружок"}
    )
    assert status == 200, lesson
    assert lesson["status"] == "live"
    notices = [
        e
        for e in await room_events(synapse, pupil, made.room_id)
        if e["type"] == "m.room.message" and "org.parta.lesson" in e["content"]
    ]
    assert notices == []
    status, mine = await api(synapse, school.teacher, "GET", "/me/held_messages")
    assert status == 200, mine
    assert not [h for h in mine["held"] if h["room_id"] == made.room_id], mine


def test_every_time_in_the_request_schemas_is_named_in_words() -> None:
    """Each HH:MM field of the requests uses the one pattern the module words a refusal
    for (``http.bad_time``), not a regex a school administrator would read."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str) and ":" in pattern and "[0-5][0-9]" in pattern:
                found.append(pattern)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (Path(__file__).parent.parent / "synapse_module").rglob("requests.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    assert found and set(found) == {TIME_PATTERN}


def test_a_wrong_time_is_refused_in_words(quiet_synapse: RunningHomeserver, school: School) -> None:
    with pytest.raises(HttpError) as refused:
        roster_api(
            quiet_synapse,
            "PATCH",
            f"/schools/{school.school_id}",
            school.admin,
            {"policy": {"quiet_hours": {"teacher": {"from": "25:00", "until": "08:00"}}}},
        )
    assert refused.value.status == 400
    body = refused.value.body
    assert body["errcode"] == "M_BAD_JSON"
    assert body["org.parta.message"]["id"] == "http.bad_time"
    ru, en = body["error"].split(" / ", 1)
    assert "«25:00»" in ru and "ЧЧ:ММ" in ru and "HH:MM" in en
    assert "[0-5]" not in body["error"]
