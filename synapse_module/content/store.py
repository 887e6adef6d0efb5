"""SQL for documents, articles and polls: plain transaction functions.

One dialect for SQLite and PostgreSQL (``?`` placeholders, ``ON CONFLICT``). Listings
use keyset pagination on ``(sort key, id)`` so every page is an index range scan.
"""

import json
from collections.abc import Sequence
from typing import Any, Final

from synapse.module_api import LoggingTransaction

from synapse_module.store import rows_as_dicts

DOCUMENT_SORTS: Final = {"date": "ts", "title": "title_key", "size": "size"}
ARTICLE_SORTS: Final = {"date": "published_ts", "topic": "topic", "views": "views"}


def _in(values: Sequence[str]) -> str:
    return ",".join("?" for _ in values)


# -- documents -----------------------------------------------------------------


def insert_document_txn(txn: LoggingTransaction, doc: dict[str, Any]) -> None:
    txn.execute(
        """INSERT INTO content_documents (doc_id, room_id, sender, ts, kind, msgtype, title,
            title_key, description, search_text, section, tags, size, mimetype, url, filename)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (doc_id) DO NOTHING""",
        (
            doc["doc_id"],
            doc["room_id"],
            doc["sender"],
            doc["ts"],
            doc["kind"],
            doc["msgtype"],
            doc["title"],
            doc["title"].casefold(),
            doc["description"],
            f"{doc['title']}\n{doc['description']}".casefold(),
            doc["section"],
            json.dumps(doc["tags"], ensure_ascii=False),
            doc["size"],
            doc["mimetype"],
            doc["url"],
            doc["filename"],
        ),
    )
    if txn.rowcount != 1:
        return
    for tag in doc["tags"]:
        txn.execute(
            "INSERT INTO content_document_tags (doc_id, room_id, tag, ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (doc_id, tag) DO NOTHING",
            (doc["doc_id"], doc["room_id"], tag.casefold(), doc["ts"]),
        )


def delete_by_event_txn(txn: LoggingTransaction, event_id: str) -> None:
    """A redaction: forget a document, a poll response or a published article."""
    txn.execute("DELETE FROM content_documents WHERE doc_id = ?", (event_id,))
    txn.execute("DELETE FROM content_document_tags WHERE doc_id = ?", (event_id,))
    txn.execute("DELETE FROM content_poll_responses WHERE response_id = ?", (event_id,))
    txn.execute("UPDATE content_articles SET status = 'removed' WHERE event_id = ?", (event_id,))


def list_documents_txn(
    txn: LoggingTransaction,
    room_ids: Sequence[str],
    kind: str | None,
    tag: str | None,
    author: str | None,
    since: int | None,
    until: int | None,
    query: str | None,
    sort: str,
    descending: bool,
    cursor: tuple[Any, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """One page of documents. Each room is read through its own index range (at most
    ``limit`` rows each) and the pages are merged, so a school-wide listing costs
    rooms × limit, not the number of documents."""
    col = DOCUMENT_SORTS[sort]
    where = ["d.room_id = ?"]
    args: list[Any] = []
    if kind is not None:
        where.append("d.kind = ?")
        args.append(kind)
    if author is not None:
        where.append("d.sender = ?")
        args.append(author)
    if since is not None:
        where.append("d.ts >= ?")
        args.append(since)
    if until is not None:
        where.append("d.ts < ?")
        args.append(until)
    if query:
        escaped = query.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("d.search_text LIKE ? ESCAPE '\\'")
        args.append(f"%{escaped}%")
    op = "<" if descending else ">"
    if cursor is not None:
        # A row value, so both SQLite and PostgreSQL seek in the index.
        where.append(f"(d.{col}, d.doc_id) {op} (?, ?)")
        args.extend([cursor[0], cursor[1]])
    direction = "DESC" if descending else "ASC"
    order = f"ORDER BY {col} {direction}, doc_id {direction}"
    inner_order = f"ORDER BY d.{col} {direction}, d.doc_id {direction}"
    columns = (
        "d.doc_id, d.room_id, d.sender, d.ts, d.kind, d.msgtype, d.title, d.title_key,"
        " d.description, d.section, d.tags, d.size, d.mimetype, d.url, d.filename"
    )
    if tag is not None:
        source = (
            "content_document_tags t JOIN content_documents d ON d.doc_id = t.doc_id"
            " WHERE t.room_id = ? AND t.tag = ? AND "
        )
        # By date, the tag index (room, tag, ts, doc) already gives the order.
        key = "t.ts" if col == "ts" else f"d.{col}"
        tag_order = f"ORDER BY {key} {direction}, t.doc_id {direction}"
        per_room_sql = f"SELECT {columns} FROM {source}{' AND '.join(where)} {tag_order} LIMIT ?"
    else:
        per_room_sql = (
            f"SELECT {columns} FROM content_documents d WHERE {' AND '.join(where)}"
            f" {inner_order} LIMIT ?"
        )
    parts: list[str] = []
    all_args: list[Any] = []
    for room_id in room_ids:
        parts.append(f"SELECT * FROM ({per_room_sql}) AS r{len(parts)}")
        if tag is not None:
            all_args.extend([room_id, tag.casefold()])
        all_args.extend([room_id, *args, limit])
    if len(parts) == 1:
        sql = per_room_sql
    else:
        sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS merged {order} LIMIT ?"
        all_args.append(limit)
    txn.execute(sql, all_args)
    rows = rows_as_dicts(txn)
    for row in rows:
        row["event_id"] = row.pop("doc_id")
        row["tags"] = json.loads(row["tags"])
    return rows


def record_media_txn(
    txn: LoggingTransaction, media_id: str, kind: str, mimetype: str, size: int, ts: int
) -> None:
    txn.execute(
        "INSERT INTO content_media (media_id, kind, mimetype, size, ts) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (media_id) DO UPDATE SET kind = excluded.kind,"
        " mimetype = excluded.mimetype, size = excluded.size, ts = excluded.ts",
        (media_id, kind, mimetype, size, ts),
    )


def get_media_txn(txn: LoggingTransaction, media_id: str) -> dict[str, Any] | None:
    txn.execute("SELECT kind, mimetype, size FROM content_media WHERE media_id = ?", (media_id,))
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def get_handin_txn(txn: LoggingTransaction, room_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT handin_open, changed_by, changed_ts FROM content_room_settings WHERE room_id = ?",
        (room_id,),
    )
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def set_handin_txn(
    txn: LoggingTransaction, room_id: str, is_open: bool, user_id: str, ts: int
) -> None:
    txn.execute(
        "INSERT INTO content_room_settings (room_id, handin_open, changed_by, changed_ts)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET"
        " handin_open = excluded.handin_open, changed_by = excluded.changed_by,"
        " changed_ts = excluded.changed_ts",
        (room_id, is_open, user_id, ts),
    )


# -- articles ------------------------------------------------------------------

ARTICLE_COLUMNS: Final = (
    "article_id, room_id, author, status, title, topic, cover, html, body, event_id,"
    " created_ts, published_ts, updated_ts, revisions, views"
)


def insert_article_txn(txn: LoggingTransaction, a: dict[str, Any]) -> None:
    txn.execute(
        f"INSERT INTO content_articles ({ARTICLE_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            a["article_id"],
            a["room_id"],
            a["author"],
            a["status"],
            a["title"],
            a["topic"],
            a["cover"],
            a["html"],
            a["body"],
            a["event_id"],
            a["created_ts"],
            a["published_ts"],
            a["updated_ts"],
            a["revisions"],
            0,
        ),
    )


def get_article_txn(
    txn: LoggingTransaction, article_id: str | None = None, event_id: str | None = None
) -> dict[str, Any] | None:
    if article_id is not None:
        txn.execute(
            f"SELECT {ARTICLE_COLUMNS} FROM content_articles WHERE article_id = ?", (article_id,)
        )
    else:
        txn.execute(
            f"SELECT {ARTICLE_COLUMNS} FROM content_articles WHERE event_id = ?", (event_id,)
        )
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def delete_draft_txn(txn: LoggingTransaction, article_id: str) -> None:
    txn.execute(
        "DELETE FROM content_articles WHERE article_id = ? AND event_id IS NULL", (article_id,)
    )


def update_draft_txn(txn: LoggingTransaction, article_id: str, fields: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    txn.execute(
        f"UPDATE content_articles SET {sets} WHERE article_id = ? AND status = 'draft'",
        (*fields.values(), article_id),
    )


def publish_article_txn(
    txn: LoggingTransaction,
    article_id: str,
    room_id: str,
    author: str,
    event_id: str,
    ts: int,
    block: dict[str, Any],
    html: str,
    body: str,
) -> None:
    """The original article event: create the row (or turn the draft into it), revision 1."""
    txn.execute("SELECT 1 FROM content_article_revisions WHERE event_id = ?", (event_id,))
    if txn.fetchone() is not None:
        return  # already recorded (the API and the indexer both report a publication)
    existing = get_article_txn(txn, article_id=article_id)
    if existing is None:
        insert_article_txn(
            txn,
            {
                "article_id": article_id,
                "room_id": room_id,
                "author": author,
                "status": "published",
                "title": block["title"],
                "topic": block.get("topic", ""),
                "cover": block.get("cover"),
                "html": html,
                "body": body,
                "event_id": event_id,
                "created_ts": ts,
                "published_ts": ts,
                "updated_ts": ts,
                "revisions": 1,
            },
        )
    elif existing["event_id"] is None and existing["author"] == author:
        txn.execute(
            "UPDATE content_articles SET status = 'published', event_id = ?, published_ts = ?,"
            " updated_ts = ?, title = ?, topic = ?, cover = ?, html = ?, body = ?, revisions = 1"
            " WHERE article_id = ?",
            (
                event_id,
                ts,
                ts,
                block["title"],
                block.get("topic", ""),
                block.get("cover"),
                html,
                body,
                article_id,
            ),
        )
    else:
        return
    _revision_txn(txn, article_id, 1, event_id, author, ts, block, html)


def _revision_txn(
    txn: LoggingTransaction,
    article_id: str,
    revision: int,
    event_id: str,
    editor: str,
    ts: int,
    block: dict[str, Any],
    html: str,
) -> None:
    txn.execute(
        "INSERT INTO content_article_revisions (article_id, revision, event_id, editor, ts,"
        " title, topic, cover, html) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (article_id, revision) DO NOTHING",
        (
            article_id,
            revision,
            event_id,
            editor,
            ts,
            block["title"],
            block.get("topic", ""),
            block.get("cover"),
            html,
        ),
    )


def edit_article_txn(
    txn: LoggingTransaction,
    original_event_id: str,
    editor: str,
    event_id: str,
    ts: int,
    block: dict[str, Any] | None,
    html: str,
    body: str,
) -> bool:
    """An ``m.replace`` edit by the author: a new revision; the row shows the newest."""
    txn.execute("SELECT 1 FROM content_article_revisions WHERE event_id = ?", (event_id,))
    if txn.fetchone() is not None:
        return False  # already recorded (the API and the indexer both report an edit)
    article = get_article_txn(txn, event_id=original_event_id)
    if article is None or article["author"] != editor or article["status"] != "published":
        return False
    if block is None:
        block = {"title": article["title"], "topic": article["topic"], "cover": article["cover"]}
    revision = int(article["revisions"]) + 1
    txn.execute(
        "UPDATE content_articles SET title = ?, topic = ?, cover = ?, html = ?, body = ?,"
        " updated_ts = ?, revisions = ? WHERE article_id = ?",
        (
            block["title"],
            block.get("topic") or "",
            block.get("cover"),
            html,
            body,
            ts,
            revision,
            article["article_id"],
        ),
    )
    _revision_txn(txn, article["article_id"], revision, event_id, editor, ts, block, html)
    return True


def list_revisions_txn(txn: LoggingTransaction, article_id: str) -> list[dict[str, Any]]:
    txn.execute(
        "SELECT revision, event_id, editor, ts, title, topic, cover, html"
        " FROM content_article_revisions WHERE article_id = ? ORDER BY revision",
        (article_id,),
    )
    return rows_as_dicts(txn)


def record_view_txn(txn: LoggingTransaction, article_id: str, user_id: str, ts: int) -> bool:
    txn.execute(
        "INSERT INTO content_article_views (article_id, user_id, ts) VALUES (?, ?, ?)"
        " ON CONFLICT (article_id, user_id) DO NOTHING",
        (article_id, user_id, ts),
    )
    counted = txn.rowcount == 1
    if counted:
        txn.execute(
            "UPDATE content_articles SET views = views + 1 WHERE article_id = ?", (article_id,)
        )
    return counted


def list_articles_txn(
    txn: LoggingTransaction,
    room_ids: Sequence[str],
    status: str,
    author: str | None,
    topic: str | None,
    sort: str,
    descending: bool,
    cursor: tuple[Any, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    col = ARTICLE_SORTS[sort]
    if status == "draft":
        col = "updated_ts" if sort == "date" else col
    where = [f"room_id IN ({_in(room_ids)})", "status = ?"]
    args: list[Any] = [*room_ids, status]
    if author is not None:
        where.append("author = ?")
        args.append(author)
    if topic is not None:
        where.append("topic = ?")
        args.append(topic)
    op = "<" if descending else ">"
    if cursor is not None:
        where.append(f"({col}, article_id) {op} (?, ?)")
        args.extend([cursor[0], cursor[1]])
    direction = "DESC" if descending else "ASC"
    txn.execute(
        f"SELECT article_id, room_id, author, status, title, topic, cover, event_id,"
        f" created_ts, published_ts, updated_ts, revisions, views FROM content_articles"
        f" WHERE {' AND '.join(where)} ORDER BY {col} {direction}, article_id {direction}"
        " LIMIT ?",
        (*args, limit),
    )
    return rows_as_dicts(txn)


# -- polls -----------------------------------------------------------------------

POLL_COLUMNS: Final = (
    "poll_id, room_id, event_id, sender, question, answers, max_selections, disclosed,"
    " anonymous, quiz, correct, created_ts, end_ts, end_event_id"
)


def _poll_row(row: dict[str, Any]) -> dict[str, Any]:
    row["answers"] = json.loads(row["answers"])
    row["correct"] = json.loads(row["correct"]) if row["correct"] else None
    for flag in ("disclosed", "anonymous", "quiz"):
        row[flag] = bool(row[flag])
    return row


def insert_poll_txn(txn: LoggingTransaction, p: dict[str, Any]) -> None:
    txn.execute(
        f"INSERT INTO content_polls ({POLL_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            p["poll_id"],
            p["room_id"],
            p["event_id"],
            p["sender"],
            p["question"],
            json.dumps(p["answers"], ensure_ascii=False),
            p["max_selections"],
            p["disclosed"],
            p["anonymous"],
            p["quiz"],
            json.dumps(p["correct"]) if p["correct"] is not None else None,
            p["created_ts"],
            None,
            None,
        ),
    )


def get_poll_txn(
    txn: LoggingTransaction, poll_id: str | None = None, event_id: str | None = None
) -> dict[str, Any] | None:
    if poll_id is not None:
        txn.execute(f"SELECT {POLL_COLUMNS} FROM content_polls WHERE poll_id = ?", (poll_id,))
    else:
        txn.execute(f"SELECT {POLL_COLUMNS} FROM content_polls WHERE event_id = ?", (event_id,))
    rows = rows_as_dicts(txn)
    return _poll_row(rows[0]) if rows else None


def poll_started_txn(txn: LoggingTransaction, p: dict[str, Any]) -> None:
    """A poll start event was stored: link a pre-registered poll or record a new one."""
    txn.execute(
        "UPDATE content_polls SET event_id = ?, created_ts = ?"
        " WHERE poll_id = ? AND sender = ? AND room_id = ? AND event_id IS NULL",
        (p["event_id"], p["created_ts"], p["poll_id"], p["sender"], p["room_id"]),
    )
    if txn.rowcount == 1:
        return
    txn.execute("SELECT 1 FROM content_polls WHERE poll_id = ?", (p["poll_id"],))
    if txn.fetchone() is None:
        insert_poll_txn(txn, p)


def delete_poll_txn(txn: LoggingTransaction, poll_id: str) -> None:
    txn.execute("DELETE FROM content_polls WHERE poll_id = ? AND event_id IS NULL", (poll_id,))


def end_poll_txn(txn: LoggingTransaction, poll_id: str, end_ts: int, end_event_id: str) -> None:
    txn.execute(
        "UPDATE content_polls SET end_ts = ?, end_event_id = ? WHERE poll_id = ?"
        " AND end_ts IS NULL",
        (end_ts, end_event_id, poll_id),
    )


def list_polls_txn(txn: LoggingTransaction, room_id: str, limit: int) -> list[dict[str, Any]]:
    txn.execute(
        f"SELECT {POLL_COLUMNS} FROM content_polls WHERE room_id = ? AND event_id IS NOT NULL"
        " ORDER BY created_ts DESC LIMIT ?",
        (room_id, limit),
    )
    return [_poll_row(r) for r in rows_as_dicts(txn)]


def add_response_txn(
    txn: LoggingTransaction,
    response_id: str,
    poll_id: str,
    user_id: str,
    ts: int,
    answers: Sequence[str],
) -> None:
    txn.execute(
        "INSERT INTO content_poll_responses (response_id, poll_id, user_id, ts, answers)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (response_id) DO NOTHING",
        (response_id, poll_id, user_id, ts, json.dumps(list(answers))),
    )


def responses_txn(txn: LoggingTransaction, poll_id: str) -> list[tuple[str, int, list[str]]]:
    txn.execute(
        "SELECT user_id, ts, answers FROM content_poll_responses WHERE poll_id = ?", (poll_id,)
    )
    return [(str(u), int(ts), json.loads(a)) for u, ts, a in txn.fetchall()]


def add_ballot_txn(
    txn: LoggingTransaction,
    ballot_id: str,
    poll_id: str,
    user_id: str,
    answers: Sequence[str],
    ts: int,
) -> None:
    txn.execute(
        "INSERT INTO content_poll_ballots (ballot_id, poll_id, user_id, answers, ts)"
        " VALUES (?, ?, ?, ?, ?)",
        (ballot_id, poll_id, user_id, json.dumps(list(answers)), ts),
    )


def cast_ballot_txn(
    txn: LoggingTransaction, ballot_id: str, poll_id: str, user_id: str, event_id: str, ts: int
) -> None:
    """The anonymised response event was stored: its ballot becomes a counted response."""
    txn.execute(
        "SELECT answers FROM content_poll_ballots"
        " WHERE ballot_id = ? AND poll_id = ? AND user_id = ?",
        (ballot_id, poll_id, user_id),
    )
    row = txn.fetchone()
    if row is None:
        return
    txn.execute("DELETE FROM content_poll_ballots WHERE ballot_id = ?", (ballot_id,))
    add_response_txn(txn, event_id, poll_id, user_id, ts, json.loads(row[0]))


def add_poll_notice_txn(txn: LoggingTransaction, event_id: str, poll_id: str) -> None:
    txn.execute(
        "INSERT INTO content_poll_notices (event_id, poll_id) VALUES (?, ?)"
        " ON CONFLICT (event_id) DO NOTHING",
        (event_id, poll_id),
    )


def poll_of_reply_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    """The poll a reply to ``event_id`` answers: the poll's own event or its notice."""
    txn.execute("SELECT poll_id FROM content_poll_notices WHERE event_id = ?", (event_id,))
    row = txn.fetchone()
    if row is not None:
        return get_poll_txn(txn, str(row[0]), None)
    return get_poll_txn(txn, None, event_id)
