"""Reminders to confirm reading an announcement, each sent exactly once.

The module decides who is reminded and when (synapse_module/confirmations: the school's
``confirmation_reminder_hours`` after the request, those expected who have not
confirmed); the bot writes to them. For each request the module says is due:

1. the bot writes a row per person (per child, for a request per child) into
   ``confirm_reminder`` — a row already there is kept, so a person is reminded once;
2. it tells the module (``POST /internal/confirmations/reminded``), which records the
   round as done and never lists the request again;
3. each pending row is claimed (``pending → claimed`` in one UPDATE, as scheduled
   messages are), sent in the person's direct chat with the bot (made on the first
   reminder and kept), and marked ``sent``. The message carries
   ``org.parta.reminder_id``: a claimed row retried after a crash first looks for it
   among the chat's latest messages, so a restart between sending and marking does not
   send it twice.
"""

import hashlib
import logging
import time
import urllib.parse
from typing import Any, Final, Protocol

import attrs
from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI
from mautrix.types import RoomCreatePreset, RoomID, UserID
from mautrix.util.async_db import Database

from parta_common import catalogue
from parta_common.messages import Message

logger = logging.getLogger(__name__)

# In the reminder's content: which reminder it is (request, person, child).
REMINDER_ID: Final = "org.parta.reminder_id"
# A claimed row not finished after this long is retried; given up after this many tries.
RETRY_CLAIMED_AFTER_MS: Final = 30_000
MAX_ATTEMPTS: Final = 10
# How far back a retry looks for its own reminder in the direct chat.
FIND_SENT_LIMIT: Final = 50

REMINDER: Final = Message("bot.confirm_reminder")
REMINDER_CHILD: Final = Message("bot.confirm_reminder_child")


class DueConfirmations(Protocol):
    """The module's side (:class:`bridge.api.ModuleClient`)."""

    async def confirmations_due(self) -> list[dict[str, Any]]: ...

    async def confirmations_reminded(
        self, event_id: str, people: list[dict[str, str]]
    ) -> list[dict[str, str]]: ...


@attrs.frozen
class Reminder:
    request_id: str
    user_id: str
    child_id: str
    room_id: str
    language: str
    attempts: int

    @property
    def reminder_id(self) -> str:
        return f"{self.request_id}|{self.user_id}|{self.child_id}"


def message_link(room_id: str, event_id: str) -> str:
    """A matrix.to link to an event, which every client opens."""
    quote = urllib.parse.quote
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}/{quote(event_id, safe='$:')}"


def reminder_content(reminder: Reminder) -> dict[str, Any]:
    """The direct message: the request's link, for the child when per child."""
    link = message_link(reminder.room_id, reminder.request_id)
    language = reminder.language if reminder.language in catalogue.LANGUAGES else "ru"
    if reminder.child_id:
        body = REMINDER_CHILD.text(language, child=reminder.child_id, link=link)
    else:
        body = REMINDER.text(language, link=link)
    return {"msgtype": "m.text", "body": body, REMINDER_ID: reminder.reminder_id}


COLUMNS: Final = "request_id, user_id, child_id, room_id, language, attempts"


class ConfirmationReminders:
    def __init__(self, db: Database, module: DueConfirmations, intent: IntentAPI):
        self._db = db
        self._module = module
        self._intent = intent

    async def run_due(self) -> int:
        """Take up the requests the module says are due, then send what is pending;
        the number sent."""
        for due in await self._module.confirmations_due():
            people = [
                {"user_id": str(p["user_id"]), "child_id": str(p.get("child_id") or "")}
                for p in due.get("people", [])
            ]
            for person in people:
                await self._db.execute(
                    "INSERT INTO confirm_reminder (request_id, user_id, child_id, room_id,"
                    " language) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    due["event_id"],
                    person["user_id"],
                    person["child_id"],
                    due["room_id"],
                    str(due.get("language") or "ru"),
                )
            recorded = await self._module.confirmations_reminded(due["event_id"], people)
            logger.info("reminding %d of %s", len(recorded), due["event_id"])
        return await self.send_pending()

    async def send_pending(self) -> int:
        now_ms = int(time.time() * 1000)
        rows = await self._db.fetch(
            f"SELECT {COLUMNS} FROM confirm_reminder WHERE attempts < $1 AND"
            " (state='pending' OR (state='claimed' AND claimed_at <= $2))",
            MAX_ATTEMPTS,
            now_ms - RETRY_CLAIMED_AFTER_MS,
        )
        sent = 0
        for row in rows:
            reminder = Reminder(**dict(row))
            if await self._claim(reminder, now_ms):
                sent += await self._send(reminder)
        return sent

    async def _claim(self, reminder: Reminder, now_ms: int) -> bool:
        claimed = await self._db.fetch(
            "UPDATE confirm_reminder SET state='claimed', claimed_at=$1, attempts=attempts+1"
            " WHERE request_id=$2 AND user_id=$3 AND child_id=$4 AND (state='pending' OR"
            " (state='claimed' AND claimed_at <= $5)) RETURNING request_id",
            now_ms,
            reminder.request_id,
            reminder.user_id,
            reminder.child_id,
            now_ms - RETRY_CLAIMED_AFTER_MS,
        )
        return bool(claimed)

    async def _send(self, reminder: Reminder) -> int:
        try:
            room_id = await self._direct_room(UserID(reminder.user_id))
            event_id = None
            if reminder.attempts > 0:  # tried before: it may have gone out
                event_id = await self._find_sent(room_id, reminder.reminder_id)
            if event_id is None:
                event_id = await self._put(room_id, reminder)
        except Exception as e:
            # Stays claimed: retried (looking for it first) after a pause.
            logger.warning("reminder %s not sent: %s", reminder.reminder_id, e)
            await self._update("last_error=$4", reminder, str(e))
            return 0
        await self._update("state='sent', event_id=$4", reminder, str(event_id))
        return 1

    async def _update(self, assignment: str, reminder: Reminder, value: str) -> None:
        await self._db.execute(
            f"UPDATE confirm_reminder SET {assignment}"
            " WHERE request_id=$1 AND user_id=$2 AND child_id=$3",
            reminder.request_id,
            reminder.user_id,
            reminder.child_id,
            value,
        )

    async def _direct_room(self, user_id: UserID) -> RoomID:
        return await direct_room(self._db, self._intent, user_id)

    async def _put(self, room_id: RoomID, reminder: Reminder) -> str:
        """Send with a transaction id of its own (a resend within the homeserver's
        memory of it answers with the same event)."""
        txn_id = "parta-remind-" + hashlib.sha256(reminder.reminder_id.encode()).hexdigest()[:32]
        sent = await self._intent.api.request(
            Method.PUT,
            Path.v3.rooms[room_id].send["m.room.message"][txn_id],
            reminder_content(reminder),
        )
        return str(sent["event_id"])

    async def _find_sent(self, room_id: RoomID, reminder_id: str) -> str | None:
        page = await self._intent.api.request(
            Method.GET,
            Path.v3.rooms[room_id].messages,
            query_params={"dir": "b", "limit": str(FIND_SENT_LIMIT)},
        )
        for event in page.get("chunk", []):
            content = event.get("content") or {}
            if event.get("sender") == self._intent.mxid and content.get(REMINDER_ID) == reminder_id:
                return str(event["event_id"])
        return None


async def direct_room(db: Database, intent: IntentAPI, user_id: UserID) -> RoomID:
    """The bot's direct chat with a person: the one kept for them (made, and the person
    invited, on the first reminder; or the chat they asked for an erasure in), else a
    new one, kept for the next message."""
    row = await db.fetchrow("SELECT room_id FROM direct_room WHERE user_id=$1", user_id)
    if row is not None:
        return RoomID(row["room_id"])
    room_id = await intent.create_room(
        preset=RoomCreatePreset.PRIVATE, invitees=[user_id], is_direct=True
    )
    await db.execute(
        "INSERT INTO direct_room (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        user_id,
        room_id,
    )
    # Another bot process made one at the same moment (two reminders of one person,
    # per child): the one stored first is the chat; this one's invitation is taken
    # back and the room left.
    kept = await db.fetchval("SELECT room_id FROM direct_room WHERE user_id=$1", user_id)
    if kept != room_id:
        logger.info("direct chat with %s made twice; keeping %s", user_id, kept)
        await intent.kick_user(room_id, user_id, "")  # the invitation taken back
        await intent.leave_room(room_id)
    return RoomID(str(kept))
