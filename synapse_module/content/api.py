"""The content REST API: documents, articles, polls (see docs/api.md, "Content")."""

from typing import TYPE_CHECKING, Any, Final

from synapse.module_api import SynapseRequest

from parta_common import events

from .. import query
from ..errors import conflict, forbidden, not_found
from ..http import json_body, requester_id
from . import sniff as sniffing
from . import store as db
from . import texts
from .rules import STAFF
from .sanitize import clean_html, safe_article, text_of

if TYPE_CHECKING:
    pass

from .events import article_content
from .handlers import (
    EDIT_ARTICLE_BODY,
    HANDIN_BODY,
    NEW_ARTICLE_BODY,
    _bad_param,
    _choice,
    _int_param,
    _new,
    _param,
)
from .polls_api import PollsApi

ROOM: Final = r"/rooms/([^/]+)"


class ContentApi(PollsApi):
    """The content routes: documents and articles here, polls in ``polls_api``."""

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


def _article_html(html: str) -> str:
    """The article's own HTML from a published revision (without heading and cover)."""
    _, sep, rest = html.partition("</h2>")
    if not sep:
        return html
    if rest.startswith("<p><img"):
        _, sep2, rest2 = rest.partition("</p>")
        return rest2 if sep2 else rest
    return rest
