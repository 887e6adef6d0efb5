"""What Synapse asks about homework: is an assignment well-formed and may its sender set
it here (``check_event_allowed``, after the roster and content), and indexing of
assignments and hand-ins (``on_new_event``, on content's indexing process)."""

import logging
from typing import TYPE_CHECKING, Any

from synapse.module_api import EventBase, StateMap

from parta_common import events, schemas

from ..errors import bad_json, forbidden
from ..roster.rules import RoomKind
from . import rules, texts
from .store import delete_by_event_txn, get_homework_txn, insert_handin_txn, insert_homework_txn

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

SCHEMA = "org.parta.homework.message"


class HomeworkCallbacks:
    def __init__(self, module: "PartaModule"):
        self._module = module

    async def check_event_allowed(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        if event.type != "m.room.message" or events.HOMEWORK not in event.content:
            return True, None
        api = self._module.api
        content = event.content
        problem = schemas.problem(SCHEMA, content)
        if problem is not None:
            if not api.is_mine(event.sender):
                return True, None  # a remote server's: let through, never indexed
            raise bad_json(texts.MALFORMED, detail=problem)
        if not api.is_mine(event.sender):
            return True, None
        block = content[events.HOMEWORK]
        if rules.parse_due(block["due"]) is None:
            raise bad_json(texts.BAD_DUE, due=block["due"])
        roster = self._module.roster
        room = await roster.get_room(event.room_id)
        if room is None or room.kind is not RoomKind.CLASS_CHAT or room.school_id is None:
            raise bad_json(texts.ONLY_CLASS_CHAT)
        if room.class_id != block["class_id"]:
            raise bad_json(texts.WRONG_CLASS, class_id=block["class_id"])
        person = await roster.get_person(event.sender)
        if event.sender != self._module.service_user_id and not rules.may_set(
            person.standing(room.school_id), block["class_id"]
        ):
            raise forbidden(texts.ONLY_TEACHERS)
        return True, None

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        if not self._module.content.indexer:
            return
        try:
            if event.type == "m.room.message":
                await self._index(event)
            elif event.type == "m.room.redaction" and isinstance(event.redacts, str):
                await self._module.store.run(
                    "parta_homework_redact", delete_by_event_txn, event.redacts
                )
        except Exception:
            logger.exception("Parta could not index homework %s", event.event_id)

    async def _index(self, event: EventBase) -> None:
        content = event.content
        store = self._module.store
        roster = self._module.roster
        if events.HOMEWORK in content:
            if schemas.problem(SCHEMA, content) is not None:
                return
            room = await roster.get_room(event.room_id)
            block = content[events.HOMEWORK]
            if room is None or room.school_id is None or room.class_id != block["class_id"]:
                return
            item = {
                "event_id": event.event_id,
                "room_id": event.room_id,
                "school_id": room.school_id,
                "class_id": room.class_id,
                "subject": block["subject"],
                "text": block["text"],
                "due": block["due"],
                "files": block.get("files", []),
                "sender": event.sender,
                "ts": event.origin_server_ts,
            }
            await store.run("parta_homework_put", insert_homework_txn, item)
            return
        homework_id = rules.handin_of(content)
        if homework_id is None:
            return
        homework = await store.run("parta_homework_get", get_homework_txn, homework_id)
        if homework is None or homework["room_id"] != event.room_id:
            return
        person = await roster.get_person(event.sender)
        standing = person.standing(homework["school_id"])
        if standing is None or homework["class_id"] not in standing.learns_in:
            return
        name = content.get("filename") or content.get("body") or ""
        await store.run(
            "parta_handin_put",
            insert_handin_txn,
            event.event_id,
            homework_id,
            event.sender,
            str(name)[:255],
            content["url"],
            event.origin_server_ts,
        )
