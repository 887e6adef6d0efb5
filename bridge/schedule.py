"""Scheduled announcements and homework reminders, delivered exactly once.

A message is a row in ``scheduled_message``. Delivery:

0. when the person's command schedules it, the module records it as their post
   (``POST /scheduled_posts``, on their command — the bot cannot post as anyone itself),
   with the id ``parta-sched-<id>`` that the message's content will carry
   (``org.parta.schedule_id``);
1. claim: ``pending → claimed`` in one UPDATE, so two loops (or two bot processes)
   never both take a row;
2. the bot asks the module to send the post (``POST /scheduled_posts/{post_id}/send``, as
   the bot): the module sends it as its author exactly once — a second call, after a
   crash of the bot or of the homeserver, answers with the same event id;
3. mark ``sent`` with the event id.

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
from typing import Any, Protocol

import attrs
from mautrix.util.async_db import Database

from bridge.api import ApiError
from bridge.config import BridgeConfig, QuietHoursConfig
from parta_common.messages import Message

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


SCHEDULED_BEFORE_UPGRADE = Message("bot.scheduled_before_upgrade")


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
    post_id: str | None = None


class Posts(Protocol):
    """The module's scheduled posts (:class:`bridge.api.ModuleClient`)."""

    async def create_post(self, as_user: str, room_id: str, body: str, schedule_id: str) -> str:
        """Record ``as_user``'s post (on their command); its ``post_id``."""

    async def send_post(self, post_id: str) -> str:
        """Send the post as its author, once; the event id."""


COLUMNS = "id, kind, school_id, room_id, body, due_at, created_by, state, event_id, post_id"


class Scheduler:
    """The table of scheduled messages and the loop that delivers them."""

    def __init__(self, db: Database, config: BridgeConfig, posts: Posts):
        self._db = db
        self._config = config
        self._posts = posts
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Other jobs run on each tick after the scheduled messages (the reminders to
        # confirm reading, bridge/reminders.py).
        self.also: list[Callable[[], Awaitable[object]]] = []

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
        """Record the message, first as the person's post in the module (which refuses a
        person the bot does not carry out a command of)."""
        message_id = secrets.token_hex(8)
        due_ms = int(due.timestamp() * 1000)
        post_id = await self._posts.create_post(created_by, room_id, body, txn_id_for(message_id))
        await self._db.execute(
            "INSERT INTO scheduled_message (id, kind, school_id, room_id, body, due_at,"
            " created_by, post_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            message_id,
            kind,
            school_id,
            room_id,
            body,
            due_ms,
            created_by,
            post_id,
        )
        if wake:
            self._wake.set()
        return ScheduledMessage(
            message_id, kind, school_id, room_id, body, due_ms, created_by, "pending", None, post_id
        )

    def quiet_hours(self, school_id: str | None) -> QuietHoursConfig:
        return self._config.quiet_hours_for(school_id)

    @property
    def reminder_hours(self) -> int:
        return self._config.scheduler.homework_reminder_hours

    async def get(self, message_id: str) -> ScheduledMessage | None:
        row = await self._db.fetchrow(
            f"SELECT {COLUMNS} FROM scheduled_message WHERE id=$1",
            message_id,
        )
        return ScheduledMessage(**dict(row)) if row else None

    async def pending_for(self, created_by: str) -> list[ScheduledMessage]:
        rows = await self._db.fetch(
            f"SELECT {COLUMNS} FROM scheduled_message WHERE created_by=$1"
            " AND state IN ('pending', 'claimed') ORDER BY due_at",
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
            f"SELECT {COLUMNS} FROM scheduled_message WHERE due_at <= $1 AND attempts < $2 AND"
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
        try:
            if message.post_id is None:
                raise ApiError.of(403, "M_FORBIDDEN", SCHEDULED_BEFORE_UPGRADE)
            # The module sends it once: after a crash, the same event id again.
            event_id = await self._posts.send_post(message.post_id)
        except ApiError as e:
            if e.status >= 500:
                logger.warning("scheduled message %s not delivered: %s", message.id, e)
                await self._db.execute(
                    "UPDATE scheduled_message SET last_error=$1 WHERE id=$2", str(e), message.id
                )
                return e.error if report else 0
            # Refused (not allowed to post there): retrying will not help.
            logger.warning("scheduled message %s refused: %s", message.id, e)
            await self._db.execute(
                "UPDATE scheduled_message SET state='failed', last_error=$1 WHERE id=$2",
                str(e),
                message.id,
            )
            return e.error if report else 0
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
            for job in (self.run_due, *self.also):
                try:
                    await job()
                except Exception:
                    logger.exception("scheduler tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self._config.scheduler.interval_seconds
                )
