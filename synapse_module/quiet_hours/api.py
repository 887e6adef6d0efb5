"""Quiet hours: a teacher's held messages (``GET /me/held_messages``), and their
delivery when the quiet hours end.

Why held and not delivered with pushes suppressed (docs/school-rules.md, "Quiet hours"):
Synapse lets a module refuse or rewrite an event before it is stored, not change whom
it notifies — the push rules are each reader's own, and the one server-side rule that
silences a message for every client (``.m.rule.suppress_notices``) needs it turned into
an ``m.notice``, which clients show greyed as a bot's and no one is reminded of in the
morning. A held message reaches the parent at 08:00 with an ordinary push.

Delivery, on the process that runs background jobs, every :data:`RELEASE_SECONDS`: each
message whose time has come is sent as its author, exactly once — marked
``sending_at`` before the send, its content carrying ``org.parta.held_id``, so a send
after a crash first looks for it among the author's latest events (as scheduled posts
do). A message the room refuses by then (the author left the class) is kept with the
reason and the author is told; nothing is dropped silently.
"""

import logging
import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest
from synapse.module_api.errors import SynapseError

from ..http import requester_id
from ..jobs import runs_background_jobs
from ..requests import request_schemas
from ..sent_once import find_sent_txn
from . import rules, texts
from .callbacks import QuietHoursCallbacks
from .store import due_txn, failed_txn, mark_sending_txn, of_sender_txn, sent_txn

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# The request schemas, in requests.json beside this module (none: the route is a GET).
REQUEST_SCHEMAS: Final = request_schemas(__package__)
# How often held messages are looked at: a message arrives within this after 08:00.
RELEASE_SECONDS: Final = 5
# Messages sent per look at most (the rest at the next).
BATCH: Final = 100
# How many of a person's held messages the list shows.
LIST_LIMIT: Final = 200


class QuietHoursFeature(QuietHoursCallbacks):
    ROUTES: Final = (("GET", r"/me/held_messages", "get_held_messages"),)

    def __init__(self, module: "PartaModule"):
        super().__init__(module)
        self._busy = False
        if runs_background_jobs(self._api.worker_name, module.config.background_worker):
            self._api.looping_background_call(
                self.release_due, RELEASE_SECONDS * 1000, desc="parta_release_held"
            )

    async def get_held_messages(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        user_id = await requester_id(self._api, request)
        rows = await self._module.store.run("parta_held_of", of_sender_txn, user_id, LIST_LIMIT)
        return 200, {"held": rows}

    async def release_due(self) -> int:
        """Send every held message whose quiet hours have ended; how many were sent."""
        if self._busy:
            return 0
        self._busy = True
        try:
            now = self.clock.now_ms()
            due = await self._module.store.run("parta_held_due", due_txn, now, BATCH)
            sent = 0
            for row in due:
                try:
                    await self._release(row)
                    sent += 1
                except SynapseError as e:
                    await self._give_up(row, str(e.msg))
                except Exception:  # the next look tries again
                    logger.exception("Parta could not send held message %s", row["held_id"])
            return sent
        finally:
            self._busy = False

    async def _release(self, row: dict[str, Any]) -> None:
        held_id = row["held_id"]
        store = self._module.store
        if row["sending_at"] is not None:
            found = await self._api.run_db_interaction(
                "parta_held_find",
                find_sent_txn,
                row["room_id"],
                row["sender"],
                rules.HELD_ID,
                held_id,
                row["event_type"],
            )
            if found is not None:
                await store.run("parta_held_sent", sent_txn, held_id, found, _now())
                return
        await store.run("parta_held_sending", mark_sending_txn, held_id, _now())
        self._releasing.add(held_id)
        try:
            event = await self._api.create_and_send_event_into_room(
                {
                    "type": row["event_type"],
                    "room_id": row["room_id"],
                    "sender": row["sender"],
                    "content": {**row["content"], rules.HELD_ID: held_id},
                }
            )
        finally:
            self._releasing.discard(held_id)
        await store.run("parta_held_sent", sent_txn, held_id, event.event_id, _now())
        logger.info("Sent held message %s as %s", held_id, event.event_id)

    async def _give_up(self, row: dict[str, Any], reason: str) -> None:
        logger.warning("Held message %s refused on delivery: %s", row["held_id"], reason)
        await self._module.store.run("parta_held_failed", failed_txn, row["held_id"], reason)
        room = row["room_id"]
        await self._module.reports.tell(
            row["sender"], texts.NOT_DELIVERED.format(room=room, reason=reason)
        )


def _now() -> int:
    return int(time.time() * 1000)
