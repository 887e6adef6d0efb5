"""The content REST API: documents, articles, polls (see docs/api.md, "Content")."""

import html as html_lib
import io
import secrets
from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from parta_common import events
from parta_common.roles import Role

from .. import query
from .. import roster_store as roster_db
from ..errors import bad_json, conflict, forbidden, not_found
from ..http import ApiResource, json_body, requester_id
from . import polls as counting
from . import sniff as sniffing
from . import store as db
from . import texts
from .access import MANAGERS, STAFF
from .sanitize import SafeCsvWriter, clean_html, safe_article, text_of

if TYPE_CHECKING:
    from .feature import Content

ROOM: Final = r"/rooms/([^/]+)"
MXC_PATTERN: Final = r"^mxc://[A-Za-z0-9.:\-\[\]]+/[A-Za-z0-9_\-]+$"

HANDIN_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["open"],
    "properties": {"open": {"type": "boolean"}},
}
ARTICLE_FIELDS: Final = {
    "title": {"type": "string", "minLength": 1, "maxLength": 300},
    "topic": {"type": "string", "maxLength": 100},
    "cover": {"type": ["string", "null"], "pattern": MXC_PATTERN},
    "html": {"type": "string", "minLength": 1, "maxLength": 200000},
}
NEW_ARTICLE_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "html"],
    "properties": {**ARTICLE_FIELDS, "publish": {"type": "boolean"}},
}
EDIT_ARTICLE_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": ARTICLE_FIELDS,
}
NEW_POLL_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["question", "answers"],
    "properties": {
        "question": {"type": "string", "minLength": 1, "maxLength": 1000},
        "answers": {
            "type": "array",
            "minItems": 2,
            "maxItems": 20,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["text"],
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": 1000},
                    "correct": {"type": "boolean"},
                },
            },
        },
        "max_selections": {"type": "integer", "minimum": 1, "maximum": 20},
        "disclosed": {"type": "boolean"},
        "anonymous": {"type": "boolean"},
        "quiz": {"type": "boolean"},
    },
}
VOTE_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answers"],
    "properties": {
        "answers": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
        }
    },
}
# The request schemas, published in the OpenAPI document under these names.
REQUEST_SCHEMAS: Final = {
    "Handin": HANDIN_BODY,
    "NewArticle": NEW_ARTICLE_BODY,
    "EditArticle": EDIT_ARTICLE_BODY,
    "NewPoll": NEW_POLL_BODY,
    "Vote": VOTE_BODY,
}


def _param(request: SynapseRequest, name: str) -> str | None:
    return query.query_string(request, name)


def _params(request: SynapseRequest, name: str) -> list[str]:
    return query.query_strings(request, name)


_bad_param = query.bad_param
_int_param = query.query_int
_choice = query.query_choice


def article_content(
    title: str, topic: str, cover: str | None, html: str, article_id: str
) -> dict[str, Any]:
    """The event content of an article: readable as a formatted message in any client."""
    safe = clean_html(html)
    heading = f"<h2>{html_lib.escape(title)}</h2>"
    cover_html = (
        f'<p><img src="{html_lib.escape(cover)}" alt="{html_lib.escape(title)}"></p>'
        if cover
        else ""
    )
    block: dict[str, Any] = {"title": title, "article_id": article_id}
    if topic:
        block["topic"] = topic
    if cover:
        block["cover"] = cover
    text = text_of(safe)
    return {
        "msgtype": "m.text",
        "body": f"{title}\n\n{text}" if text else title,
        "format": "org.matrix.custom.html",
        "formatted_body": heading + cover_html + safe,
        events.ARTICLE: block,
    }


def poll_start_content(poll: dict[str, Any]) -> dict[str, Any]:
    question = poll["question"]
    lines = [question] + [f"{i}. {a['text']}" for i, a in enumerate(poll["answers"], 1)]
    return {
        events.POLL_START: {
            "question": {
                events.TEXT_FALLBACK: question,
                "body": question,
                "msgtype": "m.text",
            },
            "kind": "org.matrix.msc3381.poll.disclosed"
            if poll["disclosed"]
            else "org.matrix.msc3381.poll.undisclosed",
            "max_selections": poll["max_selections"],
            "answers": [{"id": a["id"], events.TEXT_FALLBACK: a["text"]} for a in poll["answers"]],
        },
        events.TEXT_FALLBACK: "\n".join(lines),
        "org.parta.poll": {
            "poll_id": poll["poll_id"],
            "quiz": poll["quiz"],
            "anonymous": poll["anonymous"],
        },
    }


class ContentApi:
    def __init__(self, content: "Content") -> None:
        self.content = content
        self.api = content.api
        self.store = content.store

    # (method, pattern under BASE_PATH, handler name): registered here, listed for the docs.
    ROUTES: Final = (
        ("GET", "/documents", "list_documents"),
        ("GET", f"{ROOM}/handin", "get_handin"),
        ("PUT", f"{ROOM}/handin", "put_handin"),
        ("GET", "/media/limits", "media_limits"),
        ("POST", f"{ROOM}/articles", "create_article"),
        ("GET", "/articles", "list_articles"),
        ("GET", "/articles/([^/]+)", "get_article"),
        ("PATCH", "/articles/([^/]+)", "edit_article"),
        ("POST", "/articles/([^/]+)/publish", "publish_article"),
        ("GET", "/articles/([^/]+)/revisions", "article_revisions"),
        ("POST", "/articles/([^/]+)/views", "record_view"),
        ("POST", f"{ROOM}/polls", "create_poll"),
        ("GET", f"{ROOM}/polls", "list_polls"),
        ("GET", "/polls/([^/]+)", "poll_results"),
        ("POST", "/polls/([^/]+)/votes", "vote"),
        ("POST", "/polls/([^/]+)/end", "end_poll"),
        ("GET", "/polls/([^/]+)/scores", "quiz_scores"),
        ("GET", "/polls/([^/]+)/results.csv", "results_csv"),
    )

    def register(self, resource: ApiResource) -> None:
        for method, pattern, handler in self.ROUTES:
            resource.route(method, pattern, getattr(self, handler))

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
            rooms = await self.store.run(
                "content_school_rooms", roster_db.school_rooms_txn, school_id
            )
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

    # -- documents ------------------------------------------------------------------

    async def list_documents(self, request: SynapseRequest) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        room_ids = await self._rooms(request, user_id)
        kind = _param(request, "kind")
        if kind is not None and kind not in sniffing.KINDS:
            raise _bad_param("kind", f"one of {', '.join(sniffing.KINDS)}")
        sort = _choice(request, "sort", tuple(db.DOCUMENT_SORTS), "date")
        order = _choice(request, "dir", ("desc", "asc"), "desc" if sort != "title" else "asc")
        limit = query.query_limit(request)
        rows = await self.store.run(
            "content_list_documents",
            db.list_documents_txn,
            room_ids,
            kind,
            _param(request, "tag") or None,
            _param(request, "author") or None,
            _int_param(request, "since", None, 0, query.BIGINT_MAX),
            _int_param(request, "until", None, 0, query.BIGINT_MAX),
            (_param(request, "q") or "").strip() or None,
            sort,
            order == "desc",
            query.query_cursor(request, numeric=sort != "title"),
            limit + 1,
        )
        col = db.DOCUMENT_SORTS[sort]
        next_batch = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_batch = query.encode_cursor(rows[-1][col], rows[-1]["event_id"])
        for row in rows:
            row.pop("title_key", None)
        return 200, {"documents": rows, "next_batch": next_batch}

    async def get_handin(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        await self._member(await requester_id(self.api, request), room_id)
        row = await self.store.run("content_handin", db.get_handin_txn, room_id)
        return 200, {
            "room_id": room_id,
            "open": bool(row and row["handin_open"]),
            "changed_by": row["changed_by"] if row else None,
            "changed_ts": row["changed_ts"] if row else None,
        }

    async def put_handin(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        user_id = await requester_id(self.api, request)
        await self._staff(user_id, room_id)
        body = json_body(request, HANDIN_BODY)
        await self.store.run(
            "content_set_handin", db.set_handin_txn, room_id, body["open"], user_id, self._now()
        )
        return 200, {"room_id": room_id, "open": body["open"]}

    async def media_limits(self, request: SynapseRequest) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        role = await self.content.uploader_role(user_id)
        limits = self.content.limits_for(role)
        return 200, {
            "limits": "staff" if role in STAFF else "student",
            "bytes": {k: limits.bytes_for(k) for k in sniffing.KINDS},
        }

    # -- articles -----------------------------------------------------------------

    async def _article(self, article_id: str) -> dict[str, Any]:
        article = await self.store.run("content_article", db.get_article_txn, article_id, None)
        if article is None or article["status"] == "removed":
            raise not_found(texts.NO_SUCH_ARTICLE, id=article_id)
        return safe_article(article)

    async def _readable_article(self, user_id: str, article_id: str) -> dict[str, Any]:
        article = await self._article(article_id)
        if article["status"] == "draft" and article["author"] != user_id:
            raise not_found(texts.NO_SUCH_ARTICLE, id=article_id)
        await self._member(user_id, article["room_id"])
        return article

    async def _publish(self, article: dict[str, Any]) -> dict[str, Any]:
        content = article_content(
            article["title"], article["topic"], article["cover"], article["html"],
            article["article_id"],
        )  # fmt: skip
        event_id = await self._send(
            article["author"], article["room_id"], "m.room.message", content
        )
        await self.store.run(
            "content_article_published",
            db.publish_article_txn,
            article["article_id"],
            article["room_id"],
            article["author"],
            event_id,
            self._now(),
            content[events.ARTICLE],
            content["formatted_body"],
            content["body"],
        )
        return await self._article(article["article_id"])

    async def create_article(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        user_id = await requester_id(self.api, request)
        await self._staff(user_id, room_id)
        body = json_body(request, NEW_ARTICLE_BODY)
        now = self._now()
        article = {
            "article_id": _new("art_"),
            "room_id": room_id,
            "author": user_id,
            "status": "draft",
            "title": body["title"],
            "topic": body.get("topic", ""),
            "cover": body.get("cover"),
            "html": clean_html(body["html"]),
            "body": text_of(body["html"]),
            "event_id": None,
            "created_ts": now,
            "published_ts": None,
            "updated_ts": now,
            "revisions": 0,
        }
        await self.store.run("content_new_article", db.insert_article_txn, article)
        if body.get("publish", True):
            try:
                return 201, await self._publish(article)
            except Exception:
                await self.store.run(
                    "content_drop_draft", db.delete_draft_txn, article["article_id"]
                )
                raise
        return 201, await self._article(article["article_id"])

    async def edit_article(self, request: SynapseRequest, article_id: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        article = await self._article(article_id)
        if article["author"] != user_id:
            raise forbidden(texts.NOT_THE_AUTHOR)
        await self._staff(user_id, article["room_id"])
        body = json_body(request, EDIT_ARTICLE_BODY)
        fields: dict[str, Any] = {}
        for key in ("title", "topic", "cover"):
            if key in body:
                fields[key] = body[key]
        if article["status"] == "draft":
            if "html" in body:
                fields["html"] = clean_html(body["html"])
                fields["body"] = text_of(body["html"])
            fields["updated_ts"] = self._now()
            await self.store.run(
                "content_edit_draft", db.update_draft_txn, article["article_id"], fields
            )
            return 200, await self._article(article["article_id"])
        # Published: an m.replace edit, so every client shows the new text and Matrix keeps
        # the old one; the module keeps each revision too.
        merged = {**article, **fields}
        if "html" in body:
            html = body["html"]
        else:
            revisions = await self.store.run(
                "content_revisions", db.list_revisions_txn, article["article_id"]
            )
            html = _article_html(revisions[-1]["html"]) if revisions else article["html"]
        new_content = article_content(
            merged["title"], merged["topic"] or "", merged["cover"], html, article["article_id"]
        )
        edit = {
            "msgtype": "m.text",
            "body": f"* {new_content['body']}",
            "format": "org.matrix.custom.html",
            "formatted_body": f"* {new_content['formatted_body']}",
            "m.new_content": new_content,
            "m.relates_to": {"rel_type": "m.replace", "event_id": article["event_id"]},
        }
        event_id = await self._send(user_id, article["room_id"], "m.room.message", edit)
        await self.store.run(
            "content_article_edit",
            db.edit_article_txn,
            article["event_id"],
            user_id,
            event_id,
            self._now(),
            new_content[events.ARTICLE],
            new_content["formatted_body"],
            new_content["body"],
        )
        return 200, await self._article(article["article_id"])

    async def publish_article(self, request: SynapseRequest, article_id: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        article = await self._article(article_id)
        if article["author"] != user_id:
            raise forbidden(texts.NOT_THE_AUTHOR)
        if article["status"] != "draft":
            raise conflict(texts.ALREADY_PUBLISHED)
        await self._staff(user_id, article["room_id"])
        return 200, await self._publish(article)

    async def get_article(self, request: SynapseRequest, article_id: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        return 200, await self._readable_article(user_id, article_id)

    async def article_revisions(self, request: SynapseRequest, article_id: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        article = await self._readable_article(user_id, article_id)
        revisions = await self.store.run(
            "content_revisions", db.list_revisions_txn, article["article_id"]
        )
        return 200, {
            "article_id": article["article_id"],
            "revisions": [safe_article(r) for r in revisions],
        }

    async def record_view(self, request: SynapseRequest, article_id: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        article = await self._readable_article(user_id, article_id)
        if article["status"] != "published":
            return 200, {"counted": False, "views": article["views"]}
        counted = await self.store.run(
            "content_view", db.record_view_txn, article["article_id"], user_id, self._now()
        )
        fresh = await self._article(article["article_id"])
        return 200, {"counted": counted, "views": fresh["views"]}

    async def list_articles(self, request: SynapseRequest) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        room_ids = await self._rooms(request, user_id)
        status = _choice(request, "status", ("published", "draft"), "published")
        sort = _choice(request, "sort", tuple(db.ARTICLE_SORTS), "date")
        order = _choice(request, "dir", ("desc", "asc"), "asc" if sort == "topic" else "desc")
        limit = query.query_limit(request)
        rows = await self.store.run(
            "content_list_articles",
            db.list_articles_txn,
            room_ids,
            status,
            user_id if status == "draft" else (_param(request, "author") or None),
            _param(request, "topic"),
            sort,
            order == "desc",
            query.query_cursor(request, numeric=sort != "topic"),
            limit + 1,
        )
        col = db.ARTICLE_SORTS[sort] if status == "published" or sort != "date" else "updated_ts"
        next_batch = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_batch = query.encode_cursor(rows[-1][col], rows[-1]["article_id"])
        return 200, {"articles": [safe_article(r) for r in rows], "next_batch": next_batch}

    # -- polls ----------------------------------------------------------------------

    async def _poll(self, poll_ref: str) -> dict[str, Any]:
        ref = poll_ref
        if ref.startswith("$"):
            poll = await self.store.run("content_poll", db.get_poll_txn, None, ref)
        else:
            poll = await self.store.run("content_poll", db.get_poll_txn, ref, None)
        if poll is None or poll["event_id"] is None:
            raise not_found(texts.NO_SUCH_POLL, id=ref)
        return poll

    async def _tally(self, poll: dict[str, Any]) -> counting.Tally:
        rows = await self.store.run("content_responses", db.responses_txn, poll["poll_id"])
        return counting.tally(
            [a["id"] for a in poll["answers"]],
            poll["max_selections"],
            (counting.Response(u, ts, tuple(a)) for u, ts, a in rows),
            poll["end_ts"],
        )

    async def create_poll(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        user_id = await requester_id(self.api, request)
        role = await self._member(user_id, room_id)
        if role not in STAFF and not self.content.config.students_may_start_polls:
            raise forbidden(texts.POLL_START_NOT_ALLOWED)
        body = json_body(request, NEW_POLL_BODY)
        quiz = bool(body.get("quiz", False))
        anonymous = bool(body.get("anonymous", False))
        answers = [{"id": secrets.token_hex(4), "text": a["text"]} for a in body["answers"]]
        correct = [
            answers[i]["id"] for i, a in enumerate(body["answers"]) if a.get("correct", False)
        ]
        if quiz and not correct:
            raise bad_json(texts.QUIZ_NEEDS_CORRECT)
        if correct and not quiz:
            raise bad_json(texts.CORRECT_ONLY_IN_QUIZ)
        max_selections = int(body.get("max_selections", 1))
        if max_selections > len(answers):
            raise _bad_param("max_selections", "more than the number of answers")
        poll = {
            "poll_id": _new("pol_"),
            "room_id": room_id,
            "event_id": None,
            "sender": user_id,
            "question": body["question"],
            "answers": answers,
            "max_selections": max_selections,
            # Anonymous polls are undisclosed in Element: the room's own tally is empty.
            "disclosed": bool(body.get("disclosed", True)) and not anonymous,
            "anonymous": anonymous,
            "quiz": quiz,
            "correct": correct if quiz else None,
            "created_ts": self._now(),
        }
        await self.store.run("content_new_poll", db.insert_poll_txn, poll)
        try:
            event_id = await self._send(
                user_id, room_id, events.POLL_START, poll_start_content(poll)
            )
        except Exception:
            await self.store.run("content_drop_poll", db.delete_poll_txn, poll["poll_id"])
            raise
        await self.store.run(
            "content_poll_started", db.poll_started_txn, {**poll, "event_id": event_id}
        )
        return 201, {"poll_id": poll["poll_id"], "event_id": event_id, "room_id": room_id}

    async def list_polls(self, request: SynapseRequest, room: str) -> tuple[int, Any]:
        room_id = room
        await self._member(await requester_id(self.api, request), room_id)
        limit = query.query_limit(request)
        rows = await self.store.run("content_polls", db.list_polls_txn, room_id, limit)
        return 200, {"polls": [_public_poll(p) for p in rows]}

    async def _results(self, poll: dict[str, Any], user_id: str) -> dict[str, Any]:
        role = await self.content.role_in_room(user_id, poll["room_id"])
        owner = poll["sender"] == user_id
        if role is None and not owner:
            raise forbidden(texts.NOT_A_MEMBER)
        privileged = owner or role in MANAGERS
        ended = poll["end_ts"] is not None
        tally = await self._tally(poll)
        show_counts = poll["disclosed"] or ended or privileged
        result = _public_poll(poll)
        result["answers"] = [
            {
                "id": a["id"],
                "text": a["text"],
                "votes": tally.counts[a["id"]] if show_counts else None,
            }
            for a in poll["answers"]
        ]
        result["voters"] = tally.voters if show_counts else None
        result["my_answers"] = list(tally.choices.get(user_id, ()))
        if poll["quiz"] and ended:
            correct = poll["correct"] or []
            for answer in result["answers"]:
                answer["correct"] = answer["id"] in correct
            if user_id in tally.choices:
                result["my_score"] = counting.score(tally.choices[user_id], correct)
        if privileged and not poll["anonymous"]:
            people = []
            for voter, chosen in sorted(tally.choices.items()):
                entry: dict[str, Any] = {"user_id": voter, "answers": list(chosen)}
                if poll["quiz"] and ended:
                    entry["score"] = counting.score(chosen, poll["correct"] or [])
                people.append(entry)
            result["by_person"] = people
        return result

    async def poll_results(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        return 200, await self._results(await self._poll(poll_ref), user_id)

    async def vote(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        await self._member(user_id, poll["room_id"])
        body = json_body(request, VOTE_BODY)
        if poll["end_ts"] is not None:
            raise conflict(texts.POLL_ENDED)
        known = {a["id"] for a in poll["answers"]}
        for answer in body["answers"]:
            if answer not in known:
                raise bad_json(texts.BAD_ANSWER, answer=answer)
        if len(set(body["answers"])) > poll["max_selections"]:
            raise _bad_param("answers", f"at most {poll['max_selections']} answer(s)")
        now = self._now()
        if poll["anonymous"]:
            # No room event at all: the choice is only in the module's table.
            await self.store.run(
                "content_vote",
                db.add_response_txn,
                _new("api_"),
                poll["poll_id"],
                user_id,
                now,
                body["answers"],
            )
            return 200, {"poll_id": poll["poll_id"], "event_id": None}
        content = {
            events.POLL_RESPONSE: {"answers": body["answers"]},
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
        }
        event_id = await self._send(user_id, poll["room_id"], events.POLL_RESPONSE, content)
        await self.store.run(
            "content_vote",
            db.add_response_txn,
            event_id,
            poll["poll_id"],
            user_id,
            now,
            body["answers"],
        )
        return 200, {"poll_id": poll["poll_id"], "event_id": event_id}

    async def end_poll(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        role = await self._member(user_id, poll["room_id"])
        if poll["sender"] != user_id and role not in STAFF:
            raise forbidden(texts.POLL_END_NOT_ALLOWED)
        if poll["end_ts"] is not None:
            raise conflict(texts.POLL_ENDED)
        tally = await self._tally(poll)
        lines = [texts.POLL_ENDED_TEXT.format(), poll["question"]]
        lines += [f"{a['text']}: {tally.counts[a['id']]}" for a in poll["answers"]]
        if poll["quiz"]:
            names = [a["text"] for a in poll["answers"] if a["id"] in (poll["correct"] or [])]
            lines.append(texts.CORRECT_TEXT.format(answers=", ".join(names)))
        content = {
            events.POLL_END: {},
            events.TEXT_FALLBACK: "\n".join(lines),
            "body": "\n".join(lines),
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
        }
        event_id = await self._send(user_id, poll["room_id"], events.POLL_END, content)
        await self.store.run(
            "content_poll_end", db.end_poll_txn, poll["poll_id"], self._now(), event_id
        )
        return 200, await self._results(await self._poll(poll["poll_id"]), user_id)

    async def _privileged(self, poll: dict[str, Any], user_id: str) -> None:
        if poll["sender"] == user_id:
            return
        if await self.content.role_in_room(user_id, poll["room_id"]) not in MANAGERS:
            raise forbidden(texts.OWNER_ONLY)

    async def quiz_scores(self, request: SynapseRequest, poll_ref: str) -> tuple[int, Any]:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        await self._privileged(poll, user_id)
        if not poll["quiz"] or poll["end_ts"] is None:
            raise conflict(texts.POLL_NOT_ENDED)
        if poll["anonymous"]:
            raise forbidden(texts.ANONYMOUS_NO_NAMES)
        tally = await self._tally(poll)
        correct = poll["correct"] or []
        scores = [
            {"user_id": u, "answers": list(c), "score": counting.score(c, correct)}
            for u, c in sorted(tally.choices.items())
        ]
        return 200, {
            "poll_id": poll["poll_id"],
            "correct": correct,
            "participants": len(scores),
            "correct_count": sum(s["score"] for s in scores),
            "scores": scores,
        }

    async def results_csv(self, request: SynapseRequest, poll_ref: str) -> None:
        user_id = await requester_id(self.api, request)
        poll = await self._poll(poll_ref)
        result = await self._results(poll, user_id)
        out = io.StringIO()
        writer = SafeCsvWriter(out)
        quiz_done = poll["quiz"] and poll["end_ts"] is not None
        writer.writerow(["answer_id", "answer", "votes", *(["correct"] if quiz_done else [])])
        for a in result["answers"]:
            row = [a["id"], a["text"], "" if a["votes"] is None else a["votes"]]
            writer.writerow(row + ([int(a["correct"])] if quiz_done else []))
        if "by_person" in result:
            texts_by_id = {a["id"]: a["text"] for a in poll["answers"]}
            writer.writerow([])
            writer.writerow(["user_id", "answers", *(["score"] if quiz_done else [])])
            for person in result["by_person"]:
                chosen = "; ".join(texts_by_id[a] for a in person["answers"])
                extra = [person["score"]] if quiz_done else []
                writer.writerow([person["user_id"], chosen, *extra])
        data = ("\ufeff" + out.getvalue()).encode("utf-8")
        request.setResponseCode(200)
        disposition = f'attachment; filename="{poll["poll_id"]}.csv"'.encode("ascii")
        request.setHeader(b"Content-Type", b"text/csv; charset=utf-8")  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Disposition", disposition)  # type: ignore[no-untyped-call]
        request.setHeader(b"Content-Length", str(len(data)).encode("ascii"))  # type: ignore[no-untyped-call]
        request.write(data)  # type: ignore[no-untyped-call]
        request.finish()


def _new(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _article_html(html: str) -> str:
    """The article's own HTML from a published revision (without heading and cover)."""
    _, sep, rest = html.partition("</h2>")
    if not sep:
        return html
    if rest.startswith("<p><img"):
        _, sep2, rest2 = rest.partition("</p>")
        return rest2 if sep2 else rest
    return rest


def _public_poll(poll: dict[str, Any]) -> dict[str, Any]:
    """What anyone in the room may know about a poll (never the correct answers)."""
    return {
        "poll_id": poll["poll_id"],
        "event_id": poll["event_id"],
        "room_id": poll["room_id"],
        "sender": poll["sender"],
        "question": poll["question"],
        "answers": [{"id": a["id"], "text": a["text"]} for a in poll["answers"]],
        "max_selections": poll["max_selections"],
        "disclosed": poll["disclosed"],
        "anonymous": poll["anonymous"],
        "quiz": poll["quiz"],
        "ended": poll["end_ts"] is not None,
        "end_ts": poll["end_ts"],
        "created_ts": poll["created_ts"],
    }
