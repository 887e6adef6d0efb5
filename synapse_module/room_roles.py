"""A person's role in one room, as far as lessons and media tokens care.

In a school room (one the roster knows), the roster decides: ``Roster.role_in_room``,
and the students expected at a lesson in a class room are the class's students. In any
other room the role is derived from the room itself: only joined members have one;
power level 100 or more is an administrator, 50 or more a teacher, anyone else a
student. Room version 12 creators are not listed in ``m.room.power_levels`` but have
unlimited power: they count as administrators. That role is then capped by the person's
roster roles (``policy.role_outside_school``): a student who created a room is still a
student there, a school's teacher or administrator leads at most as a teacher; only
people the roster does not know keep what their power gives.

Everything that needs a role goes through :meth:`RoomRoles.role_in_room`, the people
expected at a lesson through :meth:`RoomRoles.expected_attendees`, and who sends a
lesson's events through :meth:`RoomRoles.lesson_sender`.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

from synapse.module_api import EventBase, ModuleApi, StateMap

from parta_common.roles import Role

from .roster.rules import role_outside_school

if TYPE_CHECKING:
    from .roster.api import Roster
    from .roster.rules import SchoolRoom

MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
CREATE = "m.room.create"

# Roles that run a lesson: start and end it, see attendance, moderate on the SFU.
LESSON_LEADERS = frozenset({Role.ADMINISTRATOR, Role.COORDINATOR, Role.TEACHER})


def role_from_power_level(level: int) -> Role:
    """The role a power level stands for in a school room (see ``roles.POWER_LEVEL``)."""
    if level >= 100:
        return Role.ADMINISTRATOR
    if level >= 50:
        return Role.TEACHER
    return Role.STUDENT


def power_level_of(user_id: str, state: StateMap[EventBase]) -> int:
    """``user_id``'s power level in a room with this state (creators count as 100)."""
    levels = state.get((POWER_LEVELS, ""))
    create = state.get((CREATE, ""))
    creators: set[str] = set()
    if create is not None:
        creators.add(create.sender)
        extra = create.content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    if levels is None:
        return 100 if user_id in creators else 0
    users = levels.content.get("users")
    if isinstance(users, Mapping) and user_id in users:
        return _as_int(users[user_id])
    if user_id in creators:
        return 100
    return _as_int(levels.content.get("users_default", 0))


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def display_name(user_id: str, state: StateMap[EventBase]) -> str:
    """The name the room shows for ``user_id`` (their localpart when they set none)."""
    member = state.get((MEMBER, user_id))
    if member is not None:
        name = member.content.get("displayname")
        if isinstance(name, str) and name.strip():
            return name.strip()
    return user_id.split(":", 1)[0].lstrip("@")


class RoomRoles:
    """Roles from the roster in school rooms, from room state elsewhere."""

    def __init__(self, api: ModuleApi, roster: "Roster | None" = None, service_user_id: str = ""):
        self._api = api
        self._roster = roster
        self._service = service_user_id

    async def school_room(self, room_id: str) -> "SchoolRoom | None":
        if self._roster is None:
            return None
        room = await self._roster.get_room(room_id)
        return room if room is not None and room.school_id is not None else None

    async def lesson_sender(self, user_id: str, room_id: str) -> str:
        """Who sends a lesson's state: the service account in school rooms (it created
        them and has unlimited power there), the teacher in any other room."""
        if self._service and await self.school_room(room_id) is not None:
            return self._service
        return user_id

    async def display_name(self, user_id: str, room_id: str) -> str:
        state = await self._api.get_room_state(room_id, [(MEMBER, user_id)])
        return display_name(user_id, state)

    async def display_names(self, room_id: str) -> dict[str, str]:
        """Every member's name as the room shows it (joined or not)."""
        state = await self._api.get_room_state(room_id, [(MEMBER, None)])
        return {key: display_name(key, state) for (kind, key) in state if kind == MEMBER}

    async def role_in_room(self, user_id: str, room_id: str) -> Role | None:
        """``user_id``'s role in ``room_id``: the roster's in school rooms; elsewhere from
        power levels, and ``None`` unless they are joined."""
        if self._roster is not None and await self.school_room(room_id) is not None:
            return await self._roster.role_in_room(user_id, room_id)
        state = await self._api.get_room_state(
            room_id, [(MEMBER, user_id), (POWER_LEVELS, ""), (CREATE, "")]
        )
        member = state.get((MEMBER, user_id))
        if member is None or member.content.get("membership") != "join":
            return None
        return await self._capped(user_id, role_from_power_level(power_level_of(user_id, state)))

    async def _capped(self, user_id: str, from_power: Role) -> Role:
        """Outside school rooms power never lifts anyone above their roster roles."""
        if self._roster is None:
            return from_power
        return role_outside_school(await self._roster.get_person(user_id), from_power)

    async def expected_attendees(self, room_id: str) -> list[str]:
        """Who should attend a lesson in ``room_id``: in a class room the class's
        students (joined or not); elsewhere the joined members who are students."""
        room = await self.school_room(room_id)
        if self._roster is not None and room is not None and room.class_id is not None:
            return await self._roster.students_of_class(room.class_id)
        state = await self._api.get_room_state(
            room_id, [(MEMBER, None), (POWER_LEVELS, ""), (CREATE, "")]
        )
        expected = []
        for (event_type, user_id), event in state.items():
            if event_type != MEMBER or event.content.get("membership") != "join":
                continue
            role = role_from_power_level(power_level_of(user_id, state))
            if await self._capped(user_id, role) is Role.STUDENT:
                expected.append(user_id)
        return sorted(expected)
