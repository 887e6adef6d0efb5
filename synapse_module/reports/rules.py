"""Where a report goes and what the complaints room is told: pure decisions.

A report made with Matrix's own report call (``POST /rooms/{roomId}/report/{eventId}``,
any client's «Пожаловаться») about a message in a school room goes to that school, to
the room's class when the room belongs to a class; a report from a student (or a parent)
about a message in a room that is not the school's — a stranger's direct chat — goes to
the reporter's own school and class. Anything else stays with the server operator only.
"""

import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ..roster.rules import Person, SchoolRoom

# A report's text in the complaints room is cut to this many characters.
MAX_QUOTED: Final = 1000
# The school-wide complaints room has no class: its key in parta_complaint_rooms.
SCHOOL_WIDE: Final = ""


@attrs.frozen
class Destination:
    """The school, and the class (None: the school as a whole), a report goes to."""

    school_id: str
    class_id: str | None


def destination(room: SchoolRoom | None, reporter: Person) -> Destination | None:
    """Where a report of a message in ``room`` (None: not a school room) by ``reporter``
    goes; None when it concerns no school (it stays with the server operator)."""
    if room is not None and room.school_id is not None:
        return Destination(room.school_id, room.class_id)
    for school_id in sorted(reporter.schools):
        standing = reporter.schools[school_id]
        classes = sorted(standing.learns_in) or sorted(standing.children_classes)
        if classes:
            return Destination(school_id, classes[0])
    return None


def readers(administrators: Iterable[str], homeroom: str | None) -> list[str]:
    """Who is in a complaints room: the administrators and (a class's room) its homeroom
    teacher."""
    people = set(administrators)
    if homeroom:
        people.add(homeroom)
    return sorted(people)


def matrix_to(room_id: str, event_id: str) -> str:
    """A matrix.to link to the event (opens in any client)."""
    quote = urllib.parse.quote
    return f"https://matrix.to/#/{quote(room_id, safe='')}/{quote(event_id, safe='')}"


def quoted_text(content: Mapping[str, Any]) -> str | None:
    """The readable text of a reported event's content, cut to :data:`MAX_QUOTED`; None
    when there is none (encrypted, a picture without a caption, state)."""
    body = content.get("body")
    if not isinstance(body, str) or not body.strip():
        return None
    if len(body) > MAX_QUOTED:
        return body[: MAX_QUOTED - 1] + "…"
    return body


def reason_text(reason: object) -> str | None:
    if not isinstance(reason, str) or not reason.strip():
        return None
    return reason.strip()[:MAX_QUOTED]
