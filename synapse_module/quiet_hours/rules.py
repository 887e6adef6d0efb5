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
from typing import Any, Final

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
# The event types held: messages (text, files, homework, confirmation requests) and polls.
HELD_TYPES: Final = frozenset({"m.room.message", "org.matrix.msc3381.poll.start"})

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


def is_held_message(event_type: str, content: Mapping[str, Any]) -> bool:
    """A message quiet hours hold: a new message or poll, not an edit of one sent before
    (edits notify nobody: Matrix's default push rules suppress them)."""
    if event_type not in HELD_TYPES:
        return False
    relates = content.get("m.relates_to")
    return not (isinstance(relates, Mapping) and relates.get("rel_type") == "m.replace")


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


def may_send_urgent(roles: Iterable[Role]) -> bool:
    """Only a school's administrators override quiet hours."""
    return Role.ADMINISTRATOR in set(roles)
