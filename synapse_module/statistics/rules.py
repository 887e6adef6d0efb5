"""Statistics as pure arithmetic, table-tested in ``tests/test_statistics.py``: a day's
bounds in the region's time zone, one day's figures of each school from what the
roster, Synapse and the other features answered, totals, shares and the period asked."""

import datetime
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

import attrs

from parta_common.messages import Message

# The longest period one request covers (a school year and a bit).
MAX_DAYS: Final = 400
# How far back the daily job fills days it missed (the server was down).
CATCH_UP_DAYS: Final = 31
# A class chat is active with a message in this many days up to the day.
ACTIVE_DAYS: Final = 7
DAY_MS: Final = 86_400_000

BAD_PERIOD: Final = Message("statistics.bad_period")
PERIOD_TOO_LONG: Final = Message("statistics.period_too_long")

ROLES: Final = ("teacher", "student", "parent")


class SchoolLike(Protocol):
    """What statistics read of a school (the roster's ``School``)."""

    @property
    def school_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def unit_id(self) -> str | None: ...
    @property
    def created_ts(self) -> int: ...


@attrs.frozen
class Figures:
    """One school's figures of one day (a row of ``parta_stats_daily``), or a sum."""

    teachers: int = 0
    teachers_registered: int = 0
    teachers_signed_in: int = 0
    students: int = 0
    students_registered: int = 0
    students_signed_in: int = 0
    parents: int = 0
    parents_registered: int = 0
    parents_signed_in: int = 0
    classes: int = 0
    active_classes: int = 0
    messages: int = 0
    senders: int = 0
    lessons: int = 0
    lesson_minutes: int = 0
    lesson_attendees: int = 0
    broadcasts: int = 0
    viewers: int = 0

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(
            *(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True))
        )


FIELDS: Final = tuple(a.name for a in attrs.fields(Figures))
# Figures of the roster: a period's value is its last day's, not a sum over days.
STANDING: Final = (
    *(f"{r}s{s}" for r in ROLES for s in ("", "_registered", "_signed_in")),
    "classes",
    "active_classes",
)
# Figures of activity: a period's value is the sum over its days.
ACTIVITY: Final = tuple(f for f in FIELDS if f not in STANDING)


def day_bounds(day: datetime.date, tz: zoneinfo.ZoneInfo) -> tuple[int, int]:
    """``[start, end)`` of a calendar day in ``tz``, in ms since the epoch."""
    start = datetime.datetime.combine(day, datetime.time(), tz)
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def day_of(ms: int, tz: zoneinfo.ZoneInfo) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms / 1000, tz).date()


def parse_period(
    raw_from: str | None, raw_to: str | None, today: datetime.date
) -> tuple[datetime.date, datetime.date] | Message:
    """The period a request asks for (default: the 30 days up to today), or why not."""
    try:
        end = datetime.date.fromisoformat(raw_to) if raw_to else today
        start = datetime.date.fromisoformat(raw_from) if raw_from else end - datetime.timedelta(29)
    except ValueError:
        return BAD_PERIOD
    if start > end:
        return BAD_PERIOD
    if (end - start).days + 1 > MAX_DAYS:
        return PERIOD_TOO_LONG
    return start, end


def days(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    return [start + datetime.timedelta(n) for n in range((end - start).days + 1)]


@attrs.frozen
class DayInputs:
    """What one day's figures are made of, for many schools at once."""

    # (school, role, user, has taken up the account) for everyone on the rosters
    people: Iterable[tuple[str, str, str, bool]]
    # who had been seen signed in by the day's end
    signed_in: frozenset[str]
    # room → school, and the class chats (room → class) of classes not archived
    room_school: Mapping[str, str]
    class_chats: Mapping[str, str]
    # (room, sender, messages) of the day
    messages: Iterable[tuple[str, str, int]]
    # class chats with a message in the ACTIVE_DAYS up to the day's end
    active_rooms: Iterable[str]
    # (room, minutes, people) per lesson started that day
    lessons: Iterable[tuple[str, int, int]]
    # (room, viewer links) per broadcast created that day
    broadcasts: Iterable[tuple[str, int]]


def day_figures(school_ids: Iterable[str], inputs: DayInputs) -> dict[str, Figures]:
    """Each school's figures of one day."""
    out: dict[str, dict[str, int]] = {s: dict.fromkeys(FIELDS, 0) for s in school_ids}
    # The hot loop of a region (tens of thousands of people): column names made once.
    # (school, role, user) is the roster's primary key, so nobody comes twice.
    keys = {r: (f"{r}s", f"{r}s_registered", f"{r}s_signed_in") for r in ROLES}
    signed_in = inputs.signed_in
    for school, role, user, claimed in inputs.people:
        figures = out.get(school)
        key = keys.get(role)
        if figures is None or key is None:
            continue
        figures[key[0]] += 1
        # Someone seen signed in has taken up their account, whatever the journal says.
        if user in signed_in:
            figures[key[1]] += 1
            figures[key[2]] += 1
        elif claimed:
            figures[key[1]] += 1
    for room, school in inputs.room_school.items():
        if room in inputs.class_chats and school in out:
            out[school]["classes"] += 1
    for room in set(inputs.active_rooms):
        of = inputs.room_school.get(room)
        if of is not None and of in out and room in inputs.class_chats:
            out[of]["active_classes"] += 1
    senders: dict[str, set[str]] = defaultdict(set)
    for room, sender, count in inputs.messages:
        of = inputs.room_school.get(room)
        if of is not None and of in out:
            out[of]["messages"] += count
            senders[of].add(sender)
    for school, people in senders.items():
        out[school]["senders"] = len(people)
    for room, minutes, present in inputs.lessons:
        of = inputs.room_school.get(room)
        if of is not None and of in out:
            out[of]["lessons"] += 1
            out[of]["lesson_minutes"] += minutes
            out[of]["lesson_attendees"] += present
    for room, links in inputs.broadcasts:
        of = inputs.room_school.get(room)
        if of is not None and of in out:
            out[of]["broadcasts"] += 1
            out[of]["viewers"] += links
    return {s: Figures(**f) for s, f in out.items()}


def period_figures(track: Mapping[datetime.date, Figures]) -> Figures:
    """A period of one school (or a sum of schools): the roster as on its last day, the
    activity summed over its days."""
    if not track:
        return Figures()
    last = track[max(track)]
    summed = dict.fromkeys(ACTIVITY, 0)
    for figures in track.values():
        for name in ACTIVITY:
            summed[name] += getattr(figures, name)
    return Figures(**{**{n: getattr(last, n) for n in STANDING}, **summed})


def share(part: int, whole: int) -> float:
    """A share in percent with one decimal (0 of nobody is 0)."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def per_week(tracks: Iterable[Mapping[datetime.date, Figures]]) -> float:
    """Messages a week of one school's track (or the sum over several schools' tracks):
    each school's messages × 7 / the days it has figures for in the period — the days it
    existed, up to today (counted whole) — so a school that is three days old is not
    averaged over thirty, future days do not count, and a period shorter than a week
    gives its days' rate scaled to seven days. Summed over schools: a region's messages a
    week are its schools' together. Unrounded; a track of no days is 0."""
    total = 0.0
    for track in tracks:
        if track:
            total += sum(f.messages for f in track.values()) * 7 / len(track)
    return total


def derived(figures: Figures, messages_per_week: float) -> dict[str, float]:
    """What a reader wants beside the counts: shares, messages a week (:func:`per_week`),
    the average attendance of a lesson."""
    out: dict[str, float] = {}
    for role in ROLES:
        whole = getattr(figures, f"{role}s")
        out[f"{role}s_registered_share"] = share(getattr(figures, f"{role}s_registered"), whole)
        out[f"{role}s_signed_in_share"] = share(getattr(figures, f"{role}s_signed_in"), whole)
    out["active_classes_share"] = share(figures.active_classes, figures.classes)
    out["messages_per_week"] = round(messages_per_week, 1)
    out["average_attendance"] = (
        round(figures.lesson_attendees / figures.lessons, 1) if figures.lessons else 0.0
    )
    return out
