"""Quiet hours in ``check_event_allowed``: a teacher's (or administrator's) message to a
room of students or parents during the school's quiet hours is stored and refused with
the time it will be delivered; an administrator's «срочно» goes through and is audited.

Local senders only (a remote server's users are no school's staff here). Students' and
parents' messages are never held (:data:`rules.HELD_ROLES`).
"""

import datetime as dt
import logging
import time
import zoneinfo
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import EventBase, StateMap
from synapse.module_api.errors import SynapseError

from .. import audit
from ..clock import Clock, clock_from_environment
from ..roster.rules import RoomKind
from . import rules, texts
from .store import digest, hold_txn

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# Rooms whose readers are students or parents: quiet hours hold messages there.
HELD_KINDS: Final = frozenset({RoomKind.ANNOUNCEMENTS, RoomKind.CLASS_CHAT, RoomKind.PARENTS_CHAT})
# The refusal's errcode: not M_FORBIDDEN — the message is kept, not refused for good.
HELD_ERRCODE: Final = "ORG.PARTA.HELD"
# Where the refusal names the held message and when it goes (beside org.parta.message).
HELD_FIELD: Final = "org.parta.held"


class QuietHoursCallbacks:
    def __init__(self, module: "PartaModule", clock: Clock | None = None):
        self._module = module
        self._api = module.api
        self.clock: Clock = clock or clock_from_environment()
        # Held messages this process is sending now (their own check lets them through).
        self._releasing: set[str] = set()

    async def check_event_allowed(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        content = event.content
        if not rules.is_held_message(event.type, content):
            return True, None
        if content.get(rules.HELD_ID) in self._releasing:
            return True, None
        sender = event.sender
        if not self._api.is_mine(sender) or sender == self._module.service_user_id:
            return True, None
        roster = self._module.roster
        room = await roster.get_room(event.room_id)
        if room is None or room.school_id is None or room.kind not in HELD_KINDS:
            return True, None
        policy = await roster.get_policy(room.school_id)
        if not policy.quiet_hours:
            return True, None
        standing = (await roster.get_person(sender)).standing(room.school_id)
        if standing is None:
            return True, None
        rule = rules.rule_for(policy.quiet_hours, standing.roles)
        if rule is None:
            return True, None
        timezone = await roster.school_timezone(room.school_id)
        zone = zoneinfo.ZoneInfo(timezone)
        local = dt.datetime.fromtimestamp(self.clock.now_ms() / 1000, zone)
        if not rules.is_quiet(rule, local):
            return True, None
        until = rules.quiet_until(rule, local)
        if rules.is_urgent(content) and rules.may_send_urgent(standing.roles):
            await self._audit_urgent(event, room.school_id, room.kind, until)
            return True, None
        await self._hold(event, room.school_id, until, timezone, _room_name(state))
        return False, None  # not reached: _hold raises the refusal

    async def _audit_urgent(
        self, event: EventBase, school_id: str, kind: RoomKind, until: dt.datetime
    ) -> None:
        await self._module.store.run(
            "parta_quiet_urgent",
            audit.append_txn,
            int(time.time() * 1000),
            event.sender,
            "quiet_hours.urgent",
            school_id,
            event.room_id,
            {
                "event_id": event.event_id,
                "room_kind": kind.value,
                "quiet_until": until.isoformat(),
            },
        )
        logger.info("Urgent message %s by %s in quiet hours", event.event_id, event.sender)

    async def _hold(
        self, event: EventBase, school_id: str, until: dt.datetime, timezone: str, room: str
    ) -> None:
        content = {k: v for k, v in event.content.items() if k != rules.HELD_ID}
        row = {
            "school_id": school_id,
            "room_id": event.room_id,
            "sender": event.sender,
            "event_type": event.type,
            "content": content,
            "digest": digest(event.type, content),
            "held_at": int(time.time() * 1000),
            "release_at": int(until.timestamp() * 1000),
        }
        held_id, release_at, new = await self._module.store.run("parta_hold", hold_txn, row)
        when = dt.datetime.fromtimestamp(release_at / 1000, zoneinfo.ZoneInfo(timezone))
        params = {
            "room": room,
            "date": when.strftime("%d.%m.%Y"),
            "time": when.strftime("%H:%M"),
            "timezone": timezone,
        }
        if new:
            logger.info("Held %s by %s until %s", held_id, event.sender, when.isoformat())
            self._api.delayed_background_call(
                0,
                self._module.reports.tell,
                event.sender,
                texts.HELD.format(**params),
                desc="parta_quiet_notice",
            )
        raise SynapseError(
            403,
            texts.HELD.format(**params),
            HELD_ERRCODE,
            additional_fields={
                **texts.HELD.fields(**params),
                HELD_FIELD: {"held_id": held_id, "release_at": release_at},
            },
        )


def _room_name(state: StateMap[EventBase]) -> str:
    name = state.get(("m.room.name", ""))
    value = name.content.get("name") if name is not None else None
    return value if isinstance(value, str) and value else "—"
