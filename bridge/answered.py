"""Each command answered exactly once, including those the bot did not see arrive.

Element creates a direct chat and sends the first message at once; the bot joins a moment
later and the push of that message came while it was not yet in the room. A restart loses
what arrived while the bot was down. So on joining a room, and at start, the bot reads the
room's latest events and takes up the commands after its own last word; every command it
takes up is recorded here first, so the live push, a redelivered transaction and a
catch-up never answer twice.
"""

import time
from collections.abc import Sequence
from typing import Any

from mautrix.util.async_db import Database

# How far back a catch-up reads, and the oldest command it still answers.
CATCH_UP_EVENTS = 30
CATCH_UP_MAX_AGE_MS = 24 * 3600 * 1000
KEEP_MS = 30 * 24 * 3600 * 1000
# The field of the bot's answers naming the event they answer (beside the m.in_reply_to).
ANSWERS_FIELD = "org.parta.answers"


def to_catch_up(
    newest_first: Sequence[Any], bot: str, now_ms: int, max_age_ms: int = CATCH_UP_MAX_AGE_MS
) -> list[Any]:
    """The messages of others after the bot's last message, oldest first.

    ``newest_first`` is a page of room events from ``/messages?dir=b``. Reading stops at the
    bot's own latest message (it was answering by then: what came before was seen), and at
    messages older than ``max_age_ms`` (a room the bot has never spoken in may be old).
    """
    found: list[Any] = []
    for event in newest_first:
        if str(event.type) != "m.room.message":
            continue
        if event.sender == bot:
            break
        if now_ms - int(event.timestamp) > max_age_ms:
            break
        found.append(event)
    found.reverse()
    return found


class AnsweredEvents:
    """The events the bot has taken up, in its database."""

    def __init__(self, db: Database):
        self.db = db

    async def claim(self, event_id: str, room_id: str) -> bool:
        """Record ``event_id`` as taken up; ``False`` when it was already."""
        row = await self.db.fetchrow(
            "INSERT INTO answered_event (event_id, room_id, answered_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            event_id,
            room_id,
            int(time.time() * 1000),
        )
        return row is not None

    async def prune(self, keep_ms: int = KEEP_MS) -> None:
        await self.db.execute(
            "DELETE FROM answered_event WHERE answered_at < $1",
            int(time.time() * 1000) - keep_ms,
        )
