"""What the content routes share (``ContentHandlers``) and their small helpers."""

import secrets
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from parta_common.roles import Role

from .. import query
from ..errors import forbidden
from ..requests import request_schemas
from . import texts
from .rules import STAFF

if TYPE_CHECKING:
    from .callbacks import Content


# The request schemas, in requests.json beside this module (also the OpenAPI's).
REQUEST_SCHEMAS: Final = request_schemas(__package__)
HANDIN_BODY: Final = REQUEST_SCHEMAS["Handin"]
NEW_ARTICLE_BODY: Final = REQUEST_SCHEMAS["NewArticle"]
EDIT_ARTICLE_BODY: Final = REQUEST_SCHEMAS["EditArticle"]
NEW_POLL_BODY: Final = REQUEST_SCHEMAS["NewPoll"]
VOTE_BODY: Final = REQUEST_SCHEMAS["Vote"]


def _param(request: SynapseRequest, name: str) -> str | None:
    return query.query_string(request, name)


def _params(request: SynapseRequest, name: str) -> list[str]:
    return query.query_strings(request, name)


_bad_param = query.bad_param
_int_param = query.query_int
_choice = query.query_choice


def _new(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


class ContentHandlers:
    """What every content route shares: the feature, the roles, sending into rooms."""

    def __init__(self, content: "Content") -> None:
        self.content = content
        self.api = content.api
        self.store = content.store

    # -- helpers ------------------------------------------------------------------

    async def _member(self, user_id: str, room_id: str) -> Role:
        role = await self.content.role_in_room(user_id, room_id)
        if role is None:
            raise forbidden(texts.NOT_A_MEMBER)
        return role

    async def _staff(self, user_id: str, room_id: str) -> Role:
        role = await self._member(user_id, room_id)
        if role not in STAFF:
            raise forbidden(texts.STAFF_ONLY)
        return role

    async def _rooms(self, request: SynapseRequest, user_id: str) -> list[str]:
        """The rooms a listing covers: ``room_id`` (repeatable), or a school's or a class's
        rooms (``school_id``, optionally ``class_id``) that the caller belongs in."""
        room_ids = list(dict.fromkeys(_params(request, "room_id")))
        school_id = _param(request, "school_id")
        if school_id and not room_ids:
            class_id = _param(request, "class_id")
            rooms = await self.content.roster.rooms_of_school(school_id)
            found = []
            for room in rooms:
                if room.kind.value.endswith("_space"):
                    continue
                if class_id and room.class_id != class_id:
                    continue
                if await self.content.role_in_room(user_id, room.room_id) is not None:
                    found.append(room.room_id)
            if not found:
                raise forbidden(texts.NOT_A_MEMBER)
            return found
        if not room_ids:
            raise _bad_param("room_id", "give room_id, or school_id (and class_id)")
        if len(room_ids) > 50:
            raise _bad_param("room_id", "at most 50 rooms at once")
        for room_id in room_ids:
            await self._member(user_id, room_id)
        return room_ids

    def _now(self) -> int:
        return self.api.get_current_time_msec()

    async def _send(self, sender: str, room_id: str, event_type: str, content: Any) -> str:
        event = await self.api.create_and_send_event_into_room(
            {"type": event_type, "room_id": room_id, "sender": sender, "content": content}
        )
        return str(event.event_id)
