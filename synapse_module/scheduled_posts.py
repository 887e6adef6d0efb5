"""Posts the school bot sends later as their author, exactly once.

A person's command («объявление завтра 09:00 …») becomes a row here: ``POST
/scheduled_posts`` made as that person (through the bot on their command, see
:mod:`synapse_module.on_behalf`, or with their own token). When it is due the bot calls
``POST /scheduled_posts/{post_id}/send`` as itself; the module sends the message as the
author — the homeserver's and the module's rules for the author apply — and records the
event id. A second call answers with the same event id.

Exactly once across a crash between sending and recording: the row is marked
``sending_at`` before the send, and the content carries ``org.parta.schedule_id``; a send
that finds the mark looks for that message among the author's latest in the room first.
"""

import json
import time
from typing import TYPE_CHECKING, Any

from synapse.module_api import LoggingTransaction, ModuleApi, SynapseRequest

from parta_common import events
from parta_common.messages import Message

from .errors import forbidden, not_found
from .http import caller_and_person, json_body, requester_id
from .roster_store import new_id
from .store import rows_as_dicts

if TYPE_CHECKING:
    from . import PartaModule

CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["room_id", "body", "schedule_id"],
    "additionalProperties": False,
    "properties": {
        "room_id": {"type": "string", "pattern": "^![^\\s]+$", "maxLength": 255},
        "body": {"type": "string", "minLength": 1, "maxLength": 32768},
        "schedule_id": {"type": "string", "minLength": 1, "maxLength": 255},
    },
}

REQUEST_SCHEMAS: dict[str, Any] = {"CreateScheduledPost": CREATE_SCHEMA}

NO_SUCH_POST = Message(
    ru="Нет такого запланированного сообщения: {post_id}",
    en="No such scheduled post: {post_id}",
)
NOT_YOURS_TO_SEND = Message(
    ru="Отправить запланированное сообщение может только школьный бот или его автор.",
    en="Only the school bot or its author may send a scheduled post.",
)

# How far back a retry looks for its own message (the author's messages only).
FIND_SENT_LIMIT = 100


def _create_txn(txn: LoggingTransaction, row: dict[str, Any]) -> None:
    txn.execute(
        "INSERT INTO parta_scheduled_posts (post_id, author, room_id, body, schedule_id,"
        " command, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(
            row[k]
            for k in (
                "post_id",
                "author",
                "room_id",
                "body",
                "schedule_id",
                "command",
                "created_by",
                "created_at",
            )
        ),
    )


def _get_txn(txn: LoggingTransaction, post_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT post_id, author, room_id, body, schedule_id, sending_at, event_id"
        " FROM parta_scheduled_posts WHERE post_id = ?",
        (post_id,),
    )
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def _mark_sending_txn(txn: LoggingTransaction, post_id: str, now: int) -> None:
    txn.execute(
        "UPDATE parta_scheduled_posts SET sending_at = ? WHERE post_id = ? AND event_id IS NULL",
        (now, post_id),
    )


def _sent_txn(txn: LoggingTransaction, post_id: str, event_id: str, now: int) -> str:
    """Record the event id; the one recorded first wins and is returned."""
    txn.execute(
        "UPDATE parta_scheduled_posts SET event_id = ?, sent_at = ?"
        " WHERE post_id = ? AND event_id IS NULL",
        (event_id, now, post_id),
    )
    txn.execute("SELECT event_id FROM parta_scheduled_posts WHERE post_id = ?", (post_id,))
    row = txn.fetchone()
    return str(row[0]) if row and row[0] else event_id


def _find_sent_txn(
    txn: LoggingTransaction, room_id: str, author: str, schedule_id: str
) -> str | None:
    """The author's latest message in the room carrying ``schedule_id`` (Synapse's tables,
    as in :mod:`synapse_module.on_behalf`), or ``None``."""
    txn.execute(
        "SELECT e.event_id, j.json FROM events e JOIN event_json j ON j.event_id = e.event_id"
        " WHERE e.room_id = ? AND e.sender = ? AND e.type = 'm.room.message'"
        " ORDER BY e.stream_ordering DESC LIMIT ?",
        (room_id, author, FIND_SENT_LIMIT),
    )
    for event_id, raw in txn.fetchall():
        try:
            content = json.loads(raw).get("content", {})
        except (ValueError, AttributeError):
            continue
        if isinstance(content, dict) and content.get(events.SCHEDULE_ID) == schedule_id:
            return str(event_id)
    return None


class ScheduledPosts:
    ROUTES = (
        ("POST", r"/scheduled_posts", "create_post"),
        ("POST", r"/scheduled_posts/([^/]+)/send", "send_post"),
    )

    def __init__(self, module: "PartaModule") -> None:
        self._module = module
        self._api: ModuleApi = module.api
        self._sending: set[str] = set()
        for method, pattern, handler in self.ROUTES:
            module.resource.route(method, pattern, getattr(self, handler))

    async def create_post(self, request: SynapseRequest) -> tuple[int, dict[str, Any]]:
        caller, author = await caller_and_person(self._api, request)
        body = json_body(request, CREATE_SCHEMA)
        command = request.requestHeaders.getRawHeaders(b"X-Parta-Command") or [b""]
        row = {
            "post_id": new_id("post"),
            "author": author,
            "room_id": body["room_id"],
            "body": body["body"],
            "schedule_id": body["schedule_id"],
            "command": command[0].decode("utf-8", errors="replace")[:255],
            "created_by": caller,
            "created_at": int(time.time() * 1000),
        }
        await self._module.store.run("parta_post_create", _create_txn, row)
        return 200, {"post_id": row["post_id"], "author": author}

    async def send_post(self, request: SynapseRequest, post_id: str) -> tuple[int, dict[str, Any]]:
        caller = await requester_id(self._api, request)
        post = await self._module.store.run("parta_post_get", _get_txn, post_id)
        if post is None:
            raise not_found(NO_SUCH_POST, post_id=post_id[:80])
        if caller != post["author"] and not self._module.on_behalf.is_trusted_bot(caller):
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
        post = await self._module.store.run("parta_post_get", _get_txn, post_id)
        assert post is not None
        if post["event_id"]:
            return str(post["event_id"])
        if post["sending_at"] is not None:
            found = await self._api.run_db_interaction(
                "parta_post_find",
                _find_sent_txn,
                post["room_id"],
                post["author"],
                post["schedule_id"],
            )
            if found is not None:
                return await self._record(post_id, found)
        now = int(time.time() * 1000)
        await self._module.store.run("parta_post_sending", _mark_sending_txn, post_id, now)
        await self._ensure_joined(post["author"], post["room_id"])
        event = await self._api.create_and_send_event_into_room(
            {
                "type": "m.room.message",
                "room_id": post["room_id"],
                "sender": post["author"],
                "content": {
                    "msgtype": "m.text",
                    "body": post["body"],
                    events.SCHEDULE_ID: post["schedule_id"],
                },
            }
        )
        return await self._record(post_id, event.event_id)

    async def _record(self, post_id: str, event_id: str) -> str:
        now = int(time.time() * 1000)
        return await self._module.store.run("parta_post_sent", _sent_txn, post_id, event_id, now)

    async def _ensure_joined(self, user_id: str, room_id: str) -> None:
        """A school room the author belongs to but never opened: join as them (the
        homeserver's and the module's join rules decide whether they may)."""
        state = await self._api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is not None and member.content.get("membership") == "join":
            return
        await self._api.update_room_membership(user_id, user_id, room_id, "join")
