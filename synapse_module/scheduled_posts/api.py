"""Posts the school bot sends later as their author, exactly once.

A person's command («объявление завтра 09:00 …») becomes a row here: ``POST
/scheduled_posts`` made as that person (through the bot on their command, see
:mod:`synapse_module.delegation`, or with their own token). When it is due the bot calls
``POST /scheduled_posts/{post_id}/send`` as itself; the module sends the message as the
author — the homeserver's and the module's rules for the author apply — and records the
event id. A second call answers with the same event id.

Exactly once across a crash between sending and recording: the row is marked
``sending_at`` before the send, and the content carries ``org.parta.schedule_id``; a send
that finds the mark looks for that message among the author's latest in the room first.
"""

import time
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import ModuleApi, SynapseRequest

from parta_common import events

from ..errors import forbidden, not_found
from ..http import caller_and_person, json_body, requester_id
from ..requests import request_schemas
from ..sent_once import find_sent_txn
from . import store as db
from .events import post_event
from .rules import may_send
from .texts import NO_SUCH_POST, NOT_YOURS_TO_SEND

if TYPE_CHECKING:
    from .. import PartaModule

# The request schemas, in requests.json beside this module (also the OpenAPI's).
REQUEST_SCHEMAS: Final = request_schemas(__package__)
CREATE_SCHEMA: Final = REQUEST_SCHEMAS["CreateScheduledPost"]


class ScheduledPosts:
    ROUTES: Final = (
        ("POST", r"/scheduled_posts", "create_post"),
        ("POST", r"/scheduled_posts/([^/]+)/send", "send_post"),
    )

    def __init__(self, module: "PartaModule") -> None:
        self._module = module
        self._api: ModuleApi = module.api
        self._sending: set[str] = set()

    async def create_post(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        caller, author = await caller_and_person(self._api, request)
        body = json_body(request, CREATE_SCHEMA)
        command = request.requestHeaders.getRawHeaders(b"X-Parta-Command") or [b""]
        row = {
            "post_id": db.new_post_id(),
            "author": author,
            "room_id": body["room_id"],
            "body": body["body"],
            "schedule_id": body["schedule_id"],
            "command": command[0].decode("utf-8", errors="replace")[:255],
            "created_by": caller,
            "created_at": int(time.time() * 1000),
        }
        await self._module.store.run("parta_post_create", db.create_txn, row)
        return 200, {"post_id": row["post_id"], "author": author}

    async def send_post(self, request: SynapseRequest, post_id: str) -> tuple[int, dict[str, Any]]:
        caller = await requester_id(self._api, request)
        post = await self._module.store.run("parta_post_get", db.get_txn, post_id)
        if post is None:
            raise not_found(NO_SUCH_POST, post_id=post_id[:80])
        if not may_send(caller, post["author"], self._module.delegation.is_trusted_bot(caller)):
            raise forbidden(NOT_YOURS_TO_SEND)
        # One send at a time per post in this process; the marks cover the rest.
        while post_id in self._sending:
            await self._api.sleep(0.05)
        self._sending.add(post_id)
        try:
            event_id = await self._send_once(post_id)
        finally:
            self._sending.discard(post_id)
        return 200, {"post_id": post_id, "event_id": event_id, "author": post["author"]}

    async def _send_once(self, post_id: str) -> str:
        post = await self._module.store.run("parta_post_get", db.get_txn, post_id)
        assert post is not None
        if post["event_id"]:
            return str(post["event_id"])
        if post["sending_at"] is not None:
            found = await self._api.run_db_interaction(
                "parta_post_find",
                find_sent_txn,
                post["room_id"],
                post["author"],
                events.SCHEDULE_ID,
                post["schedule_id"],
            )
            if found is not None:
                return await self._record(post_id, found)
        now = int(time.time() * 1000)
        await self._module.store.run("parta_post_sending", db.mark_sending_txn, post_id, now)
        await self._ensure_joined(post["author"], post["room_id"])
        event = await self._api.create_and_send_event_into_room(
            post_event(post["room_id"], post["author"], post["body"], post["schedule_id"])
        )
        return await self._record(post_id, event.event_id)

    async def _record(self, post_id: str, event_id: str) -> str:
        now = int(time.time() * 1000)
        return await self._module.store.run("parta_post_sent", db.sent_txn, post_id, event_id, now)

    async def _ensure_joined(self, user_id: str, room_id: str) -> None:
        """A school room the author belongs to but never opened: join as them (the
        homeserver's and the module's join rules decide whether they may)."""
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is not None and member.content.get("membership") == "join":
            return
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
