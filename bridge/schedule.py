"""Scheduled announcements and homework reminders, delivered exactly once.

A message is a row in ``scheduled_message``. Delivery:

1. claim: ``pending → claimed`` in one UPDATE, so two loops (or two bot processes)
   never both take a row;
2. look in the room for the message (the sender's latest messages, for content
   ``org.parta.schedule_id`` = ``parta-sched-<id>``): if it is there, it was sent before
   a crash and is only marked;
3. otherwise send as the person who scheduled it, with the transaction id
   ``parta-sched-<id>`` also carried in the content. The homeserver's transaction cache
   alone is not enough: an application service's txn ids live in Synapse's memory, so a
   homeserver restart between sending and step 4 would let the retry send a copy; step 2
   catches that;
4. mark ``sent`` with the event id.

Quiet hours: nothing is delivered while the school's local clock is inside the quiet
window; a message due then waits until the window ends.
"""

import asyncio
import contextlib
import datetime
import logging
import secrets
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Database

from bridge.config import BridgeConfig, QuietHoursConfig

logger = logging.getLogger(__name__)

# A claimed row not finished after this long is retried (same transaction id).
RETRY_CLAIMED_AFTER_MS = 30_000
MAX_ATTEMPTS = 10


def is_quiet(moment: datetime.datetime, quiet: QuietHoursConfig) -> bool:
    """Whether ``moment`` (timezone-aware) is inside the quiet window."""
    start, end = quiet.window()
    if start == end:
        return False
    local = moment.astimezone(zoneinfo.ZoneInfo(quiet.timezone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def deliver_at(due: datetime.datetime, quiet: QuietHoursConfig) -> datetime.datetime:
    """When a message due at ``due`` goes out: ``due``, or the end of the quiet window."""
    if not is_quiet(due, quiet):
        return due
    tz = zoneinfo.ZoneInfo(quiet.timezone)
    local = due.astimezone(tz)
    _, end = quiet.window()
    day = local.date() if local.time() < end else local.date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, end, tzinfo=tz)


def txn_id_for(message_id: str) -> str:
    return f"parta-sched-{message_id}"


@attrs.frozen
class ScheduledMessage:
    id: str
    kind: str
    school_id: str | None
    room_id: str
    body: str
    due_at: int
    created_by: str
    state: str
    event_id: str | None


# send(room_id, as_user, body, txn_id) -> event_id
Sender = Callable[[str, str, str, str], Awaitable[str]]
# find(room_id, as_user, txn_id) -> the event already in the room with that txn id, or None
Finder = Callable[[str, str, str], Awaitable[str | None]]


class Scheduler:
    """The table of scheduled messages and the loop that delivers them."""

    def __init__(
        self, db: Database, config: BridgeConfig, send: Sender, find: Finder | None = None
    ):
        self._db = db
        self._config = config
        self._send = send
        self._find = find
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def schedule(
        self,
        room_id: str,
        body: str,
        due: datetime.datetime,
        created_by: str,
        school_id: str | None = None,
        kind: str = "announcement",
        wake: bool = True,
    ) -> ScheduledMessage:
        message_id = secrets.token_hex(8)
        due_ms = int(due.timestamp() * 1000)
        await self._db.execute(
            "INSERT INTO scheduled_message (id, kind, school_id, room_id, body, due_at,"
            " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            message_id,
            kind,
            school_id,
            room_id,
            body,
            due_ms,
            created_by,
        )
        if wake:
            self._wake.set()
        return ScheduledMessage(
            message_id, kind, school_id, room_id, body, due_ms, created_by, "pending", None
        )

    def quiet_hours(self, school_id: str | None) -> QuietHoursConfig:
        return self._config.quiet_hours_for(school_id)

    @property
    def reminder_hours(self) -> int:
        return self._config.scheduler.homework_reminder_hours

    async def get(self, message_id: str) -> ScheduledMessage | None:
        row = await self._db.fetchrow(
            "SELECT id, kind, school_id, room_id, body, due_at, created_by, state, event_id"
            " FROM scheduled_message WHERE id=$1",
            message_id,
        )
        return ScheduledMessage(**dict(row)) if row else None

    async def pending_for(self, created_by: str) -> list[ScheduledMessage]:
        rows = await self._db.fetch(
            "SELECT id, kind, school_id, room_id, body, due_at, created_by, state, event_id"
            " FROM scheduled_message WHERE created_by=$1 AND state IN ('pending', 'claimed')"
            " ORDER BY due_at",
            created_by,
        )
        return [ScheduledMessage(**dict(r)) for r in rows]

    async def cancel(self, message_id: str, created_by: str) -> bool:
        rows = await self._db.fetch(
            "UPDATE scheduled_message SET state='cancelled'"
            " WHERE id=$1 AND created_by=$2 AND state='pending' RETURNING id",
            message_id,
            created_by,
        )
        return bool(rows)

    async def run_due(self, now: datetime.datetime | None = None) -> int:
        """Deliver what is due now (outside quiet hours); the number sent."""
        now = now or datetime.datetime.now(datetime.UTC)
        now_ms = int(now.timestamp() * 1000)
        rows = await self._db.fetch(
            "SELECT id, kind, school_id, room_id, body, due_at, created_by, state, event_id"
            " FROM scheduled_message WHERE due_at <= $1 AND attempts < $2 AND"
            " (state='pending' OR (state='claimed' AND claimed_at <= $3)) ORDER BY due_at",
            now_ms,
            MAX_ATTEMPTS,
            now_ms - RETRY_CLAIMED_AFTER_MS,
        )
        sent = 0
        for row in rows:
            message = ScheduledMessage(**dict(row))
            if is_quiet(now, self._config.quiet_hours_for(message.school_id)):
                continue
            if await self._claim(message, now_ms):
                sent += await self._deliver(message)
        return sent

    async def send_now(self, message: ScheduledMessage) -> str | None:
        """Deliver ``message`` at once; the error text when it could not be sent."""
        now_ms = int(time.time() * 1000)
        if not await self._claim(message, now_ms):
            return None
        error: str | None = await self._deliver(message, report=True)
        return error

    async def _claim(self, message: ScheduledMessage, now_ms: int) -> bool:
        claimed = await self._db.fetch(
            "UPDATE scheduled_message SET state='claimed', claimed_at=$1, attempts=attempts+1"
            " WHERE id=$2 AND (state='pending' OR (state='claimed' AND claimed_at <= $3))"
            " RETURNING id",
            now_ms,
            message.id,
            now_ms - RETRY_CLAIMED_AFTER_MS,
        )
        return bool(claimed)

    async def _deliver(self, message: ScheduledMessage, report: bool = False) -> Any:
        txn_id = txn_id_for(message.id)
        try:
            found = None
            if self._find is not None:
                # Sent before a crash (ours or the homeserver's) but not marked: the
                # message is in the room already, carrying its txn id.
                found = await self._find(message.room_id, message.created_by, txn_id)
            if found is not None:
                logger.info("scheduled message %s was already sent as %s", message.id, found)
                event_id = found
            else:
                event_id = await self._send(
                    message.room_id, message.created_by, message.body, txn_id
                )
        except MatrixRequestError as e:
            # Refused (not allowed to post there): retrying will not help.
            logger.warning("scheduled message %s refused: %s", message.id, e)
            await self._db.execute(
                "UPDATE scheduled_message SET state='failed', last_error=$1 WHERE id=$2",
                str(e),
                message.id,
            )
            return str(e.message) if report else 0
        except Exception as e:
            # Stays claimed: retried with the same transaction id after a pause.
            logger.warning("scheduled message %s not delivered: %s", message.id, e)
            await self._db.execute(
                "UPDATE scheduled_message SET last_error=$1 WHERE id=$2", str(e), message.id
            )
            return str(e) if report else 0
        await self._db.execute(
            "UPDATE scheduled_message SET state='sent', sent_at=$1, event_id=$2 WHERE id=$3",
            int(time.time() * 1000),
            event_id,
            message.id,
        )
        logger.info("scheduled message %s sent as %s", message.id, event_id)
        return None if report else 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:
                logger.exception("scheduler tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self._config.scheduler.interval_seconds
                )
