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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import EventBase, StateMap
from synapse.module_api.errors import SynapseError

from parta_common.roles import Role

from .. import audit
from ..clock import Clock, clock_from_environment
from ..errors import forbidden
from ..roster.rules import RoomKind, Standing
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
# The audit's room kind for a room the roster does not know (a direct chat).
DIRECT: Final = "direct"


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
        action = rules.quiet_action(event.type, content, event.is_state())
        if action == rules.PASS:
            return True, None
        if not event.is_state() and content.get(rules.HELD_ID) in self._releasing:
            return True, None
        sender = event.sender
        if not self._api.is_mine(sender) or sender == self._module.service_user_id:
            return True, None
        invitee = event.state_key if action == rules.REFUSE_INVITE else None

        async def members() -> list[str]:
            return _members(state)

        found = await self._quiet_school(sender, event.room_id, invitee, members)
        if found is None:
            return True, None
        school_id, kind, rule, roles = found
        timezone = await self._module.roster.school_timezone(school_id)
        local = self._local_now(timezone)
        if not rules.is_quiet(rule, local):
            return True, None
        until = rules.quiet_until(rule, local)
        room_name = _room_name(state, sender)
        if action != rules.HOLD:
            message = texts.CALL if action == rules.REFUSE_CALL else texts.INVITE
            raise forbidden(message, **_when(until, timezone, room_name))
        if rules.is_urgent(content) and rules.may_send_urgent(roles):
            await self._audit_urgent(event, school_id, kind, until)
            return True, None
        await self._hold(event, school_id, until, timezone, room_name)
        return False, None  # not reached: _hold raises the refusal

    def _local_now(self, timezone: str) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now_ms() / 1000, zoneinfo.ZoneInfo(timezone))

    async def quiet_until(self, sender: str, room_id: str) -> dt.datetime | None:
        """When quiet hours end for a message ``sender`` posts in this school room now,
        or ``None`` when they would not hold it. The module's own notices sent in a
        teacher's name ask first: a "lesson started" held until 08:00 is no notice (the
        lesson's state and widget still show it to anyone who opens the room)."""

        async def members() -> list[str]:
            return _members(await self._api.get_room_state(room_id, [("m.room.member", None)]))

        found = await self._quiet_school(sender, room_id, None, members)
        if found is None:
            return None
        school_id, _kind, rule, _roles = found
        local = self._local_now(await self._module.roster.school_timezone(school_id))
        return rules.quiet_until(rule, local) if rules.is_quiet(rule, local) else None

    async def _quiet_school(
        self,
        sender_id: str,
        room_id: str,
        invitee: str | None,
        members: Callable[[], Awaitable[list[str]]],
    ) -> tuple[str, str, rules.QuietHours, frozenset[Role]] | None:
        """The school whose quiet hours hold this event, the room's kind (``direct``
        for a room the roster does not know), the rule and the sender's roles there; or
        ``None``. A school room: its announcements, class and parents chats. Any other
        room (a direct chat, a group the teacher made): when a student or parent of a
        school where the sender is held (not their own child) is in it or invited."""
        roster = self._module.roster
        sender = await roster.get_person(sender_id)
        if not sender.is_staff_anywhere:
            return None
        room = await roster.get_room(room_id)
        if room is not None:
            if room.school_id is None or room.kind not in HELD_KINDS:
                return None
            schools: list[str] = [room.school_id]
            kind = room.kind.value
        else:
            schools = sorted(sender.schools)
            kind = DIRECT
        readers = [invitee] if invitee else (await members() if room is None else [])
        for school_id in schools:
            standing = sender.standing(school_id)
            if standing is None:
                continue
            rule = rules.rule_for((await roster.get_policy(school_id)).quiet_hours, standing.roles)
            if rule is None:
                continue
            if (room is None or invitee) and not await self._any_held_reader(
                readers, sender_id, school_id, standing
            ):
                continue
            return school_id, kind, rule, standing.roles
        return None

    async def _any_held_reader(
        self, readers: list[str], sender: str, school_id: str, standing: Standing
    ) -> bool:
        for reader in readers:
            if reader == sender or reader in standing.children:
                continue
            of_reader = (await self._module.roster.get_person(reader)).standing(school_id)
            if of_reader is not None and rules.is_held_reader(of_reader.roles):
                return True
        return False

    async def _audit_urgent(
        self, event: EventBase, school_id: str, kind: str, until: dt.datetime
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
                "room_kind": kind,
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
        params = _when(
            dt.datetime.fromtimestamp(release_at / 1000, zoneinfo.ZoneInfo(timezone)),
            timezone,
            room,
        )
        if new:
            logger.info("Held %s by %s until %s", held_id, event.sender, release_at)
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


def _when(until: dt.datetime, timezone: str, room: str) -> dict[str, str]:
    return {
        "room": room,
        "date": until.strftime("%d.%m.%Y"),
        "time": until.strftime("%H:%M"),
        "timezone": timezone,
    }


def _members(state: StateMap[EventBase]) -> list[str]:
    """Who is in the room or invited to it (the state before the event)."""
    return [
        key
        for (kind, key), ev in state.items()
        if kind == "m.room.member" and ev.content.get("membership") in ("join", "invite")
    ]


def _room_name(state: StateMap[EventBase], sender: str) -> str:
    """The room's name; for a room without one (a direct chat), its other members'."""
    name = state.get(("m.room.name", ""))
    value = name.content.get("name") if name is not None else None
    if isinstance(value, str) and value:
        return value
    others = []
    for (kind, key), ev in sorted(state.items()):
        if kind == "m.room.member" and key != sender:
            shown = ev.content.get("displayname")
            others.append(shown if isinstance(shown, str) and shown else key)
    return ", ".join(others[:3]) or "—"
