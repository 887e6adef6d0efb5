"""What reports send into rooms: the complaints rooms (made by the service account in the
school space), the forwarded report, and the reporter's confirmation."""

from typing import Any

from synapse.module_api import ModuleApi
from synapse.module_api.errors import SynapseError

from ..roster.events import legacy_creation_content
from . import texts

# Only the service account writes into a complaints room (posting needs 50): it is a log
# the school keeps; talking about a report happens in the staff room or with the family.


def complaints_power_levels() -> dict[str, Any]:
    """The service account made the room (room version 12: unlimited power, not listed)."""
    return {
        "users": {},
        "users_default": 0,
        "events_default": 50,
        "state_default": 100,
        "invite": 100,
        "kick": 100,
        "ban": 100,
        "redact": 100,
        "events": {},
    }


class ReportEvents:
    """Rooms and messages of reports, all sent as the service account."""

    def __init__(self, api: ModuleApi, service_user_id: str):
        self._api = api
        self.service = service_user_id

    async def create_complaints_room(self, space_id: str | None, name: str) -> str:
        """An invite-only room in the school space (``space_id``), history shared with
        members only, that nobody can join without the service account's invitation."""
        state: list[dict[str, Any]] = [
            {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "invite"}},
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": "invited"},
            },
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "forbidden"},
            },
        ]
        via = [self._api.server_name]
        if space_id:
            state.append(
                {
                    "type": "m.space.parent",
                    "state_key": space_id,
                    "content": {"via": via, "canonical": True},
                }
            )
        room_id, _ = await self._api.create_room(
            self.service,
            {
                "name": name,
                "topic": texts.COMPLAINTS_TOPIC.text("ru"),
                "preset": "private_chat",
                "visibility": "private",
                "creation_content": legacy_creation_content(self.service, {}),
                "power_level_content_override": complaints_power_levels(),
                "initial_state": state,
            },
            ratelimit=False,
        )
        if space_id:
            await self._api.create_and_send_event_into_room(
                {
                    "type": "m.space.child",
                    "room_id": space_id,
                    "sender": self.service,
                    "state_key": room_id,
                    "content": {"via": via},
                }
            )
        return room_id

    async def put_in(self, room_id: str, user_id: str) -> None:
        """Invite and join ``user_id`` (a no-op for a member)."""
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        event = state.get(("m.room.member", user_id))
        current = None if event is None else event.content.get("membership")
        if current == "join":
            return
        if current != "invite":
            await self._api.update_room_membership(self.service, user_id, room_id, "invite")
        await self._api.update_room_membership(user_id, user_id, room_id, "join")

    async def take_out(self, room_id: str, user_id: str) -> None:
        await self._api.update_room_membership(self.service, user_id, room_id, "leave")

    async def members(self, room_id: str) -> set[str]:
        """Who is joined or invited, the service account aside."""
        state = await self._api.get_room_state(room_id)
        return {
            key
            for (kind, key), event in state.items()
            if kind == "m.room.member"
            and key != self.service
            and event.content.get("membership") in ("join", "invite")
        }

    async def room_name(self, room_id: str) -> str | None:
        try:
            state = await self._api.get_room_state(room_id, [("m.room.name", "")])
        except SynapseError:
            return None
        event = state.get(("m.room.name", ""))
        name = None if event is None else event.content.get("name")
        return name if isinstance(name, str) and name else None

    async def notice(self, room_id: str, body: str, extra: dict[str, Any] | None = None) -> str:
        event = await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": room_id,
                "sender": self.service,
                "content": {"msgtype": "m.notice", "body": body, **(extra or {})},
            }
        )
        return str(event.event_id)

    async def create_notice_room(self, user_id: str) -> str:
        """A direct room from the service account to ``user_id`` for the module's notices."""
        room_id, _ = await self._api.create_room(
            self.service,
            {
                "name": texts.NOTICES_ROOM.text("ru"),
                "preset": "trusted_private_chat",
                "visibility": "private",
                "is_direct": True,
                "invite": [user_id],
                "creation_content": legacy_creation_content(self.service, {}),
            },
            ratelimit=False,
        )
        return room_id
