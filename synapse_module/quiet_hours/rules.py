"""Quiet hours: pure decisions (is it quiet now for this role, until when, is this
message held, is it urgent), table-tested in ``tests/test_quiet_hours.py``.

A school sets quiet hours per role in its policy (``policy.quiet_hours``)::

    {"teacher": {"from": "21:00", "until": "08:00", "weekends": true},
     "administrator": {"from": "22:00", "until": "07:30", "weekends": false}}

in the school's time zone. ``weekends``: Saturday and Sunday are quiet all day.
"""

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from parta_common.roles import Role

# The roles whose messages quiet hours hold (students and parents: never), most
# specific first: a person who is both is held by the administrator's rule.
HELD_ROLES: Final = (Role.ADMINISTRATOR, Role.TEACHER)
# In a held message sent later by the module: which one it is (found again after a crash).
HELD_ID: Final = "org.parta.held_id"
# In an administrator's message: send now, whatever the hour (logged in the audit log).
URGENT: Final = "org.parta.urgent"
# A message whose text begins with one of these words is urgent too (any client can).
URGENT_WORDS: Final = ("срочно", "urgent")
# What quiet hours do with an event a held role sends to students or parents
# (:func:`quiet_action`): hold it for the morning, refuse it (it cannot wait: a call
# rung at 08:00 is no call), or let it through (it notifies nobody and says nothing new).
HOLD: Final = "hold"
REFUSE_CALL: Final = "refuse_call"
REFUSE_INVITE: Final = "refuse_invite"
PASS: Final = "pass"
Action = Literal["hold", "refuse_call", "refuse_invite", "pass"]
# Events that ring people now: a 1:1 call's invite, a group call's ring (MSC4075).
CALL_RINGS: Final = frozenset(
    {
        "m.call.invite",
        "m.call.notify",
        "org.matrix.msc4075.call.notify",
        "org.matrix.msc4075.rtc.notification",
        "m.rtc.notification",
    }
)
# State that puts a person into a group call (MatrixRTC): joining is refused, leaving
# (empty content) is not.
CALL_MEMBERSHIPS: Final = frozenset(
    {"org.matrix.msc3401.call.member", "m.call.member", "m.rtc.member"}
)
# Events that notify nobody (Matrix's default push rules) and carry no new message:
# a reaction (``.m.rule.reaction``), a redaction, a vote, the rest of a call someone
# else placed (answering a parent's call is fine), device verification.
PASSING: Final = frozenset(
    {
        "m.reaction",
        "m.room.redaction",
        "m.poll.response",
        "org.matrix.msc3381.poll.response",
        "m.call.answer",
        "m.call.candidates",
        "m.call.hangup",
        "m.call.reject",
        "m.call.select_answer",
        "m.call.negotiate",
        "m.call.sdp_stream_metadata_changed",
        "org.matrix.call.sdp_stream_metadata_changed",
        "m.call.asserted_identity",
        "org.matrix.call.asserted_identity",
    }
)
PASSING_PREFIXES: Final = ("m.key.verification.",)

_HHMM: Final = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_hhmm(value: str) -> dt.time:
    match = _HHMM.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time HH:MM")
    return dt.time(int(match.group(1)), int(match.group(2)))


@attrs.frozen
class QuietHours:
    """One role's quiet hours in one school (local wall-clock times)."""

    role: str
    start: dt.time
    end: dt.time
    weekends: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.strftime("%H:%M"),
            "until": self.end.strftime("%H:%M"),
            "weekends": self.weekends,
        }

    @classmethod
    def from_json(cls, role: str, raw: Mapping[str, Any]) -> "QuietHours":
        return cls(
            role=role,
            start=parse_hhmm(str(raw["from"])),
            end=parse_hhmm(str(raw["until"])),
            weekends=bool(raw.get("weekends", False)),
        )


def rules_from_json(raw: Mapping[str, Any] | None) -> tuple[QuietHours, ...]:
    return tuple(QuietHours.from_json(role, v) for role, v in sorted((raw or {}).items()))


def rules_to_json(rules: Iterable[QuietHours]) -> dict[str, Any]:
    return {r.role: r.to_json() for r in rules}


def rule_for(rules: Iterable[QuietHours], roles: Iterable[Role]) -> QuietHours | None:
    """The quiet hours that hold a person's messages: their most specific held role's."""
    by_role = {r.role: r for r in rules}
    held = set(roles)
    for role in HELD_ROLES:
        if role in held and role.value in by_role:
            return by_role[role.value]
    return None


def _weekend(day: dt.date) -> bool:
    return day.weekday() >= 5


def is_quiet(rule: QuietHours, local: dt.datetime) -> bool:
    """Whether ``local`` (the school's wall clock) falls in ``rule``'s quiet hours."""
    if rule.weekends and _weekend(local.date()):
        return True
    now = local.time().replace(second=0, microsecond=0)
    if rule.start == rule.end:
        return False
    if rule.start < rule.end:  # e.g. 13:00–15:00
        return rule.start <= now < rule.end
    return now >= rule.start or now < rule.end  # over midnight, e.g. 21:00–08:00


def quiet_until(rule: QuietHours, local: dt.datetime) -> dt.datetime:
    """When quiet hours that hold at ``local`` end: the next ``until`` on a day that is
    not a quiet weekend (an aware datetime in ``local``'s zone; wall-clock arithmetic,
    so 08:00 stays 08:00 across a daylight-saving change)."""
    candidate = local.replace(hour=rule.end.hour, minute=rule.end.minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += dt.timedelta(days=1)
    while rule.weekends and _weekend(candidate.date()):
        candidate += dt.timedelta(days=1)
    return candidate


def quiet_action(event_type: str, content: Mapping[str, Any], is_state: bool) -> Action:
    """What quiet hours do with this event from a held role in a room of students or
    parents (the table in docs/school-rules.md, tested in tests/test_quiet_hours.py).

    Held: every message-like event — ``m.room.message`` of any kind (replies, threads,
    homework, files), stickers, polls (start and end), anything encrypted (the server
    cannot see what it is), Parta's and any custom event types. Refused: what rings
    (``m.call.invite``, a group call's ring or joining one) and inviting a student or
    parent (the callback checks whom). Passed: state other than those (the roster decides
    who may set it; none notifies), reactions, redactions, votes, the rest of a call,
    and an edit that says it mentions nobody (``m.mentions`` present and empty: Matrix's
    ``.m.rule.suppress_edits`` then silences it, and the legacy body-mention rules are
    off). An edit without ``m.mentions``, or mentioning someone, notifies: held.
    """
    if is_state:
        if event_type in CALL_MEMBERSHIPS and content:
            return REFUSE_CALL
        if event_type == "m.room.member" and content.get("membership") == "invite":
            return REFUSE_INVITE
        return PASS
    if event_type in CALL_RINGS:
        return REFUSE_CALL
    if event_type in PASSING or event_type.startswith(PASSING_PREFIXES):
        return PASS
    if event_type != "m.room.encrypted" and is_silent_edit(content):
        return PASS
    return HOLD


def is_silent_edit(content: Mapping[str, Any]) -> bool:
    """An edit (``m.replace``) whose ``m.mentions`` says it mentions nobody."""
    relates = content.get("m.relates_to")
    if not (isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace"):
        return False
    mentions = content.get("m.mentions")
    return (
        isinstance(mentions, Mapping) and not mentions.get("user_ids") and not mentions.get("room")
    )


def is_urgent(content: Mapping[str, Any]) -> bool:
    """«срочно: …» (or ``org.parta.urgent: true``): the sender asks to send it now."""
    if content.get(URGENT) is True:
        return True
    body = content.get("body")
    if not isinstance(body, str):
        return False
    first = body.lstrip(" !*\n").casefold()
    return any(
        first.startswith(word) and not first[len(word) : len(word) + 1].isalpha()
        for word in URGENT_WORDS
    )


def is_held_reader(roles: Iterable[Role]) -> bool:
    """Whom quiet hours keep messages from: a school's students and parents (not a
    parent who is also its staff: a colleague)."""
    held = set(roles)
    return bool(held & {Role.STUDENT, Role.PARENT}) and not held & set(HELD_ROLES)


def may_send_urgent(roles: Iterable[Role]) -> bool:
    """Only a school's administrators override quiet hours."""
    return Role.ADMINISTRATOR in set(roles)
