"""Retention: how long a school keeps each kind of data, applied by the job ``retention``.

Rooms (class chats, parents chats, announcements, the staff room) get ``m.room.retention``
with ``max_lifetime`` from the school's rule, sent by the service account when it differs;
Synapse's own purge jobs (``retention:`` in homeserver.yaml, on in the generated config)
then delete older events and their media. What lives only in the module's tables
(attendance) is deleted here. The clock is the caller's (the job passes now; tests pass
their own), so a test needs no sleeping.
"""

import logging
from typing import TYPE_CHECKING

from . import store as db
from .rules import RETENTION_ROOM_KINDS, retention_content, retention_cutoff

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

RETENTION_EVENT = "m.room.retention"


class Retention:
    def __init__(self, module: "PartaModule"):
        self._module = module
        self._api = module.api

    async def apply_all(self) -> str:
        """The background job ``retention``: every school's rules, at the current time."""
        now = self._api.get_current_time_msec()
        schools = await self._module.store.run(
            "parta_retention_schools", db.schools_with_retention_txn
        )
        rooms = rows = 0
        for school_id in schools:
            changed = await self.apply(school_id, now)
            rooms += changed["rooms_changed"]
            rows += changed["attendance_removed"]
        return f"{len(schools)} schools: {rooms} rooms' rules set, {rows} attendance rows removed"

    async def apply(self, school_id: str, now: int) -> dict[str, int]:
        rules = await self._module.store.run("parta_retention", db.retention_txn, school_id)
        school_rooms = await self._module.roster.rooms_of_school(school_id)
        changed = 0
        for room in school_rooms:
            days = rules.get(str(room.kind))
            if days is None or str(room.kind) not in RETENTION_ROOM_KINDS:
                continue
            content = retention_content(days)
            state = await self._api.get_room_state(room.room_id, [(RETENTION_EVENT, "")])
            current = state.get((RETENTION_EVENT, ""))
            if current is not None and dict(current.content) == content:
                continue
            await self._api.create_and_send_event_into_room(
                {
                    "type": RETENTION_EVENT,
                    "room_id": room.room_id,
                    "sender": self._module.service_user_id,
                    "state_key": "",
                    "content": content,
                }
            )
            changed += 1
        removed = 0
        if "attendance" in rules:
            removed = await self._module.store.run(
                "parta_retention_attendance",
                db.purge_attendance_txn,
                [r.room_id for r in school_rooms],
                retention_cutoff(now, rules["attendance"]),
            )
        if changed or removed:
            logger.info(
                "Retention in %s: %d rooms' rules set, %d attendance rows removed",
                school_id,
                changed,
                removed,
            )
        return {"rooms_changed": changed, "attendance_removed": removed}
