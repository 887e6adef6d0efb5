"""What Synapse asks about read confirmations: who may ask for one
(``check_event_allowed``), and indexing of the requests and confirmations
(``on_new_event``, on content's indexing process)."""

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from synapse.module_api import EventBase, StateMap

from ..errors import forbidden
from ..roster.rules import RoomKind, Standing
from . import rules, texts
from .store import confirm_txn, get_request_txn, insert_request_txn, stored_event_txn

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

# The request lines in English: a request ending with one was written in English.
ENGLISH_PROMPTS = (texts.PROMPT.text("en"), texts.PROMPT_REACTION.text("en"))


class ConfirmationCallbacks:
    def __init__(self, module: "PartaModule"):
        self._module = module

    async def check_event_allowed(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if event.type == "m.reaction":
            await self._check_reaction(event)
            return True, None
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

    async def _check_reaction(self, event: EventBase) -> None:
        """Announcements rooms let everyone react (power levels: ``m.reaction`` 0) so that
        anyone can confirm; students and parents may react there only to confirm."""
        if rules.confirmation_target(event.type, event.content) is not None:
            return
        room = await self._module.roster.get_room(event.room_id)
        if room is None or room.kind is not RoomKind.ANNOUNCEMENTS or room.school_id is None:
            return
        if event.sender == self._module.service_user_id:
            return
        person = await self._module.roster.get_person(event.sender)
        standing = person.standing(room.school_id)
        if standing is None or not standing.is_staff:
            raise forbidden(texts.ONLY_CONFIRMING_REACTIONS)

    async def children_classes(self, standing: Standing | None) -> dict[str, frozenset[str]]:
        """A parent's children in the school, each with the classes they learn in."""
        if standing is None:
            return {}
        found: dict[str, frozenset[str]] = {}
        for child in sorted(standing.children):
            theirs = (await self._module.roster.get_person(child)).standing(standing.school_id)
            found[child] = theirs.learns_in if theirs is not None else frozenset()
        return found

    async def confirms_for(self, request: dict[str, Any], user_id: str) -> list[str]:
        """For whom a person's confirmation of ``request`` counts: ``[""]`` (themselves),
        or, for a request per child, each of a parent's children in the room's scope."""
        if not request["per_child"]:
            return [""]
        person = await self._module.roster.get_person(user_id)
        standing = person.standing(request["school_id"])
        room = await self._module.roster.get_room(request["room_id"])
        children = rules.children_in_scope(
            await self.children_classes(standing), room.class_id if room else None
        )
        return children or [""]

    async def record(
        self, request: dict[str, Any], user_id: str, children: list[str], ts: int
    ) -> None:
        await self._module.store.run(
            "parta_confirm", confirm_txn, request["event_id"], user_id, children, ts
        )

    async def _record_request(
        self, event_id: str, room_id: str, sender: str, ts: int, content: Mapping[str, Any]
    ) -> None:
        """A message asking for confirmation, from one of ours in a school room: recorded
        (once, whoever comes first: the indexer or a route that finds it unindexed)."""
        if not self._module.api.is_mine(sender):
            return
        room = await self._module.roster.get_room(room_id)
        if room is None or room.school_id is None:
            return
        await self._module.store.run(
            "parta_confirm_request",
            insert_request_txn,
            event_id,
            room_id,
            room.school_id,
            sender,
            ts,
            rules.asks_per_child(content),
            rules.request_language(content.get("body"), ENGLISH_PROMPTS),
        )

    async def request(self, event_id: str) -> dict[str, Any] | None:
        """The recorded request of ``event_id``; one the indexer has not reached yet (it
        runs after the event is persisted, and on the indexing process) is read from
        Synapse's store and recorded now, so a confirmation sent at once is not lost."""
        store = self._module.store
        asked = await store.run("parta_confirm_get", get_request_txn, event_id)
        if asked is not None:
            return asked
        event = await store.run("parta_confirm_event", stored_event_txn, event_id)
        if event is None or event.get("type") != "m.room.message":
            return None
        content = event.get("content")
        if not isinstance(content, dict) or not rules.asks_confirmation(content):
            return None
        await self._record_request(
            event_id,
            str(event.get("room_id", "")),
            str(event.get("sender", "")),
            int(event.get("origin_server_ts", 0)),
            content,
        )
        return await store.run("parta_confirm_get", get_request_txn, event_id)

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
            await self._record_request(
                event.event_id, event.room_id, event.sender, event.origin_server_ts, content
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
        children = await self.confirms_for(request, event.sender)
        await self.record(request, event.sender, children, event.origin_server_ts)
