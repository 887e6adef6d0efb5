"""Scheduled posts in SQL (area ``scheduled_posts``, schema.py beside it). A message
already sent before a crash is found again by ``synapse_module/sent_once.py``."""

import secrets
from typing import Any, Final

from synapse.module_api import LoggingTransaction

from ..store import rows_as_dicts

_COLUMNS: Final = (
    "post_id",
    "author",
    "room_id",
    "body",
    "schedule_id",
    "command",
    "created_by",
    "created_at",
)


def new_post_id() -> str:
    return f"post_{secrets.token_urlsafe(12)}"


def create_txn(txn: LoggingTransaction, row: dict[str, Any]) -> None:
    txn.execute(
        f"INSERT INTO parta_scheduled_posts ({', '.join(_COLUMNS)})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(row[k] for k in _COLUMNS),
    )


def get_txn(txn: LoggingTransaction, post_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT post_id, author, room_id, body, schedule_id, sending_at, event_id"
        " FROM parta_scheduled_posts WHERE post_id = ?",
        (post_id,),
    )
    rows = rows_as_dicts(txn)
    return rows[0] if rows else None


def mark_sending_txn(txn: LoggingTransaction, post_id: str, now: int) -> None:
    txn.execute(
        "UPDATE parta_scheduled_posts SET sending_at = ? WHERE post_id = ? AND event_id IS NULL",
        (now, post_id),
    )


def sent_txn(txn: LoggingTransaction, post_id: str, event_id: str, now: int) -> str:
    """Record the event id; the one recorded first wins and is returned."""
    txn.execute(
        "UPDATE parta_scheduled_posts SET event_id = ?, sent_at = ?"
        " WHERE post_id = ? AND event_id IS NULL",
        (event_id, now, post_id),
    )
    txn.execute("SELECT event_id FROM parta_scheduled_posts WHERE post_id = ?", (post_id,))
    row = txn.fetchone()
    return str(row[0]) if row and row[0] else event_id
