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
import secrets
import zoneinfo
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import ModuleApi, SynapseRequest
from synapse.module_api.errors import Codes

from parta_common import events, tokens

from ..config import MediaConfig
from ..content.sanitize import SafeCsvWriter
from ..errors import forbidden, matrix_error, not_found
from ..http import EMPTY_BODY, json_body, requester_id, send_file
from ..media_tokens.rules import room_id_from_path
from ..media_tokens.texts import MEDIA_DISABLED
from ..query import query_choice
from ..room_roles import LESSON_LEADERS, RoomRoles
from ..service_tokens import spend_service_token

if TYPE_CHECKING:
    from .. import PartaModule

from ..requests import request_schemas
from .events import LessonEvents
from .rules import (
    ENDED,
    LESSON_ID,
    LIVE,
    MAX_SCHEDULE_AHEAD_MS,
    SCHEDULED,
    START_NOW_WINDOW_MS,
    STATUS_RU,
    WIDGET,
    Lesson,
    Session,
    now_ms,
    summarise,
)
from .store import (
    delete_lesson_txn,
    get_lesson_txn,
    held_between_txn,
    insert_lesson_txn,
    list_lessons_txn,
    record_attendance_txn,
    sessions_txn,
    set_status_txn,
)
from .texts import (
    BAD_SERVICE_TOKEN,
    BAD_START,
    CSV_ABSENT,
    CSV_HEADER,
    CSV_PRESENT,
    LESSON_ALREADY_ENDED,
    LESSON_ALREADY_LIVE,
    LESSON_NOT_SCHEDULED,
    NO_SUCH_LESSON,
    NOT_A_MEMBER,
    ONLY_TEACHERS,
)

logger = logging.getLogger(__name__)

# The request schemas, in requests.json beside this module (also the OpenAPI's).
REQUEST_SCHEMAS: Final = {**request_schemas(__package__), "EmptyBody": EMPTY_BODY}
CREATE_BODY: Final = REQUEST_SCHEMAS["CreateLesson"]
ATTENDANCE_BODY: Final = REQUEST_SCHEMAS["AttendanceReport"]

_ROOM: Final = r"/rooms/([^/]+)"
_LESSON: Final = rf"{_ROOM}/lessons/([^/]+)"


class Lessons(LessonEvents):
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

    # -- who may --------------------------------------------------------------------

    def _require_enabled(self) -> str:
        if not self._config.enabled or self._config.token_secret is None:
            raise matrix_error(404, Codes.NOT_FOUND, MEDIA_DISABLED)
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
        if not LESSON_ID.match(lesson_id):
            raise not_found(NO_SUCH_LESSON, lesson_id=lesson_id[:40])
        lesson = await self._module.store.run(
            "parta_get_lesson", get_lesson_txn, room_id, lesson_id
        )
        if lesson is None:
            raise not_found(NO_SUCH_LESSON, lesson_id=lesson_id)
        return lesson

    # -- REST: lessons --------------------------------------------------------------

    async def post_lesson(
        self, request: SynapseRequest, raw_room_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, room_id = await self._leader(request, raw_room_id)
        body = json_body(request, CREATE_BODY)
        now = now_ms()
        start = body.get("start", now)
        if start > now + MAX_SCHEDULE_AHEAD_MS:
            raise matrix_error(400, Codes.INVALID_PARAM, BAD_START)
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
        conflict = await self._module.store.run("parta_new_lesson", insert_lesson_txn, lesson)
        if conflict is not None:
            raise matrix_error(409, Codes.BAD_STATE, LESSON_ALREADY_LIVE, title=conflict.title)
        sender = await self._roles.lesson_sender(user_id, room_id)
        try:
            await self._publish(lesson, sender, user_id, announce=body.get("announce", True))
        except Exception:
            await self._undo_new(lesson, sender)
            raise
        logger.info("Lesson %s (%s) in %s by %s", lesson.lesson_id, lesson.status, room_id, user_id)
        return 200, self.lesson_json(lesson)

    async def _undo_new(self, lesson: Lesson, sender: str) -> None:
        """Leave nothing half-done when the lesson's events could not all be sent."""
        await self._module.store.run("parta_undo_lesson", delete_lesson_txn, lesson.lesson_id)
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
        lessons = await self._module.store.run("parta_list_lessons", list_lessons_txn, room_id)
        return 200, {"lessons": [self.lesson_json(lesson) for lesson in lessons]}

    async def post_start(
        self, request: SynapseRequest, raw_room_id: str, lesson_id: str
    ) -> tuple[int, dict[str, Any]]:
        user_id, room_id = await self._leader(request, raw_room_id)
        self._empty_body(request)
        lesson = await self._lesson(room_id, lesson_id)
        if lesson.status != SCHEDULED:
            raise matrix_error(
                409,
                Codes.BAD_STATE,
                LESSON_NOT_SCHEDULED,
                title=lesson.title,
                status_ru=STATUS_RU[lesson.status],
                status_en=lesson.status,
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
            raise matrix_error(409, Codes.BAD_STATE, LESSON_ALREADY_ENDED, title=lesson.title)
        ended = attrs.evolve(lesson, status=ENDED, ended_at=now_ms())
        await self._move(lesson, ended, user_id)
        return 200, self.lesson_json(ended)

    async def _move(self, lesson: Lesson, new: Lesson, user_id: str) -> None:
        conflict = await self._module.store.run(
            "parta_lesson_status", set_status_txn, lesson, lesson.status, new
        )
        if conflict is not None:
            if conflict.lesson_id != lesson.lesson_id:
                raise matrix_error(409, Codes.BAD_STATE, LESSON_ALREADY_LIVE, title=conflict.title)
            # someone else moved it first
            raise matrix_error(
                409,
                Codes.BAD_STATE,
                LESSON_NOT_SCHEDULED,
                title=conflict.title,
                status_ru=STATUS_RU.get(conflict.status, conflict.status),
                status_en=conflict.status,
            )
        sender = await self._roles.lesson_sender(user_id, lesson.room_id)
        try:
            await self._publish(new, sender, user_id, announce=new.status == LIVE)
        except Exception:
            await self._module.store.run(
                "parta_lesson_status_undo", set_status_txn, new, new.status, lesson
            )
            raise
        logger.info("Lesson %s is now %s (by %s)", lesson.lesson_id, new.status, user_id)

    @staticmethod
    def _empty_body(request: SynapseRequest) -> None:
        if request.content is not None and request.content.getvalue().strip():
            json_body(request, EMPTY_BODY)

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
            await spend_service_token(
                self._module.store, token.strip(), secret, frozenset({tokens.SERVICE_SFU})
            )
        except tokens.TokenError as e:
            logger.warning("Refused an attendance report: %s", e)
            raise matrix_error(401, Codes.UNKNOWN_TOKEN, BAD_SERVICE_TOKEN) from None
        body = json_body(request, ATTENDANCE_BODY)
        recorded = await self._module.store.run(
            "parta_attendance", record_attendance_txn, body["events"]
        )
        return 200, {"recorded": recorded}

    async def get_attendance(
        self, request: SynapseRequest, raw_room_id: str, lesson_id: str
    ) -> tuple[int, dict[str, Any]] | None:
        user_id, room_id = await self._leader(request, raw_room_id)
        fmt = query_choice(request, "format", ("json", "csv"), "json")
        lesson = await self._lesson(room_id, lesson_id)
        report = await self.report(lesson)
        # A read of personal data (who was there, when): recorded (docs/privacy.md).
        room = await self._module.roster.get_room(room_id)
        await self._module.roster.audit(
            user_id,
            "attendance.read",
            room.school_id if room is not None else None,
            room_id,
            {"lesson_id": lesson_id, "format": fmt},
        )
        if fmt == "json":
            return 200, report
        semicolon = (
            query_choice(request, "delimiter", ("comma", "semicolon"), "comma") == "semicolon"
        )
        english = query_choice(request, "lang", ("ru", "en"), "ru") == "en"
        data = self.csv_bytes(report, delimiter=";" if semicolon else ",", english=english)
        send_file(request, data, "text/csv; charset=utf-8", f"attendance-{lesson_id}.csv")
        return None

    async def report(self, lesson: Lesson) -> dict[str, Any]:
        live = lesson.status == LIVE
        sessions: list[Session] = []
        if lesson.started_at is not None:
            sessions = await self._module.store.run(
                "parta_lesson_sessions",
                sessions_txn,
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
        lang = "en" if english else "ru"
        writer.writerow(CSV_HEADER.text(lang).split(";"))
        here, away = CSV_PRESENT.text(lang), CSV_ABSENT.text(lang)
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

    async def held_between(self, start: int, end: int, now: int) -> list[tuple[str, int, int]]:
        """Lessons started in ``[start, end)`` (ms): room, minutes, people — the look-up
        statistics use (issue 11), so they never read the lessons' tables."""
        return await self._module.store.run("parta_lessons_held", held_between_txn, start, end, now)
