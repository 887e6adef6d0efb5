"""The Matrix side of a school: spaces and rooms, created and kept in step by the
module's service account.

Room version 12 gives a room's creator unlimited power forever, so every school room is
created by the service account; people's power comes from their roles (see
``policy.power_levels_content``) and is re-derived whenever the roster changes.
"""

import logging
from typing import Any, Final

from synapse.module_api import ModuleApi
from synapse.module_api.errors import SynapseError

from parta_common import events
from parta_common.messages import Message

from .rules import OPEN_KINDS, RoomKind, SchoolRoom, power_levels_content

logger = logging.getLogger(__name__)

_NAMED = (
    RoomKind.ANNOUNCEMENTS,
    RoomKind.STAFF,
    RoomKind.DOCUMENTS,
    RoomKind.ARTICLES,
    RoomKind.CLASS_CHAT,
    RoomKind.PARENTS_CHAT,
    RoomKind.UNIT_ANNOUNCEMENTS,
)
# Room names are the school's language (Russian, one name a room); topics carry both.
ROOM_NAMES: Final[dict[RoomKind, str]] = {
    kind: Message(f"roster.room_name.{kind.value}").ru for kind in _NAMED
}
ROOM_TOPICS: Final[dict[RoomKind, str]] = {
    kind: Message(f"roster.room_topic.{kind.value}").format() for kind in _NAMED
}


def legacy_creation_content(creator: str, content: dict[str, Any]) -> dict[str, Any]:
    """``m.room.create`` content that clients written before room version 11 can read.

    Since version 11 the creator is the create event's sender and ``creator`` is gone
    from the content; nheko 0.11 (Debian bookworm) still requires it and otherwise
    drops the create event, so a school space shows up as a plain room. The key is
    harmless in versions 11 and 12 (the server ignores it), so every room carries it.
    """
    return {**content, "creator": creator}


# Rooms the module joins people to straight away (open, or restricted to their space);
# for the others it sends an invitation first. Every membership event costs Synapse a
# few dozen database transactions, so a first sign-in should send as few as it can.
DIRECT_JOIN: Final = frozenset(
    {
        RoomKind.SCHOOL_SPACE,
        RoomKind.ANNOUNCEMENTS,
        RoomKind.DOCUMENTS,
        RoomKind.ARTICLES,
        RoomKind.CLASS_SPACE,
        RoomKind.CLASS_CHAT,
    }
)
# Of those, the rooms an older school may still have invite-only (a school space made
# before school-wide rooms were open and not yet opened at start-up, a class space made
# before class spaces let the school space's members in): a refused join is retried
# after an invitation.
INVITE_IF_REFUSED: Final = frozenset({RoomKind.SCHOOL_SPACE, RoomKind.CLASS_SPACE})
OPEN_JOIN_RULE: Final = {"join_rule": "public"}
FORBIDDEN_GUESTS: Final = {"guest_access": "forbidden"}


class Structure:
    """Creates school rooms and keeps their power levels and memberships in step."""

    def __init__(self, api: ModuleApi, service_user_id: str):
        self._api = api
        self.service = service_user_id

    async def create_space(
        self,
        kind: RoomKind,
        name: str,
        topic: str,
        state: list[dict[str, Any]],
        users: dict[str, int],
        avatar_mxc: str | None = None,
        allow: list[str] | None = None,
    ) -> str:
        probe = SchoolRoom(room_id="", kind=kind)
        join_rule = _join_rule(kind, allow)
        initial_state = [
            {"type": "m.room.join_rules", "state_key": "", "content": join_rule},
            # (The private_chat preset would let guests join a room that is open.)
            {"type": "m.room.guest_access", "state_key": "", "content": dict(FORBIDDEN_GUESTS)},
            *state,
        ]
        if avatar_mxc:
            initial_state.append(
                {"type": "m.room.avatar", "state_key": "", "content": {"url": avatar_mxc}}
            )
        room_id, _ = await self._api.create_room(
            self.service,
            {
                "name": name,
                "topic": topic,
                "preset": "private_chat",
                "visibility": "private",
                "creation_content": legacy_creation_content(self.service, {"type": "m.space"}),
                "power_level_content_override": power_levels_content(probe, users),
                "initial_state": initial_state,
            },
            ratelimit=False,
        )
        return room_id

    async def create_child_room(
        self,
        kind: RoomKind,
        name: str,
        space_id: str,
        state: list[dict[str, Any]],
        users: dict[str, int],
        allow: list[str],
    ) -> str:
        """A room inside ``space_id``, linked both ways.

        ``allow``: members of these rooms may join by themselves (restricted join rule);
        the module's own join rules still decide who of them really may. Class rooms
        allow the staff room, so administrators can open any class's rooms.
        """
        probe = SchoolRoom(room_id="", kind=kind)
        join_rule = _join_rule(kind, allow)
        via = [self._api.server_name]
        room_id, _ = await self._api.create_room(
            self.service,
            {
                "name": name,
                "topic": ROOM_TOPICS.get(kind, ""),
                "preset": "private_chat",
                "visibility": "private",
                "creation_content": legacy_creation_content(self.service, {}),
                "power_level_content_override": power_levels_content(probe, users),
                "initial_state": [
                    {"type": "m.room.join_rules", "state_key": "", "content": join_rule},
                    {
                        "type": "m.room.history_visibility",
                        "state_key": "",
                        "content": {"history_visibility": "shared"},
                    },
                    {
                        "type": "m.room.guest_access",
                        "state_key": "",
                        "content": dict(FORBIDDEN_GUESTS),
                    },
                    {
                        "type": "m.space.parent",
                        "state_key": space_id,
                        "content": {"via": via, "canonical": True},
                    },
                    *state,
                ],
            },
            ratelimit=False,
        )
        await self.link_child(space_id, room_id)
        return room_id

    async def link_child(self, space_id: str, child_id: str, order: str | None = None) -> None:
        content: dict[str, Any] = {"via": [self._api.server_name]}
        if order:
            content["order"] = order
        await self.send_state(space_id, "m.space.child", child_id, content)

    async def send_state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        await self._api.create_and_send_event_into_room(
            {
                "type": event_type,
                "room_id": room_id,
                "sender": self.service,
                "state_key": state_key,
                "content": content,
            }
        )

    async def set_power_levels(self, room: SchoolRoom, users: dict[str, int]) -> bool:
        """Send new power levels if they differ from the room's; True when sent."""
        wanted = power_levels_content(room, users)
        state = await self._api.get_room_state(room.room_id, [("m.room.power_levels", "")])
        current = state.get(("m.room.power_levels", ""))
        if current is not None and dict(current.content) == wanted:
            return False
        await self.send_state(room.room_id, "m.room.power_levels", "", wanted)
        return True

    async def membership(self, room_id: str, user_id: str) -> str | None:
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        event = state.get(("m.room.member", user_id))
        return None if event is None else str(event.content.get("membership"))

    async def ensure_joined(
        self, room_id: str, kind: RoomKind, user_id: str, probably_absent: bool = False
    ) -> bool:
        """Put ``user_id`` into the room (invite first where the room needs it).

        ``probably_absent``: the roster did not put them here before, so skip reading
        their membership (the common case when enrolling); a repeated join is a no-op in
        Synapse and an invitation to someone already in is refused and ignored.
        """
        current = None if probably_absent else await self.membership(room_id, user_id)
        if current == "join":
            return False
        if current == "ban":
            await self._api.update_room_membership(self.service, user_id, room_id, "leave")
            current = "leave"
        if kind in DIRECT_JOIN and current != "invite":
            try:
                await self._api.update_room_membership(user_id, user_id, room_id, "join")
                return True
            except SynapseError as e:
                # An older school's space still invite only: invite first, as below.
                if e.code != 403 or kind not in INVITE_IF_REFUSED:
                    raise
        if current != "invite":
            try:
                await self._api.update_room_membership(self.service, user_id, room_id, "invite")
            except SynapseError as e:
                if not probably_absent or e.code != 403:
                    raise
                # Already in the room or already invited: the join below settles it.
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
        return True

    async def open_room(self, room_id: str) -> bool:
        """Make a school-wide room of an older school open (``OPEN_KINDS``): join rule
        public, guests forbidden. True when anything was sent; nothing when it is open."""
        wanted = {
            ("m.room.guest_access", ""): dict(FORBIDDEN_GUESTS),
            ("m.room.join_rules", ""): dict(OPEN_JOIN_RULE),
        }
        state = await self._api.get_room_state(room_id, list(wanted))
        sent = False
        # Guests first: the room is never open to them, not even for a moment.
        for key in wanted:
            current = state.get(key)
            if current is not None and dict(current.content) == wanted[key]:
                continue
            await self.send_state(room_id, key[0], key[1], wanted[key])
            sent = True
        return sent

    async def ensure_left(self, room_id: str, user_id: str) -> bool:
        current = await self.membership(room_id, user_id)
        if current not in ("join", "invite", "knock"):
            return False
        await self._api.update_room_membership(self.service, user_id, room_id, "leave")
        return True


def school_state(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": events.SCHOOL, "state_key": "", "content": content}


def class_state(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": events.CLASS, "state_key": "", "content": content}


def room_kind_state(kind: RoomKind, school_id: str | None, class_id: str | None) -> dict[str, Any]:
    content: dict[str, Any] = {"kind": kind.value}
    if school_id:
        content["school_id"] = school_id
    if class_id:
        content["class_id"] = class_id
    return {"type": events.ROOM_KIND, "state_key": "", "content": content}


def _join_rule(kind: RoomKind, allow: list[str] | None) -> dict[str, Any]:
    """``m.room.join_rules`` content: public for the school-wide rooms every student is
    in (``OPEN_KINDS``: the roster still decides every join), else restricted to members
    of the ``allow`` rooms, else invite only."""
    if kind in OPEN_KINDS:
        return dict(OPEN_JOIN_RULE)
    if not allow:
        return {"join_rule": "invite"}
    return {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": r} for r in allow],
    }
