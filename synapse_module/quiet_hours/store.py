"""Held messages in SQL (area ``quiet_hours``, schema.py beside it)."""

import hashlib
import json
import secrets
from typing import Any, Final

from synapse.module_api import LoggingTransaction

from ..store import rows_as_dicts

_LIST_COLUMNS: Final = (
    "held_id, school_id, room_id, event_type, held_at, release_at, event_id, sent_at, failed"
)


def digest(event_type: str, content: dict[str, Any]) -> str:
    """The same message again (a client resending after the refusal) has the same digest."""
    canonical = json.dumps([event_type, content], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hold_txn(txn: LoggingTransaction, row: dict[str, Any]) -> tuple[str, int, bool]:
    """Hold a message unless the same one from the same person in the same room waits
    already: ``(held_id, release_at, new)``."""
    txn.execute(
        "SELECT held_id, release_at FROM parta_held_messages WHERE sender = ? AND room_id = ?"
        " AND digest = ? AND event_id IS NULL AND failed IS NULL",
        (row["sender"], row["room_id"], row["digest"]),
    )
    found = txn.fetchone()
    if found is not None:
        return str(found[0]), int(found[1]), False
    held_id = f"held_{secrets.token_urlsafe(12)}"
    txn.execute(
        "INSERT INTO parta_held_messages (held_id, school_id, room_id, sender, event_type,"
        " content, digest, held_at, release_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            held_id,
            row["school_id"],
            row["room_id"],
            row["sender"],
            row["event_type"],
            json.dumps(row["content"], ensure_ascii=False),
            row["digest"],
            row["held_at"],
            row["release_at"],
        ),
    )
    return held_id, int(row["release_at"]), True


def due_txn(txn: LoggingTransaction, now: int, limit: int) -> list[dict[str, Any]]:
    """Held messages whose quiet hours have ended, oldest first."""
    txn.execute(
        "SELECT held_id, room_id, sender, event_type, content, sending_at"
        " FROM parta_held_messages WHERE release_at <= ? AND event_id IS NULL AND failed IS NULL"
        " ORDER BY release_at, held_at LIMIT ?",
        (now, limit),
    )
    rows = rows_as_dicts(txn)
    for r in rows:
        r["content"] = json.loads(r["content"])
    return rows


def mark_sending_txn(txn: LoggingTransaction, held_id: str, now: int) -> None:
    txn.execute(
        "UPDATE parta_held_messages SET sending_at = ? WHERE held_id = ? AND event_id IS NULL",
        (now, held_id),
    )


def sent_txn(txn: LoggingTransaction, held_id: str, event_id: str, now: int) -> None:
    txn.execute(
        "UPDATE parta_held_messages SET event_id = ?, sent_at = ?"
        " WHERE held_id = ? AND event_id IS NULL",
        (event_id, now, held_id),
    )


def failed_txn(txn: LoggingTransaction, held_id: str, reason: str) -> None:
    txn.execute(
        "UPDATE parta_held_messages SET failed = ? WHERE held_id = ? AND event_id IS NULL",
        (reason[:500], held_id),
    )


def of_sender_txn(txn: LoggingTransaction, sender: str, limit: int) -> list[dict[str, Any]]:
    """A person's held messages, the latest first."""
    txn.execute(
        f"SELECT {_LIST_COLUMNS} FROM parta_held_messages WHERE sender = ?"
        " ORDER BY held_at DESC LIMIT ?",
        (sender, limit),
    )
    return rows_as_dicts(txn)
