"""Documents, articles and polls inside Synapse: validation, media limits, indexing.

``check_event_allowed`` validates every Parta event type against its JSON schema and
applies who-may-post rules; ordinary messages cost three dict look-ups. Indexing runs in
``on_new_event`` on one process only (``content.indexer_worker``).

Longer than 600 lines because one event's whole path (check, then index) for each content
type — documents, articles, polls and votes by reply — reads best side by side; the pure
decisions are in ``rules.py`` and ``polls.py``, the SQL in ``store.py``.
"""

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi, StateMap
from synapse.module_api.errors import Codes, SynapseError

from parta_common import events, schemas
from parta_common.messages import Message
from parta_common.roles import Role

from ..errors import bad_json, conflict, forbidden, matrix_error
from ..roster.rules import role_outside_school
from . import polls as counting
from . import sniff as sniffing
from . import store as db
from . import texts
from .config import UploadLimits
from .rules import MANAGERS, STAFF, role_from_state
from .sanitize import clean_html, text_of

if TYPE_CHECKING:
    from .. import PartaModule

logger = logging.getLogger(__name__)

DOCUMENT_MSGTYPES: Final = frozenset({"m.file", "m.video", "m.image"})
BALLOT: Final = "org.parta.ballot"
POLL_BLOCK: Final = "org.parta.poll"


class _EnoughBytes(Exception):
    pass


def derived_id(prefix: str, event_id: str) -> str:
    """A stable API ID for something that started as an event sent by a client."""
    return prefix + hashlib.sha256(event_id.encode()).hexdigest()[:24]


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def parse_mxc(url: str) -> tuple[str, str] | None:
    if not url.startswith("mxc://"):
        return None
    server, _, media_id = url[len("mxc://") :].partition("/")
    return (server, media_id) if server and media_id else None


def _too_large(message: Message, kind: str, limit: int) -> SynapseError:
    """413: a file over the limit for its kind (``message`` says whose limit)."""
    return matrix_error(
        413,
        Codes.TOO_LARGE,
        message,
        kind=kind,
        kind_ru=texts.KIND_RU[kind],
        limit_mib=limit // 1048576,
    )


def malformed(event_type: str, detail: str) -> SynapseError:
    return bad_json(texts.MALFORMED, event_type=event_type, detail=detail)


class Content:
    """What Synapse asks about content (``PartaModule`` registers it, see ``pipeline``):
    validation, media checks, indexing; and the roles the content API shares."""

    def __init__(self, module: "PartaModule") -> None:
        self.api: ModuleApi = module.api
        self.config = module.config.content
        self.store = module.store
        self.roster = module.roster
        self.room_roles = module.room_roles
        self.service_user_id = module.service_user_id
        self.indexer = self.api.worker_name == self.config.indexer_worker

    # -- roles ----------------------------------------------------------------------

    async def role_in_room(
        self, user_id: str, room_id: str, state: StateMap[EventBase] | None = None
    ) -> Role | None:
        """The role that decides what ``user_id`` may do with content in ``room_id``.

        In a school room the roster answers. In any other room (a direct chat, a group
        someone made) the room's own power levels do: ≥ 100 administrator, ≥ 50 teacher,
        joined → student, capped by the person's roster roles
        (``policy.role_outside_school``: a student stays a student in a room they made).
        """
        if await self.roster.get_room(room_id) is not None:
            return await self.roster.role_in_room(user_id, room_id)
        if state is not None:
            role = role_from_state(user_id, state)
            if role is None:
                return None
            return role_outside_school(await self.roster.get_person(user_id), role)
        return await self.room_roles.role_in_room(user_id, room_id)

    async def _staff(self, event: EventBase, state: StateMap[EventBase]) -> bool:
        """Whether the sender is a teacher or administrator where the event is sent."""
        if event.sender == self.service_user_id:
            return True
        return await self.role_in_room(event.sender, event.room_id, state) in STAFF

    async def uploader_role(self, user_id: str) -> Role | None:
        """A person's strongest role in any school, for uploads (not tied to a room)."""
        if user_id == self.service_user_id or await self.api.is_user_admin(user_id):
            return Role.ADMINISTRATOR
        person = await self.roster.get_person(user_id)
        if person.coordinates:
            return Role.COORDINATOR
        roles = {r for s in person.schools.values() for r in s.roles}
        for role in (Role.ADMINISTRATOR, Role.TEACHER, Role.STUDENT, Role.PARENT):
            if role in roles:
                return role
        return None

    def limits_for(self, role: Role | None) -> UploadLimits:
        return self.config.staff_uploads if role in STAFF else self.config.student_uploads

    # -- media callbacks ----------------------------------------------------------

    async def get_media_config_for_user(self, user_id: str) -> dict[str, Any] | None:
        limits = self.limits_for(await self.uploader_role(user_id))
        return {
            "m.upload.size": limits.largest_bytes(),
            "org.parta.upload_limits": {k: limits.bytes_for(k) for k in sniffing.KINDS},
        }

    async def is_user_allowed_to_upload_media_of_size(self, user_id: str, size: int) -> bool:
        limits = self.limits_for(await self.uploader_role(user_id))
        return size <= limits.largest_bytes()

    async def check_media_file_for_spam(self, file_wrapper: Any, file_info: Any) -> Any:
        """Local uploads only: refuse dangerous types, record kind and size by the bytes."""
        if file_info.server_name is not None or file_info.thumbnail or file_info.url_cache:
            return NOT_SPAM
        head = bytearray()

        def take(chunk: bytes) -> None:
            head.extend(chunk)
            if len(head) >= sniffing.HEAD_BYTES:
                raise _EnoughBytes

        with contextlib.suppress(_EnoughBytes):
            await file_wrapper.write_chunks_to(take)
        path = getattr(file_wrapper, "path", None)
        size = len(head)
        if isinstance(path, str):
            size = await self.api.defer_to_thread(os.path.getsize, path)
        found = sniffing.sniff(bytes(head[: sniffing.HEAD_BYTES]))
        if found.forbidden is not None:
            raise matrix_error(415, Codes.FORBIDDEN, texts.FORBIDDEN_FILE, what=found.forbidden)
        limit = max(
            self.config.staff_uploads.bytes_for(found.kind),
            self.config.student_uploads.bytes_for(found.kind),
        )
        if size > limit:
            raise _too_large(texts.TOO_LARGE_AT_ALL, found.kind, limit)
        await self.store.run(
            "content_record_media",
            db.record_media_txn,
            file_info.file_id,
            found.kind,
            found.mimetype,
            size,
            self.api.get_current_time_msec(),
        )
        return NOT_SPAM

    # -- validation ---------------------------------------------------------------

    async def check_event_allowed(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        event_type = event.type
        if event_type == "m.room.message":
            content = event.content
            if events.DOCUMENT in content:
                await self._check_document(event, state)
            elif events.ARTICLE in content:
                return await self._check_article(event, state)
            elif "m.new_content" in content:
                return await self._check_edit(event, state)
            elif _replied_to(content) is not None:
                return await self._check_reply_vote(event)
            return True, None
        if event_type in events.POLL_STARTS:
            await self._check_poll_start(event, state)
        elif event_type in events.POLL_RESPONSES:
            return await self._check_poll_response(event)
        elif event_type in events.POLL_ENDS:
            await self._check_poll_end(event, state)
        return True, None

    def _validate(self, event: EventBase, schema_name: str, value: object) -> bool:
        """True if valid; a local sender gets 400, a remote event is let through unindexed."""
        detail = schemas.problem(schema_name, value)
        if detail is None:
            return True
        if self.api.is_mine(event.sender):
            raise malformed(event.type, detail)
        return False

    async def _check_document(self, event: EventBase, state: StateMap[EventBase]) -> None:
        content = event.content
        if not self._validate(event, "org.parta.document.message", content):
            return
        if not self.api.is_mine(event.sender):
            return
        role = await self.role_in_room(event.sender, event.room_id, state)
        if role not in STAFF and event.sender != self.service_user_id:
            handin = await self.store.run("content_handin", db.get_handin_txn, event.room_id)
            if role is None or not (handin and handin["handin_open"]):
                raise forbidden(texts.DOCUMENT_NOT_ALLOWED)
        await self._check_posted_media(role, content)

    async def _check_posted_media(self, role: Role | None, content: Mapping[str, Any]) -> None:
        """The uploaded bytes must match what the message says, within the role's limit."""
        mxc = parse_mxc(content["url"])
        if mxc is None or not self.api.is_mine(f"@x:{mxc[0]}"):
            return
        media = await self.store.run("content_media", db.get_media_txn, mxc[1])
        if media is None:
            return
        found = sniffing.Sniffed(media["kind"], media["mimetype"])
        declared = str(content["info"]["mimetype"])
        if not sniffing.declared_matches(declared, str(content["msgtype"]), found):
            raise bad_json(texts.MISMATCHED_FILE, sniffed=found.mimetype, declared=declared)
        limit = self.limits_for(role).bytes_for(found.kind)
        if int(media["size"]) > limit:
            raise _too_large(texts.TOO_LARGE_FOR_KIND, found.kind, limit)

    def _sanitized(self, content: Mapping[str, Any]) -> dict[str, Any] | None:
        """``content`` with its HTML made safe, or ``None`` if it already was."""
        changed = False
        new = dict(content)
        html = content.get("formatted_body")
        if isinstance(html, str):
            clean = clean_html(html)
            if clean != html:
                new["formatted_body"] = clean
                changed = True
        inner = content.get("m.new_content")
        if isinstance(inner, Mapping):
            inner_new = self._sanitized(inner)
            if inner_new is not None:
                new["m.new_content"] = inner_new
                changed = True
        return new if changed else None

    def _replacement(self, event: EventBase) -> tuple[bool, dict[str, Any] | None]:
        """Sanitize by replacement (local events only; see docs/content.md)."""
        if not self.api.is_mine(event.sender):
            return True, None
        replaced = event.get_dict()  # plain JSON, unlike event.content
        new = self._sanitized(replaced["content"])
        if new is None:
            return True, None
        replaced["content"] = new
        return True, replaced

    async def _check_article(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        content = event.content
        if not self._validate(event, "org.parta.article.message", content):
            return True, None
        if self.api.is_mine(event.sender) and not await self._staff(event, state):
            raise forbidden(texts.ARTICLE_NOT_ALLOWED)
        return self._replacement(event)

    async def _check_edit(
        self, event: EventBase, state: StateMap[EventBase]
    ) -> tuple[bool, dict[str, Any] | None]:
        content = event.content
        inner = content.get("m.new_content")
        relation = content.get("m.relates_to")
        if not isinstance(inner, Mapping) or not isinstance(relation, Mapping):
            return True, None
        if relation.get("rel_type") != "m.replace":
            return True, None
        if events.ARTICLE in inner:
            if not self._validate(event, "org.parta.article.message", inner):
                return True, None
            if self.api.is_mine(event.sender) and not await self._staff(event, state):
                raise forbidden(texts.ARTICLE_NOT_ALLOWED)
            return self._replacement(event)
        if "formatted_body" in inner or "formatted_body" in content:
            original = relation.get("event_id")
            if isinstance(original, str):
                article = await self.store.run(
                    "content_article_by_event", db.get_article_txn, None, original
                )
                if article is not None:
                    return self._replacement(event)
        return True, None

    def _valid_and_local(self, event: EventBase) -> bool:
        """What the poll rules apply to: valid content (``_validate`` refuses a local event
        whose content is not) sent by one of this server's users."""
        return self._validate(event, event.type, event.content) and self.api.is_mine(event.sender)

    async def _check_poll_start(self, event: EventBase, state: StateMap[EventBase]) -> None:
        content = event.content
        if not self._valid_and_local(event):
            return
        answers = counting.parse_start(event.type, content).answers
        if len({answer_id for answer_id, _ in answers}) != len(answers):
            raise bad_json(texts.DUPLICATE_ANSWER_IDS)
        role = await self.role_in_room(event.sender, event.room_id, state)
        if role not in STAFF and not (self.config.students_may_start_polls and role is not None):
            raise forbidden(texts.POLL_START_NOT_ALLOWED)
        block = content.get(POLL_BLOCK)
        if block is None:
            return
        registered = await self.store.run("content_poll", db.get_poll_txn, block["poll_id"], None)
        if (
            registered is None
            or registered["event_id"] is not None
            or registered["sender"] != event.sender
            or registered["room_id"] != event.room_id
            or registered["quiz"] != bool(block.get("quiz"))
            or registered["anonymous"] != bool(block.get("anonymous"))
        ):
            raise bad_json(texts.PARTA_POLL_VIA_API)

    async def _check_poll_response(self, event: EventBase) -> tuple[bool, dict[str, Any] | None]:
        content = event.content
        if not self._validate(event, event.type, content):
            return True, None
        answers = counting.selections(event.type, content)
        if not self.api.is_mine(event.sender) or not answers:
            return True, None
        poll = await self._related_poll(content)
        if poll is None or not poll["anonymous"]:
            return True, None
        # An anonymous poll: the choice goes into the module's table, the room only learns
        # that this person took part (see docs/content.md, "Anonymous polls").
        ballot_id = new_id("blt_")
        await self.store.run(
            "content_ballot",
            db.add_ballot_txn,
            ballot_id,
            poll["poll_id"],
            event.sender,
            [str(a) for a in answers],
            self.api.get_current_time_msec(),
        )
        replaced = event.get_dict()
        replaced["content"] = counting.anonymised_response(
            event.type, replaced["content"], BALLOT, ballot_id
        )
        return True, replaced

    async def _reply_vote(self, event: EventBase) -> tuple[dict[str, Any], tuple[str, ...]] | None:
        """The poll a text reply votes in and its choice, if it is a vote (not chat)."""
        content = event.content
        target = _replied_to(content)
        body = content.get("body")
        if target is None or not isinstance(body, str) or content.get("msgtype") != "m.text":
            return None
        if counting.reply_numbers(body) is None:
            return None  # not numbers: ordinary chat, no database look-up
        poll = await self.store.run("content_poll_of_reply", db.poll_of_reply_txn, target)
        if poll is None or poll["event_id"] is None:
            return None
        chosen = counting.reply_selection(body, [a["id"] for a in poll["answers"]])
        return None if chosen is None else (poll, chosen)

    async def _check_reply_vote(self, event: EventBase) -> tuple[bool, dict[str, Any] | None]:
        """A reply with answer numbers to a poll or its notice (docs/content.md)."""
        if not self.api.is_mine(event.sender):
            return True, None
        found = await self._reply_vote(event)
        if found is None:
            return True, None
        poll, chosen = found
        if poll["end_ts"] is not None:
            raise conflict(texts.POLL_ENDED)
        if not poll["anonymous"]:
            return True, None  # counted when stored (on_new_event)
        # Anonymous: the number would tell the room the choice. It goes into a ballot and
        # the room sees only «vote recorded», as with an anonymised native response.
        ballot_id = new_id("blt_")
        await self.store.run(
            "content_ballot",
            db.add_ballot_txn,
            ballot_id,
            poll["poll_id"],
            event.sender,
            list(chosen),
            self.api.get_current_time_msec(),
        )
        replaced = event.get_dict()
        recorded = texts.REPLY_VOTE_RECORDED.ru
        replaced["content"] = {
            "msgtype": "m.text",
            "body": recorded,
            "m.relates_to": {"m.in_reply_to": {"event_id": _replied_to(event.content)}},
            BALLOT: ballot_id,
        }
        return True, replaced

    async def _check_poll_end(self, event: EventBase, state: StateMap[EventBase]) -> None:
        content = event.content
        if not self._valid_and_local(event):
            return
        poll = await self._related_poll(content)
        if poll is None or poll["sender"] == event.sender:
            return
        if not await self._staff(event, state):
            raise forbidden(texts.POLL_END_NOT_ALLOWED)

    # -- indexing -------------------------------------------------------------------

    async def on_new_event(self, event: EventBase, state: StateMap[EventBase]) -> None:
        if not self.indexer:
            return
        event_type = event.type
        try:
            if event_type == "m.room.message":
                await self._index_message(event)
            elif event_type in events.POLL_STARTS:
                await self._index_poll_start(event)
            elif event_type in events.POLL_RESPONSES:
                await self._index_poll_response(event)
            elif event_type in events.POLL_ENDS:
                await self._index_poll_end(event, state)
            elif event_type == "m.room.redaction" and isinstance(event.redacts, str):
                await self.store.run("content_redact", db.delete_by_event_txn, event.redacts)
        except Exception:
            logger.exception("Parta could not index %s %s", event_type, event.event_id)

    async def _index_reply_vote(self, event: EventBase) -> None:
        """A reply vote is counted as a response (keyed by its event: exactly once)."""
        ballot = event.content.get(BALLOT)
        if isinstance(ballot, str):
            target = _replied_to(event.content)
            poll = (
                await self.store.run("content_poll_of_reply", db.poll_of_reply_txn, target)
                if target is not None
                else None
            )
            if poll is not None and poll["anonymous"]:
                await self._count_vote(event, poll, ballot, [])
            return
        found = await self._reply_vote(event)
        if found is None or found[0]["anonymous"]:
            return  # an anonymous poll counts only what went through a ballot
        poll, chosen = found
        await self._count_vote(event, poll, None, list(chosen))

    async def _related_poll(self, content: Mapping[str, Any]) -> dict[str, Any] | None:
        """The indexed poll a response or an end (already validated) relates to."""
        poll: dict[str, Any] | None = await self.store.run(
            "content_poll", db.get_poll_txn, None, content["m.relates_to"]["event_id"]
        )
        return poll

    async def _count_vote(
        self, event: EventBase, poll: dict[str, Any], ballot: str | None, chosen: list[str]
    ) -> None:
        """One vote, native or by reply, into the poll's count (keyed by its event: exactly
        once): through its ``ballot`` when it has one (an anonymous poll: who voted is kept
        apart from what was chosen), else as the voter's response naming ``chosen``."""
        if ballot is not None:
            await self.store.run(
                "content_cast_ballot",
                db.cast_ballot_txn,
                ballot,
                poll["poll_id"],
                event.sender,
                event.event_id,
                event.origin_server_ts,
            )
            return
        await self.store.run(
            "content_poll_response",
            db.add_response_txn,
            event.event_id,
            poll["poll_id"],
            event.sender,
            event.origin_server_ts,
            chosen,
        )

    async def _index_message(self, event: EventBase) -> None:
        content = event.content
        if _replied_to(content) is not None:
            await self._index_reply_vote(event)
        if events.DOCUMENT in content:
            if schemas.problem("org.parta.document.message", content) is None:
                await self._index_document(event)
        elif events.ARTICLE in content:
            if schemas.problem("org.parta.article.message", content) is None:
                block = content[events.ARTICLE]
                article_id = block.get("article_id") or derived_id("art_", event.event_id)
                html = str(content["formatted_body"])
                await self.store.run(
                    "content_article_published",
                    db.publish_article_txn,
                    article_id,
                    event.room_id,
                    event.sender,
                    event.event_id,
                    event.origin_server_ts,
                    dict(block),
                    clean_html(html),
                    str(content["body"]),
                )
        elif "m.new_content" in content:
            inner = content["m.new_content"]
            relation = content.get("m.relates_to") or {}
            if (
                isinstance(inner, Mapping)
                and isinstance(relation, Mapping)
                and relation.get("rel_type") == "m.replace"
                and isinstance(relation.get("event_id"), str)
                and isinstance(inner.get("formatted_body", inner.get("body")), str)
            ):
                block = inner.get(events.ARTICLE)
                if block is not None and schemas.problem("org.parta.article", block) is not None:
                    return
                raw_html = inner.get("formatted_body")
                html = raw_html if isinstance(raw_html, str) else str(inner.get("body", ""))
                await self.store.run(
                    "content_article_edit",
                    db.edit_article_txn,
                    relation["event_id"],
                    event.sender,
                    event.event_id,
                    event.origin_server_ts,
                    dict(block) if block is not None else None,
                    clean_html(html),
                    str(inner.get("body", text_of(html))),
                )

    async def _index_document(self, event: EventBase) -> None:
        content = event.content
        block = content[events.DOCUMENT]
        info = content["info"]
        kind = sniffing.MSGTYPE_KIND[content["msgtype"]]
        if kind == sniffing.DOCUMENT:
            kind = sniffing.kind_of_mimetype(str(info["mimetype"]))
        size = int(info["size"])
        mxc = parse_mxc(content["url"])
        if mxc is not None and self.api.is_mine(f"@x:{mxc[0]}"):
            media = await self.store.run("content_media", db.get_media_txn, mxc[1])
            if media is not None:
                kind, size = str(media["kind"]), int(media["size"])
        await self.store.run(
            "content_index_document",
            db.insert_document_txn,
            {
                "doc_id": event.event_id,
                "room_id": event.room_id,
                "sender": event.sender,
                "ts": event.origin_server_ts,
                "kind": kind,
                "msgtype": content["msgtype"],
                "title": block["title"],
                "description": block.get("description", ""),
                "section": block.get("section"),
                "tags": list(block.get("tags", [])),
                "size": size,
                "mimetype": str(info["mimetype"]),
                "url": content["url"],
                "filename": str(content.get("filename") or content["body"]),
            },
        )

    async def _index_poll_start(self, event: EventBase) -> None:
        content = event.content
        if schemas.problem(event.type, content) is not None:
            return
        start = counting.parse_start(event.type, content)
        block = content.get(POLL_BLOCK) or {}
        await self.store.run(
            "content_poll_started",
            db.poll_started_txn,
            {
                "poll_id": block.get("poll_id") or derived_id("pol_", event.event_id),
                "room_id": event.room_id,
                "event_id": event.event_id,
                "sender": event.sender,
                "question": start.question,
                "answers": [{"id": i, "text": text} for i, text in start.answers],
                "max_selections": start.max_selections,
                "disclosed": start.disclosed,
                "anonymous": False,
                "quiz": False,
                "correct": None,
                "created_ts": event.origin_server_ts,
            },
        )

    async def _index_poll_response(self, event: EventBase) -> None:
        content = event.content
        if schemas.problem(event.type, content) is not None:
            return
        poll = await self._related_poll(content)
        if poll is None:
            return
        ballot = content.get(BALLOT)
        if poll["anonymous"] and isinstance(ballot, str):
            await self._count_vote(event, poll, ballot, [])
        else:
            await self._count_vote(event, poll, None, counting.selections(event.type, content))

    async def _index_poll_end(self, event: EventBase, state: StateMap[EventBase]) -> None:
        content = event.content
        if schemas.problem(event.type, content) is not None:
            return
        poll = await self._related_poll(content)
        if poll is None:
            return
        if event.sender != poll["sender"] and not await self._staff(event, state):
            return
        await self.store.run(
            "content_poll_end",
            db.end_poll_txn,
            poll["poll_id"],
            event.origin_server_ts,
            event.event_id,
        )


def _replied_to(content: Mapping[str, Any]) -> str | None:
    """The event a message replies to (``m.in_reply_to``), if any."""
    relation = content.get("m.relates_to")
    if not isinstance(relation, Mapping):
        return None
    reply = relation.get("m.in_reply_to")
    if not isinstance(reply, Mapping):
        return None
    target = reply.get("event_id")
    return target if isinstance(target, str) else None


__all__ = ["MANAGERS", "Content"]
