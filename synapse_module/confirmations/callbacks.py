"""What Synapse asks about read confirmations: who may ask for one
(``check_event_allowed``), and indexing of the requests and confirmations
(``on_new_event``, on content's indexing process)."""

import logging
from typing import TYPE_CHECKING, Any

from synapse.module_api import EventBase, StateMap

from ..errors import forbidden
from . import rules, texts
from .store import confirm_txn, get_request_txn, insert_request_txn

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)


class ConfirmationCallbacks:
    def __init__(self, module: "PartaModule"):
        self._module = module

    async def check_event_allowed(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if event.type != "m.room.message" or rules.CONFIRM_REQUIRED not in event.content:
            return True, None
        if not self._module.api.is_mine(event.sender):
            return True, None  # a remote server's: never indexed (below)
        roster = self._module.roster
        room = await roster.get_room(event.room_id)
        if room is None or room.school_id is None:
            raise forbidden(texts.ONLY_SCHOOL_ROOMS)
        person = await roster.get_person(event.sender)
        if event.sender != self._module.service_user_id and not rules.may_mark(
            person.standing(room.school_id)
        ):
            raise forbidden(texts.ONLY_STAFF)
        return True, None

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        if not self._module.content.indexer:
            return
        try:
            await self._index(event)
        except Exception:
            logger.exception("Parta could not index confirmation %s", event.event_id)

    async def _index(self, event: EventBase) -> None:
        store = self._module.store
        content = event.content
        if event.type == "m.room.message" and rules.asks_confirmation(content):
            if not self._module.api.is_mine(event.sender):
                return
            room = await self._module.roster.get_room(event.room_id)
            if room is None or room.school_id is None:
                return
            await store.run(
                "parta_confirm_request",
                insert_request_txn,
                event.event_id,
                event.room_id,
                room.school_id,
                event.sender,
                event.origin_server_ts,
            )
            return
        target = rules.confirmation_target(event.type, content)
        if target is None:
            return
        request = await store.run("parta_confirm_get", get_request_txn, target)
        if request is None or request["room_id"] != event.room_id:
            return
        if event.sender == request["sender"]:
            return
        await store.run("parta_confirm", confirm_txn, target, event.sender, event.origin_server_ts)
