"""Reports reach the school: Matrix's report call, forwarded to the class's homeroom
teacher and the school's administrators.

Synapse has no module callback for a report (the spam checker, third-party rules and
account callbacks of Synapse 1.163 see none): ``POST /rooms/{roomId}/report/{eventId}``
checks that the reporter may see the event and stores a row in ``event_reports``. So
the module reads that table on the background process (every
:data:`POLL_SECONDS`, from a cursor in ``parta_report_cursor``) and forwards each new
report: any client's «Пожаловаться» works unchanged, and the server operator still sees
every report in Synapse's admin API.

Each report goes to a complaints room: one per class (its homeroom teacher and the
school's administrators) and one per school (administrators; reports from a school room
of no class). A room per class, not one per school with homeroom teachers invited per
report: a shared room's history would show every teacher the other classes' complaints
about other people's children. The reporter is told in their «Parta» notice room.
"""

import logging
from typing import TYPE_CHECKING, Final

from synapse.module_api import ModuleApi

from ..jobs import runs_background_jobs
from ..requests import request_schemas
from ..roster.rules import RoomKind
from . import rules, texts
from .events import ReportEvents
from .store import (
    Report,
    advance_cursor_txn,
    complaint_room_txn,
    event_txn,
    new_reports_txn,
    notice_room_txn,
    put_complaint_room_txn,
    put_notice_room_txn,
)

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# How often Synapse's event_reports is read; a report reaches the school within this.
POLL_SECONDS: Final = 2
# Reports forwarded per reading at most (the rest at the next).
BATCH: Final = 50

# The request schemas, in requests.json beside this module (none yet).
REQUEST_SCHEMAS: Final = request_schemas(__package__)


class Reports(ReportEvents):
    """Forwards Matrix reports to the school's complaints rooms."""

    ROUTES: Final[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self, module: "PartaModule", api: ModuleApi):
        super().__init__(api, module.service_user_id)
        self._module = module
        self._busy = False
        self.active = runs_background_jobs(api.worker_name, module.config.background_worker)
        if self.active:
            api.looping_background_call(
                self.forward_new_reports, POLL_SECONDS * 1000, desc="parta_forward_reports"
            )

    async def forward_new_reports(self) -> int:
        """Forward the reports stored since the cursor; how many were read."""
        if self._busy:  # the previous reading is still at work
            return 0
        self._busy = True
        try:
            _, reports = await self._module.store.run("parta_new_reports", new_reports_txn, BATCH)
            for report in reports:
                try:
                    await self.forward(report)
                except Exception:  # one report that fails must not hold up the others
                    logger.exception("Could not forward report %s", report.report_id)
                await self._module.store.run(
                    "parta_report_cursor", advance_cursor_txn, report.report_id
                )
            return len(reports)
        finally:
            self._busy = False

    async def forward(self, report: Report) -> str | None:
        """Post one report into its complaints room; the room, or None when the report
        concerns no school."""
        roster = self._module.roster
        room = await roster.get_room(report.room_id)
        reporter = await roster.get_person(report.user_id)
        where = rules.destination(room, reporter)
        if where is None:
            logger.info("Report %s concerns no school; left to the operator", report.report_id)
            return None
        complaints = await self._complaints_room(where)
        event = await self._module.store.run("parta_reported_event", event_txn, report.event_id)
        content = event.get("content") if event else None
        sender = event.get("sender") if event else None
        quoted = rules.quoted_text(content if isinstance(content, dict) else {})
        room_name = await self.room_name(report.room_id)
        if room is None or room.school_id is None:
            room_label = texts.DIRECT_CHAT.text("ru")
        else:
            room_label = room_name or report.room_id
        link = rules.matrix_to(report.room_id, report.event_id)
        lines = [
            texts.HEADING.text("ru", reporter=report.user_id),
            texts.WHERE.text("ru", room=room_label),
            texts.SENDER.text("ru", sender=sender or "?"),
            texts.TEXT.text("ru", text=quoted) if quoted else texts.NO_TEXT.text("ru"),
        ]
        reason = rules.reason_text(report.reason)
        if reason:
            lines.append(texts.REASON.text("ru", reason=reason))
        lines.append(texts.LINK.text("ru", link=link))
        await self.notice(
            complaints,
            "\n".join(lines),
            {
                "org.parta.report": {
                    "reporter": report.user_id,
                    "room_id": report.room_id,
                    "event_id": report.event_id,
                    "sender": sender,
                    "school_id": where.school_id,
                    "class_id": where.class_id,
                }
            },
        )
        await self._confirm(report.user_id)
        return complaints

    async def _complaints_room(self, where: rules.Destination) -> str:
        """The destination's complaints room, made on its first report, with exactly its
        readers in it (administrators and homeroom teachers change)."""
        roster = self._module.roster
        key = where.class_id or rules.SCHOOL_WIDE
        homeroom = None
        name = texts.COMPLAINTS_ROOM.text("ru")
        if where.class_id:
            school_class = await roster.school_class(where.school_id, where.class_id)
            homeroom = school_class.homeroom_user_id
            name = texts.COMPLAINTS_ROOM_OF_CLASS.text("ru", class_title=school_class.title)
        readers = rules.readers(await roster.administrators(where.school_id), homeroom)
        room_id = await self._module.store.run(
            "parta_complaint_room", complaint_room_txn, where.school_id, key
        )
        if room_id is None:
            rooms = await roster.school_wide_rooms(where.school_id)
            room_id = await self.create_complaints_room(rooms.get(RoomKind.SCHOOL_SPACE), name)
            await self._module.store.run(
                "parta_put_complaint_room", put_complaint_room_txn, where.school_id, key, room_id
            )
        present = await self.members(room_id)
        for user_id in readers:
            if user_id not in present:
                await self.put_in(room_id, user_id)
        for user_id in present - set(readers):
            await self.take_out(room_id, user_id)
        return room_id

    async def _confirm(self, reporter: str) -> None:
        await self.tell(reporter, texts.RECEIVED.format())

    async def tell(self, user_id: str, body: str) -> None:
        """A notice to ``user_id`` in their «Parta» room from the service account (made on
        the first notice, kept for the next; quiet hours tell teachers there too)."""
        room_id = await self._module.store.run("parta_notice_room", notice_room_txn, user_id)
        if room_id is None:
            room_id = await self.create_notice_room(user_id)
            await self._module.store.run(
                "parta_put_notice_room", put_notice_room_txn, user_id, room_id
            )
        await self.notice(room_id, body)
