"""Pure lesson decisions and values: statuses, time windows, the lesson, and the
attendance summary (table-tested in tests/test_lessons.py)."""

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs

from parta_common.messages import Message

if TYPE_CHECKING:
    pass


WIDGET: Final = "im.vector.modular.widgets"
WIDGET_LAYOUT: Final = "io.element.widgets.layout"

SCHEDULED: Final = "scheduled"
LIVE: Final = "live"
ENDED: Final = "ended"

# A start time this close to now (or in the past) starts the lesson at once.
START_NOW_WINDOW_MS: Final = 60_000
# How far ahead a lesson may be scheduled.
MAX_SCHEDULE_AHEAD_MS: Final = 366 * 24 * 3600 * 1000
# How many attendance events one report may carry.
MAX_ATTENDANCE_EVENTS: Final = 500

STATUS_RU: Final = {s: Message(f"lessons.status.{s}").ru for s in (SCHEDULED, LIVE, ENDED)}
LESSON_ID: Final = re.compile(r"^[0-9a-f]{16}$")


def now_ms() -> int:
    return int(time.time() * 1000)


@attrs.frozen
class Lesson:
    lesson_id: str
    room_id: str
    title: str
    status: str
    scheduled_start: int
    started_at: int | None
    ended_at: int | None
    created_by: str
    created_at: int

    @property
    def widget_id(self) -> str:
        return f"parta_lesson_{self.lesson_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "lesson_id": self.lesson_id,
            "room_id": self.room_id,
            "title": self.title,
            "status": self.status,
            "start": self.scheduled_start,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "created_by": self.created_by,
            "widget_id": self.widget_id,
        }


@attrs.frozen
class Session:
    user_id: str
    display_name: str | None
    joined_at: int
    left_at: int | None


@attrs.frozen
class Attendee:
    """One person's time in one lesson."""

    user_id: str
    display_name: str
    first_join: int
    last_leave: int | None  # None while they are still in a live lesson
    seconds: int
    sessions: int

    @property
    def minutes(self) -> int:
        return round(self.seconds / 60)


def summarise(sessions: Iterable[Session], until: int, still_open: bool) -> list[Attendee]:
    """Per person: first join, last leave, and time present with overlaps counted once.

    ``until`` closes sessions the SFU never closed: the lesson's end, or now while it
    runs (``still_open``: such a person has no last leave yet).
    """
    by_user: dict[str, list[Session]] = {}
    for s in sessions:
        by_user.setdefault(s.user_id, []).append(s)
    result = []
    for user_id, mine in by_user.items():
        mine.sort(key=lambda s: s.joined_at)
        intervals = [(s.joined_at, s.left_at if s.left_at is not None else until) for s in mine]
        total = 0
        current_start, current_end = intervals[0]
        for start, end in intervals[1:]:
            if start > current_end:
                total += max(0, current_end - current_start)
                current_start, current_end = start, end
            else:
                current_end = max(current_end, end)
        total += max(0, current_end - current_start)
        open_now = still_open and any(s.left_at is None for s in mine)
        last_leave = None if open_now else max(end for _, end in intervals)
        names = [s.display_name for s in mine if s.display_name]
        result.append(
            Attendee(
                user_id=user_id,
                display_name=names[-1] if names else user_id.split(":", 1)[0].lstrip("@"),
                first_join=intervals[0][0],
                last_leave=last_leave,
                seconds=total // 1000,
                sessions=len(mine),
            )
        )
    result.sort(key=lambda a: (a.display_name.casefold(), a.user_id))
    return result


# -- storage --------------------------------------------------------------------------
