"""Video lessons in Matrix rooms: start, schedule, end, and who attended.

A lesson is a row in ``parta_lessons`` plus, in its room, an ``org.parta.lesson`` state
event (state key = lesson ID) and, while it is live, an Element widget
(``im.vector.modular.widgets``) that opens the lesson page on the SFU. Both events are
sent as the teacher who acts, so the room's timeline says who started and ended the
lesson and the room's own power levels decide whether they may (see docs/lessons.md).

The SFU reports who joined and left (``POST /internal/attendance``, authenticated with
a service token signed with the shared media secret); sessions are kept per lesson and
summed per person in the attendance report, set against the people expected there.
"""

import datetime
import io
import logging
import re
import secrets
import time
import urllib.parse
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import LoggingTransaction, ModuleApi, SynapseRequest
from synapse.module_api.errors import Codes, SynapseError

from parta_common import events, tokens
from parta_common.messages import Message

from .config import MediaConfig
from .content.sanitize import SafeCsvWriter
from .errors import forbidden, not_found
from .http import EMPTY_BODY, json_body, requester_id
from .media_tokens import MEDIA_DISABLED, room_id_from_path
from .query import query_choice
from .room_roles import LESSON_LEADERS, RoomRoles
from .store import rows_as_dicts

if TYPE_CHECKING:
    from . import PartaModule

logger = logging.getLogger(__name__)

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

ONLY_TEACHERS: Final = Message(
    ru="Уроки в этой комнате ведут только учителя и администраторы.",
    en="Only teachers and administrators run lessons in this room.",
)
NOT_A_MEMBER: Final = Message(
    ru="Вы не участник этой комнаты.",
    en="You are not a member of this room.",
)
NO_SUCH_LESSON: Final = Message(
    ru="В этой комнате нет урока «{lesson_id}».",
    en="There is no lesson «{lesson_id}» in this room.",
)
LESSON_ALREADY_LIVE: Final = Message(
    ru="В этой комнате уже идёт урок «{title}»; сначала завершите его.",
    en="Lesson «{title}» is already live in this room; end it first.",
)
LESSON_NOT_SCHEDULED: Final = Message(
    ru="Урок «{title}» уже {status_ru}.",
    en="Lesson «{title}» is already {status_en}.",
)
LESSON_ALREADY_ENDED: Final = Message(
    ru="Урок «{title}» уже завершён.",
    en="Lesson «{title}» has already ended.",
)
BAD_START: Final = Message(
    ru="Время начала должно быть не позже чем через год.",
    en="The start time must be within a year from now.",
)
BAD_SERVICE_TOKEN: Final = Message(
    ru="Служебный токен недействителен.",
    en="The service token is not valid.",
)
LESSON_STARTED_NOTICE: Final = Message(
    ru="Урок «{title}» начался: {url}",
    en="Lesson «{title}» has started: {url}",
)

_STATUS_RU: Final = {SCHEDULED: "запланирован", LIVE: "идёт", ENDED: "завершён"}

_CREATE_BODY: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
        "start": {"type": "integer", "minimum": 0},
        "announce": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_EMPTY_BODY: Final = EMPTY_BODY
_ATTENDANCE_BODY: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "maxItems": MAX_ATTENDANCE_EVENTS,
            "items": {
                "type": "object",
                "required": ["kind", "room_id", "user_id", "session_id", "ts"],
                "properties": {
                    "kind": {"enum": ["join", "leave"]},
                    "room_id": {"type": "string", "pattern": "^!", "maxLength": 255},
                    "user_id": {"type": "string", "pattern": "^@[^:]+:.+", "maxLength": 255},
                    "session_id": {"type": "string", "minLength": 1, "maxLength": 128},
                    "ts": {"type": "integer", "minimum": 0},
                    "display_name": {"type": "string", "maxLength": 256},
                    "role": {"type": "string", "maxLength": 32},
                    "reason": {"type": "string", "maxLength": 32},
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}
# The request schemas, published in the OpenAPI document under these names.
REQUEST_SCHEMAS: Final = {
    "CreateLesson": _CREATE_BODY,
    "AttendanceReport": _ATTENDANCE_BODY,
    "EmptyBody": _EMPTY_BODY,
}
_LESSON_ID: Final = re.compile(r"^[0-9a-f]{16}$")


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

_LESSON_COLUMNS: Final = (
    "lesson_id, room_id, title, status, scheduled_start, started_at, ended_at, "
    "created_by, created_at"
)


def _lesson(row: Sequence[Any]) -> Lesson:
    return Lesson(
        lesson_id=str(row[0]),
        room_id=str(row[1]),
        title=str(row[2]),
        status=str(row[3]),
        scheduled_start=int(row[4]),
        started_at=None if row[5] is None else int(row[5]),
        ended_at=None if row[6] is None else int(row[6]),
        created_by=str(row[7]),
        created_at=int(row[8]),
    )


def _insert_lesson_txn(txn: LoggingTransaction, lesson: Lesson) -> Lesson | None:
    """Insert ``lesson``; when it is live and another lesson is live there, return that."""
    if lesson.status == LIVE:
        live = _live_lesson_txn(txn, lesson.room_id)
        if live is not None:
            return live
    txn.execute(
        f"INSERT INTO parta_lessons ({_LESSON_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attrs.astuple(lesson),
    )
    return None


def _live_lesson_txn(txn: LoggingTransaction, room_id: str) -> Lesson | None:
    txn.execute(
        f"SELECT {_LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ? AND status = ?"
        " ORDER BY started_at DESC",
        (room_id, LIVE),
    )
    row = txn.fetchone()
    return _lesson(row) if row else None


def _get_lesson_txn(txn: LoggingTransaction, room_id: str, lesson_id: str) -> Lesson | None:
    txn.execute(
        f"SELECT {_LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ? AND lesson_id = ?",
        (room_id, lesson_id),
    )
    row = txn.fetchone()
    return _lesson(row) if row else None


def _list_lessons_txn(txn: LoggingTransaction, room_id: str) -> list[Lesson]:
    txn.execute(
        f"SELECT {_LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ?"
        " ORDER BY scheduled_start DESC, created_at DESC",
        (room_id,),
    )
    return [_lesson(r) for r in txn.fetchall()]


def _delete_lesson_txn(txn: LoggingTransaction, lesson_id: str) -> None:
    txn.execute("DELETE FROM parta_lessons WHERE lesson_id = ?", (lesson_id,))


def _set_status_txn(
    txn: LoggingTransaction, lesson: Lesson, expected: str, new: Lesson
) -> Lesson | None:
    """Move ``lesson`` from ``expected`` to ``new``'s status; the conflicting lesson if any."""
    if new.status == LIVE:
        live = _live_lesson_txn(txn, lesson.room_id)
        if live is not None and live.lesson_id != lesson.lesson_id:
            return live
    txn.execute(
        "UPDATE parta_lessons SET status = ?, started_at = ?, ended_at = ?"
        " WHERE lesson_id = ? AND status = ?",
        (new.status, new.started_at, new.ended_at, lesson.lesson_id, expected),
    )
    if txn.rowcount != 1:
        current = _get_lesson_txn(txn, lesson.room_id, lesson.lesson_id)
        return current if current is not None else lesson
    return None


def _record_attendance_txn(txn: LoggingTransaction, reports: list[dict[str, Any]]) -> int:
    """Store joins and leaves per room; a repeated report changes nothing."""
    recorded = 0
    for report in reports:
        room_id, user_id, session_id = report["room_id"], report["user_id"], report["session_id"]
        if report["kind"] == "join":
            txn.execute(
                "INSERT INTO parta_room_sessions"
                " (room_id, user_id, session_id, display_name, joined_at, left_at)"
                " VALUES (?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (room_id, user_id, session_id, joined_at) DO NOTHING",
                (room_id, user_id, session_id, report.get("display_name"), report["ts"]),
            )
            recorded += max(txn.rowcount, 0)
            continue
        # A leave closes the latest open session of that connection (participant ids
        # start again when the SFU restarts).
        txn.execute(
            "SELECT MAX(joined_at) FROM parta_room_sessions WHERE room_id = ? AND user_id = ?"
            " AND session_id = ? AND left_at IS NULL AND joined_at <= ?",
            (room_id, user_id, session_id, report["ts"]),
        )
        row = txn.fetchone()
        if row is None or row[0] is None:
            continue
        txn.execute(
            "UPDATE parta_room_sessions SET left_at = ? WHERE room_id = ? AND user_id = ?"
            " AND session_id = ? AND joined_at = ? AND left_at IS NULL",
            (report["ts"], room_id, user_id, session_id, row[0]),
        )
        recorded += max(txn.rowcount, 0)
    return recorded


def _sessions_txn(
    txn: LoggingTransaction, room_id: str, start: int, end: int | None
) -> list[Session]:
    """The room's sessions that overlap ``[start, end)`` (no end: still live), clipped."""
    txn.execute(
        "SELECT user_id, display_name, joined_at, left_at FROM parta_room_sessions"
        " WHERE room_id = ? AND joined_at < ? AND (left_at IS NULL OR left_at > ?)"
        " ORDER BY joined_at",
        (room_id, end if end is not None else 2**62, start),
    )
    sessions = []
    for row in rows_as_dicts(txn):
        left = row["left_at"]
        sessions.append(
            Session(
                user_id=row["user_id"],
                display_name=row["display_name"],
                joined_at=max(int(row["joined_at"]), start),
                left_at=None if left is None or (end is not None and left >= end) else int(left),
            )
        )
    return sessions


# -- the feature ----------------------------------------------------------------------


_ROOM: Final = r"/rooms/([^/]+)"
_LESSON: Final = rf"{_ROOM}/lessons/([^/]+)"


class Lessons:
    """Lessons of a room, their Matrix state, and attendance; registers its routes."""

    # (method, path pattern under BASE_PATH, handler name)
    ROUTES: Final = (
        ("POST", rf"{_ROOM}/lessons", "post_lesson"),
        ("GET", rf"{_ROOM}/lessons", "get_lessons"),
        ("POST", rf"{_LESSON}/start", "post_start"),
        ("POST", rf"{_LESSON}/end", "post_end"),
        ("GET", rf"{_LESSON}/attendance", "get_attendance"),
        ("POST", r"/internal/attendance", "post_attendance"),
    )

    def __init__(
        self,
        module: "PartaModule",
        api: ModuleApi,
        config: MediaConfig,
        roles: RoomRoles,
        timezone: str,
    ):
        self._module = module
        self._api = api
        self._config = config
        self._roles = roles
        try:
            self._tz: datetime.tzinfo = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            logger.warning("Unknown time zone %r; attendance exports use UTC", timezone)
            self._tz = datetime.UTC
        for method, pattern, handler in self.ROUTES:
            module.resource.route(method, pattern, getattr(self, handler))

    # -- who may --------------------------------------------------------------------

    def _require_enabled(self) -> str:
        if not self._config.enabled or self._config.token_secret is None:
            raise SynapseError(404, MEDIA_DISABLED.format(), Codes.NOT_FOUND)
        return self._config.token_secret

    async def _leader(self, request: SynapseRequest, raw_room_id: str) -> tuple[str, str]:
        """The requester and the room, when the requester runs lessons there (else 403)."""
        self._require_enabled()
        user_id = await requester_id(self._api, request)
        room_id = room_id_from_path(raw_room_id)
        role = await self._roles.role_in_room(user_id, room_id)
        if role not in LESSON_LEADERS:
            raise forbidden(ONLY_TEACHERS if role is not None else NOT_A_MEMBER)
        return user_id, room_id

    async def _lesson(self, room_id: str, lesson_id: str) -> Lesson:
        if not _LESSON_ID.match(lesson_id):
            raise not_found(NO_SUCH_LESSON, lesson_id=lesson_id[:40])
        lesson = await self._module.store.run(
            "parta_get_lesson", _get_lesson_txn, room_id, lesson_id
        )
        if lesson is None:
            raise not_found(NO_SUCH_LESSON, lesson_id=lesson_id)
        return lesson

    # -- URLs and events ------------------------------------------------------------

    def page_url(self, room_id: str, lesson_id: str) -> str:
        """The lesson page on the SFU (``/lesson/{room_id}``, see docs/sfu-protocol.md)."""
        query = urllib.parse.urlencode({"lesson": lesson_id, "hs": self._api.public_baseurl})
        base = self._config.sfu_public_url.rstrip("/")
        return f"{base}/lesson/{urllib.parse.quote(room_id, safe='')}?{query}"

    def lesson_json(self, lesson: Lesson) -> dict[str, Any]:
        """A lesson as the API answers it: with the lesson page's link (as in its state)."""
        return {**lesson.to_json(), "url": self.page_url(lesson.room_id, lesson.lesson_id)}

    def widget_url(self, lesson_id: str) -> str:
        """The widget URL: Element fills in (and URL-encodes) the ``$…`` variables."""
        query = urllib.parse.urlencode({"lesson": lesson_id, "hs": self._api.public_baseurl})
        base = self._config.sfu_public_url.rstrip("/")
        return (
            f"{base}/lesson/$matrix_room_id?{query}&embed=widget&user=$matrix_user_id"
            "&name=$matrix_display_name&lang=$org.matrix.msc2873.client_language"
        )

    def lesson_content(self, lesson: Lesson) -> dict[str, Any]:
        content: dict[str, Any] = {
            "lesson_id": lesson.lesson_id,
            "title": lesson.title,
            "status": lesson.status,
            "start": lesson.scheduled_start,
            "widget_id": lesson.widget_id,
            "url": self.page_url(lesson.room_id, lesson.lesson_id),
        }
        if lesson.started_at is not None:
            content["started_at"] = lesson.started_at
        if lesson.ended_at is not None:
            content["ended_at"] = lesson.ended_at
        return content

    def widget_content(self, lesson: Lesson) -> dict[str, Any]:
        return {
            "type": "m.custom",
            "url": self.widget_url(lesson.lesson_id),
            "name": f"Урок: {lesson.title}",
            "id": lesson.widget_id,
            "creatorUserId": lesson.created_by,
            "waitForIframeLoad": True,
            "data": {"title": lesson.title, "lesson_id": lesson.lesson_id},
        }

    async def _send_state(
        self, room_id: str, sender: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        await self._api.create_and_send_event_into_room(
            {
                "type": event_type,
                "room_id": room_id,
                "sender": sender,
                "state_key": state_key,
                "content": content,
            }
        )

    async def _publish(self, lesson: Lesson, sender: str, announce: bool = False) -> None:
        """Send the lesson's state, and add (live) or remove (ended) its widget."""
        await self._send_state(
            lesson.room_id, sender, events.LESSON, lesson.lesson_id, self.lesson_content(lesson)
        )
        if lesson.status == LIVE:
            await self._send_state(
                lesson.room_id,
                sender,
                WIDGET,
                lesson.widget_id,
                self.widget_content(lesson),
            )
            if announce:
                await self._announce(lesson, sender)
        elif lesson.status == ENDED:
            await self._send_state(lesson.room_id, sender, WIDGET, lesson.widget_id, {})

    async def _announce(self, lesson: Lesson, sender: str) -> None:
        url = self.page_url(lesson.room_id, lesson.lesson_id)
        body = LESSON_STARTED_NOTICE.ru.format(title=lesson.title, url=url)
        await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": lesson.room_id,
                "sender": sender,
                "content": {
                    "msgtype": "m.text",
                    "body": body,
                    events.LESSON: {"lesson_id": lesson.lesson_id},
                },
            }
        )

    # -- REST: lessons --------------------------------------------------------------

    async def post_lesson(
        self, request: SynapseRequest, raw_room_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, room_id = await self._leader(request, raw_room_id)
        body = json_body(request, _CREATE_BODY)
        now = now_ms()
        start = body.get("start", now)
        if start > now + MAX_SCHEDULE_AHEAD_MS:
            raise SynapseError(400, BAD_START.format(), Codes.INVALID_PARAM)
        live = start <= now + START_NOW_WINDOW_MS
        lesson = Lesson(
            lesson_id=secrets.token_hex(8),
            room_id=room_id,
            title=body["title"].strip(),
            status=LIVE if live else SCHEDULED,
            scheduled_start=min(start, now) if live else start,
            started_at=now if live else None,
            ended_at=None,
            created_by=user_id,
            created_at=now,
        )
        conflict = await self._module.store.run("parta_new_lesson", _insert_lesson_txn, lesson)
        if conflict is not None:
            raise SynapseError(
                409, LESSON_ALREADY_LIVE.format(title=conflict.title), Codes.BAD_STATE
            )
        sender = await self._roles.lesson_sender(user_id, room_id)
        try:
            await self._publish(lesson, sender, announce=body.get("announce", True))
        except Exception:
            await self._undo_new(lesson, sender)
            raise
        logger.info("Lesson %s (%s) in %s by %s", lesson.lesson_id, lesson.status, room_id, user_id)
        return 200, self.lesson_json(lesson)

    async def _undo_new(self, lesson: Lesson, sender: str) -> None:
        """Leave nothing half-done when the lesson's events could not all be sent."""
        await self._module.store.run("parta_undo_lesson", _delete_lesson_txn, lesson.lesson_id)
        for event_type, state_key in (
            (WIDGET, lesson.widget_id),
            (events.LESSON, lesson.lesson_id),
        ):
            try:
                state = await self._api.get_room_state(lesson.room_id, [(event_type, state_key)])
                if (event_type, state_key) in state:
                    await self._send_state(lesson.room_id, sender, event_type, state_key, {})
            except Exception as e:
                logger.warning(
                    "Could not undo %s of lesson %s: %s", event_type, lesson.lesson_id, e
                )

    async def get_lessons(
        self, request: SynapseRequest, raw_room_id: str
    ) -> tuple[int, dict[str, Any]]:
        self._require_enabled()
        user_id = await requester_id(self._api, request)
        room_id = room_id_from_path(raw_room_id)
        if await self._roles.role_in_room(user_id, room_id) is None:
            raise forbidden(NOT_A_MEMBER)
        lessons = await self._module.store.run("parta_list_lessons", _list_lessons_txn, room_id)
        return 200, {"lessons": [self.lesson_json(lesson) for lesson in lessons]}

    async def post_start(
        self, request: SynapseRequest, raw_room_id: str, lesson_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, room_id = await self._leader(request, raw_room_id)
        self._empty_body(request)
        lesson = await self._lesson(room_id, lesson_id)
        if lesson.status != SCHEDULED:
            raise SynapseError(
                409,
                LESSON_NOT_SCHEDULED.format(
                    title=lesson.title, status_ru=_STATUS_RU[lesson.status], status_en=lesson.status
                ),
                Codes.BAD_STATE,
            )
        live = attrs.evolve(lesson, status=LIVE, started_at=now_ms())
        await self._move(lesson, live, user_id)
        return 200, self.lesson_json(live)

    async def post_end(
        self, request: SynapseRequest, raw_room_id: str, lesson_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, room_id = await self._leader(request, raw_room_id)
        self._empty_body(request)
        lesson = await self._lesson(room_id, lesson_id)
        if lesson.status == ENDED:
            raise SynapseError(
                409, LESSON_ALREADY_ENDED.format(title=lesson.title), Codes.BAD_STATE
            )
        ended = attrs.evolve(lesson, status=ENDED, ended_at=now_ms())
        await self._move(lesson, ended, user_id)
        return 200, self.lesson_json(ended)

    async def _move(self, lesson: Lesson, new: Lesson, user_id: str) -> None:
        conflict = await self._module.store.run(
            "parta_lesson_status", _set_status_txn, lesson, lesson.status, new
        )
        if conflict is not None:
            if conflict.lesson_id != lesson.lesson_id:
                message = LESSON_ALREADY_LIVE.format(title=conflict.title)
            else:  # someone else moved it first
                message = LESSON_NOT_SCHEDULED.format(
                    title=conflict.title,
                    status_ru=_STATUS_RU.get(conflict.status, conflict.status),
                    status_en=conflict.status,
                )
            raise SynapseError(409, message, Codes.BAD_STATE)
        sender = await self._roles.lesson_sender(user_id, lesson.room_id)
        try:
            await self._publish(new, sender, announce=new.status == LIVE)
        except Exception:
            await self._module.store.run(
                "parta_lesson_status_undo", _set_status_txn, new, new.status, lesson
            )
            raise
        logger.info("Lesson %s is now %s (by %s)", lesson.lesson_id, new.status, user_id)

    @staticmethod
    def _empty_body(request: SynapseRequest) -> None:
        if request.content is not None and request.content.getvalue().strip():
            json_body(request, _EMPTY_BODY)

    # -- attendance -----------------------------------------------------------------

    async def post_attendance(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        """The SFU's join/leave reports, behind a service token (not a Matrix login)."""
        secret = self._require_enabled()
        auth = request.requestHeaders.getRawHeaders(b"Authorization") or []
        raw = auth[0].decode("ascii", errors="replace") if auth else ""
        scheme, _, token = raw.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise tokens.TokenError("no bearer token")
            tokens.verify_service_token(token.strip(), secret, frozenset({tokens.SERVICE_SFU}))
        except tokens.TokenError as e:
            logger.warning("Refused an attendance report: %s", e)
            raise SynapseError(401, BAD_SERVICE_TOKEN.format(), Codes.UNKNOWN_TOKEN) from None
        body = json_body(request, _ATTENDANCE_BODY)
        recorded = await self._module.store.run(
            "parta_attendance", _record_attendance_txn, body["events"]
        )
        return 200, {"recorded": recorded}

    async def get_attendance(
        self, request: SynapseRequest, raw_room_id: str, lesson_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        _, room_id = await self._leader(request, raw_room_id)
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        lesson = await self._lesson(room_id, lesson_id)
        report = await self.report(lesson)
        if fmt == "json":
            return 200, report
        semicolon = (
            query_choice(request, "delimiter", ("comma", "semicolon"), "comma") == "semicolon"
        )
        english = query_choice(request, "lang", ("ru", "en"), "ru") == "en"
        data = self.csv_bytes(report, delimiter=";" if semicolon else ",", english=english)
        _send_file(request, data, "text/csv; charset=utf-8", f"attendance-{lesson_id}.csv")
        return None

    async def report(self, lesson: Lesson) -> dict[str, Any]:
        live = lesson.status == LIVE
        sessions: list[Session] = []
        if lesson.started_at is not None:
            sessions = await self._module.store.run(
                "parta_lesson_sessions",
                _sessions_txn,
                lesson.room_id,
                lesson.started_at,
                lesson.ended_at,
            )
        # Open sessions run to the lesson's end, or while it is live to now (or to the
        # latest time the SFU reported, should its clock run ahead of ours).
        until = lesson.ended_at
        if until is None:
            until = max([now_ms()] + [s.left_at or s.joined_at for s in sessions])
        attendees = summarise(sessions, until, still_open=live)
        present = {a.user_id for a in attendees}
        expected = await self._roles.expected_attendees(lesson.room_id)
        names = await self._roles.display_names(lesson.room_id)
        absent = [
            {"user_id": u, "display_name": names.get(u, u)}
            for u in expected
            if u not in present and u != self._module.service_user_id
        ]
        absent.sort(key=lambda a: (a["display_name"].casefold(), a["user_id"]))
        return {
            "lesson": self.lesson_json(lesson),
            "present": [
                {
                    "user_id": a.user_id,
                    "display_name": names.get(a.user_id, a.display_name),
                    "first_join": a.first_join,
                    "last_leave": a.last_leave,
                    "minutes": a.minutes,
                    "seconds": a.seconds,
                    "sessions": a.sessions,
                }
                for a in attendees
            ],
            "absent": absent,
        }

    def csv_bytes(
        self, report: dict[str, Any], delimiter: str = ",", english: bool = False
    ) -> bytes:
        """The report as CSV, UTF-8 with a BOM so that Excel reads Cyrillic names."""
        out = io.StringIO()
        writer = SafeCsvWriter(out, delimiter=delimiter, lineterminator="\r\n")
        if english:
            writer.writerow(["Name", "Matrix ID", "Status", "First join", "Last leave", "Minutes"])
            here, away = "present", "absent"
        else:
            writer.writerow(
                ["Участник", "Matrix ID", "Статус", "Первый вход", "Последний выход", "Минут"]
            )
            here, away = "присутствовал", "отсутствовал"
        for p in report["present"]:
            writer.writerow(
                [
                    p["display_name"],
                    p["user_id"],
                    here,
                    self._local(p["first_join"]),
                    self._local(p["last_leave"]),
                    p["minutes"],
                ]
            )
        for a in report["absent"]:
            writer.writerow([a["display_name"], a["user_id"], away, "", "", 0])
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def _local(self, ms: int | None) -> str:
        if ms is None:
            return ""
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=self._tz)
        return moment.strftime("%Y-%m-%d %H:%M:%S")


def _send_file(synapse_request: SynapseRequest, data: bytes, content_type: str, name: str) -> None:
    # Twisted's Request methods are untyped.
    request: Any = synapse_request
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type.encode("ascii"))
    request.setHeader(b"Content-Disposition", f'attachment; filename="{name}"'.encode("ascii"))
    request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))
    request.setHeader(b"Access-Control-Allow-Origin", b"*")
    request.setHeader(b"Access-Control-Expose-Headers", b"Content-Disposition")
    request.setHeader(b"Cache-Control", b"no-store")
    request.write(data)
    request.finish()
