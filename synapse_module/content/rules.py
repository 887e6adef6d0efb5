"""Who someone is in a room, for the content rules.

School rooms: the roster decides (``Content.role_in_room`` asks it). Any other room:
the room's power levels, read here from the state ``check_event_allowed`` already has
(no I/O): ≥ 100 administrator, ≥ 50 teacher, joined → student, otherwise ``None`` —
the same rule as ``synapse_module.room_roles`` uses when it reads the state itself;
the caller then caps it by the roster (``policy.role_outside_school``).
"""

from collections.abc import Mapping
from typing import Any, Protocol

from parta_common.roles import Role

STAFF = frozenset({Role.ADMINISTRATOR, Role.COORDINATOR, Role.TEACHER})
MANAGERS = frozenset({Role.ADMINISTRATOR, Role.COORDINATOR})

StateKey = tuple[str, str]


class _Event(Protocol):
    @property
    def sender(self) -> str: ...

    @property
    def content(self) -> Mapping[str, Any]: ...


def role_from_state(user_id: str, state: Mapping[StateKey, _Event]) -> Role | None:
    """The role of ``user_id`` from a room's state (power levels and membership)."""
    member = state.get(("m.room.member", user_id))
    if member is None or member.content.get("membership") != "join":
        return None
    create = state.get(("m.room.create", ""))
    if create is not None and (
        create.sender == user_id or user_id in (create.content.get("additional_creators") or ())
    ):
        # Room version 12: creators have unlimited power.
        return Role.ADMINISTRATOR
    levels = state.get(("m.room.power_levels", ""))
    level = 0
    if levels is not None:
        users = levels.content.get("users") or {}
        raw = users.get(user_id, levels.content.get("users_default", 0))
        level = raw if isinstance(raw, int) else 0
    if level >= 100:
        return Role.ADMINISTRATOR
    if level >= 50:
        return Role.TEACHER
    return Role.STUDENT


def upload_class(role: Role | None) -> str:
    """Which upload limits apply: ``staff`` or ``student``."""
    return "staff" if role in STAFF else "student"
