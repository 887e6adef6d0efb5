"""Retention: how long a school keeps each kind of data, applied by the job ``retention``.

Rooms (class chats, parents chats, announcements, the staff room) get ``m.room.retention``
with ``max_lifetime`` from the school's rule, sent by the service account when it differs;
Synapse's own purge jobs (``retention:`` in homeserver.yaml, on in the generated config)
then delete older events. A class archived at the end of the year keeps its rooms'
rules (they are set again at once, :meth:`Retention.class_archived`). What the module
deletes itself, by the school's rule or else the operator's limit:

* ``attendance`` — lesson sessions that ended before the rule;
* ``recordings`` — a broadcast's recording posted before the rule: its message redacted
  by whoever sent it (the service account in a school's rooms, the broadcast's creator
  elsewhere), its media deleted through Synapse's admin API. A recording of no school
  (``broadcasts.rules.recording_school``) goes by the operator's limit, in the job;
* ``audit`` — the front of the audit log's one cross-school hash chain, as far as every
  entry's own school's rule lets it go (``store.trim_audit_txn``), with an anchor that
  ``verify`` starts from.

"Now" is the module's clock (``synapse_module.clock``: a test sets it, so nothing
sleeps); what is measured against it (a session's end, a recording's event, an audit
entry) keeps its real time.
"""

import logging
from typing import TYPE_CHECKING, Any

from synapse.module_api.errors import SynapseError

from ..clock import Clock, clock_from_environment
from ..roster.rules import SchoolRoom
from . import store as db
from .admin import admin_session
from .rules import RETENTION_ROOM_KINDS, retention_content, retention_cutoff

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

RETENTION_EVENT = "m.room.retention"


class Retention:
    def __init__(self, module: "PartaModule", clock: Clock | None = None):
        self._module = module
        self._api = module.api
        self.clock: Clock = clock or clock_from_environment()

    def now(self) -> int:
        return self.clock.now_ms()

    async def apply_all(self) -> str:
        """The background job ``retention``: every school's rules, then the audit log."""
        now = self.now()
        schools = [s.school_id for s in await self._module.roster.all_schools()]
        totals = {"rooms_changed": 0, "attendance_removed": 0, "recordings_removed": 0}
        for school_id in schools:
            changed = await self.apply(school_id, now)
            for key in totals:
                totals[key] += changed[key]
        unowned = await self.apply_unowned(now)
        trimmed = await self.trim_audit(now, self._module.service_user_id)
        return (
            f"{len(schools)} schools: {totals['rooms_changed']} rooms' rules set,"
            f" {totals['attendance_removed']} attendance rows,"
            f" {totals['recordings_removed']} recordings, {trimmed} audit entries removed;"
            f" {unowned} recordings of no school removed"
        )

    async def apply_unowned(self, now: int) -> int:
        """Recordings of no school (a coordinator's broadcast, one in a unit's room, one
        whose creator is on the staff of several schools or none): the operator's limit.
        Audited (``retention.apply``, no school) when one went."""
        limit = self._module.config.privacy.retention_limits.recordings
        removed = await self._remove_recordings(None, retention_cutoff(now, limit))
        if removed:
            details = {"recordings_removed": removed, "limit_days": limit}
            who = self._module.service_user_id
            await self._module.roster.audit(who, "retention.apply", None, None, details)
            logger.info("Retention: %d recordings of no school removed", removed)
        return removed

    async def _rules(self, school_id: str) -> dict[str, int]:
        return await self._module.store.run("parta_retention", db.retention_txn, school_id)

    async def apply(self, school_id: str, now: int, actor: str | None = None) -> dict[str, int]:
        """One school's rules at ``now``. Audited (``retention.apply``): as ``actor``
        when a person asked, else as the service account when something changed."""
        rules = await self._rules(school_id)
        limits = self._module.config.privacy.retention_limits
        school_rooms = await self._module.roster.rooms_of_school(school_id)
        changed = await self._set_room_rules(school_rooms, rules)
        removed = await self._module.store.run(
            "parta_retention_attendance",
            db.purge_attendance_txn,
            [r.room_id for r in school_rooms],
            retention_cutoff(now, rules.get("attendance", limits.attendance)),
        )
        recordings = await self._remove_recordings(
            school_id, retention_cutoff(now, rules.get("recordings", limits.recordings))
        )
        result = {
            "rooms_changed": changed,
            "attendance_removed": removed,
            "recordings_removed": recordings,
        }
        if actor is not None or any(result.values()):
            who = actor or self._module.service_user_id
            await self._module.roster.audit(who, "retention.apply", school_id, school_id, result)
        if any(result.values()):
            logger.info("Retention in %s: %s", school_id, result)
        return result

    async def _set_room_rules(self, rooms: list[SchoolRoom], rules: dict[str, int]) -> int:
        """``m.room.retention`` into each room whose kind has a rule (archived class
        rooms too); how many rooms changed."""
        changed = 0
        for room in rooms:
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
        return changed

    async def class_archived(
        self, actor: str, school_id: str, class_id: str, room_ids: list[str]
    ) -> None:
        """The roster archived a class (end of year): its rooms carry the school's rule
        for their kind, so they are kept that long and no longer; nothing is deleted
        now. Audited (``retention.apply``, with the class) when a room's rule changed."""
        wanted = set(room_ids)
        rooms = await self._module.roster.rooms_of_school(school_id)
        mine = [r for r in rooms if r.room_id in wanted]
        changed = await self._set_room_rules(mine, await self._rules(school_id))
        if changed:
            details: dict[str, Any] = {"class_id": class_id, "rooms_changed": changed}
            await self._module.roster.audit(actor, "retention.apply", school_id, class_id, details)

    async def _remove_recordings(self, school_id: str | None, cutoff: int) -> int:
        """Recordings posted before ``cutoff`` (``school_id`` None: of no school): the
        message redacted by its sender, the media deleted through Synapse's admin API,
        then forgotten. Safe to run again after a crash: a redaction is not sent twice,
        media already gone counts as deleted."""
        broadcasts = self._module.broadcasts
        old = await broadcasts.recordings_posted_before(school_id, cutoff)
        if not old:
            return 0
        store = self._module.store
        async with admin_session(self._module, "parta-retention") as admin:
            for recording in old:
                event_id = recording["event_id"]
                if not await store.run("parta_retention_redacted", db.is_redacted_txn, event_id):
                    await self._redact(recording["room_id"], event_id)
                await admin.delete_media(recording["media_id"])
                await store.run(
                    "parta_retention_recording_rows",
                    db.forget_recording_rows_txn,
                    event_id,
                    recording["media_id"],
                )
                await broadcasts.forget_recording(event_id)
        return len(old)

    async def _redact(self, room_id: str, event_id: str) -> None:
        """Redact a recording's message as whoever sent it: the service account in a
        school's rooms, elsewhere the broadcast's creator (the module posted it in their
        name; the service account is not in such a room). A sender who has left the
        room can no longer redact it: the message stays, without its video (deleted
        next), and a warning says so."""
        sender = await self._module.store.run(
            "parta_retention_sender", db.event_sender_txn, event_id
        )
        try:
            await self._api.create_and_send_event_into_room(
                {
                    "type": "m.room.redaction",
                    "room_id": room_id,
                    "sender": sender or self._module.service_user_id,
                    "redacts": event_id,
                    "content": {"redacts": event_id, "reason": "retention"},
                }
            )
        except SynapseError as e:
            logger.warning(
                "Retention: recording %s in %s not redacted (%s); its video is deleted",
                event_id,
                room_id,
                e,
            )

    async def trim_audit(self, now: int, actor: str) -> int:
        """The audit log's front, as far as every entry's school's rule lets it go
        (schools without a rule, and entries of no school: the operator's limit)."""
        rules = await self._module.store.run(
            "parta_retention_audit_rules", db.rules_of_kind_txn, "audit"
        )
        limit = self._module.config.privacy.retention_limits.audit
        written = int(self._api.get_current_time_msec())
        removed: int = await self._module.store.run_read_committed(
            "parta_audit_trim", db.trim_audit_txn, now, written, actor, rules, limit
        )
        if removed:
            logger.info("Retention: %d audit entries removed from the chain's front", removed)
        return removed
