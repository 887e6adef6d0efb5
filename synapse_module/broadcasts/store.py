"""Broadcasts and their viewer links in SQL (area ``broadcasts``)."""

import json
from typing import Any

from synapse.module_api import LoggingTransaction

from ..store import rows_as_dicts


def get_broadcast_txn(t: LoggingTransaction, broadcast_id: str) -> dict[str, Any] | None:
    t.execute("SELECT * FROM parta_broadcasts WHERE broadcast_id = ?", (broadcast_id,))
    rows = rows_as_dicts(t)
    if not rows:
        return None
    row = rows[0]
    row["speakers"] = json.loads(row["speakers"])
    row["public"] = bool(row["public"])
    row["recording"] = bool(row["recording"])
    return row


def add_broadcast_txn(t: LoggingTransaction, row: dict[str, Any]) -> None:
    t.execute(
        "INSERT INTO parta_broadcasts (broadcast_id, room_id, title, speakers, starts_at,"
        " ends_at, public, recording, status, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["broadcast_id"],
            row["room_id"],
            row["title"],
            json.dumps(row["speakers"]),
            row["starts_at"],
            row["ends_at"],
            row["public"],
            row["recording"],
            row["status"],
            row["created_by"],
            row["created_at"],
        ),
    )


def broadcast_ids_txn(t: LoggingTransaction, room_id: str) -> list[str]:
    t.execute(
        "SELECT broadcast_id FROM parta_broadcasts WHERE room_id = ? ORDER BY created_at DESC",
        (room_id,),
    )
    return [r["broadcast_id"] for r in rows_as_dicts(t)]


def set_status_txn(t: LoggingTransaction, broadcast_id: str, status: str) -> None:
    t.execute(
        "UPDATE parta_broadcasts SET status = ? WHERE broadcast_id = ?", (status, broadcast_id)
    )


def add_viewer_link_txn(
    t: LoggingTransaction, link_id: str, broadcast_id: str, user_id: str, now: int, ttl: int
) -> None:
    t.execute(
        "INSERT INTO parta_viewer_links (link_id, broadcast_id, created_by, created_at,"
        " expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)",
        (link_id, broadcast_id, user_id, now, now + ttl),
    )


def revoke_viewer_link_txn(t: LoggingTransaction, link_id: str, broadcast_id: str, now: int) -> int:
    """How many links were revoked now (0: already revoked), or -1 if there is none."""
    t.execute(
        "UPDATE parta_viewer_links SET revoked_at = ?"
        " WHERE link_id = ? AND broadcast_id = ? AND revoked_at IS NULL",
        (now, link_id, broadcast_id),
    )
    changed = t.rowcount
    t.execute(
        "SELECT 1 FROM parta_viewer_links WHERE link_id = ? AND broadcast_id = ?",
        (link_id, broadcast_id),
    )
    return changed if t.fetchone() else -1


def get_viewer_link_txn(t: LoggingTransaction, link_id: str) -> dict[str, Any] | None:
    t.execute("SELECT * FROM parta_viewer_links WHERE link_id = ?", (link_id,))
    rows = rows_as_dicts(t)
    return rows[0] if rows else None


def created_between_txn(t: LoggingTransaction, start: int, end: int) -> list[tuple[str, int]]:
    """Broadcasts created in ``[start, end)``: room and viewer links made for each (every
    member who watches gets a personal link; a public link counts once) — statistics."""
    t.execute(
        "SELECT b.room_id, b.broadcast_id, COUNT(v.link_id) FROM parta_broadcasts b"
        " LEFT JOIN parta_viewer_links v ON v.broadcast_id = b.broadcast_id"
        " WHERE b.created_at >= ? AND b.created_at < ? GROUP BY b.room_id, b.broadcast_id",
        (start, end),
    )
    return [(str(room_id), int(links)) for room_id, _b, links in t.fetchall()]


def add_recording_txn(t: LoggingTransaction, row: dict[str, Any]) -> None:
    t.execute(
        "INSERT INTO parta_broadcast_recordings (event_id, broadcast_id, room_id, school_id,"
        " media_id, posted_ts) VALUES (?, ?, ?, ?, ?, ?)",
        (
            row["event_id"],
            row["broadcast_id"],
            row["room_id"],
            row["school_id"],
            row["media_id"],
            row["posted_ts"],
        ),
    )


def recordings_before_txn(
    t: LoggingTransaction, school_id: str, before: int
) -> list[dict[str, Any]]:
    """A school's recordings posted before ``before`` (ms), oldest first."""
    t.execute(
        "SELECT event_id, broadcast_id, room_id, media_id, posted_ts"
        " FROM parta_broadcast_recordings WHERE school_id = ? AND posted_ts < ?"
        " ORDER BY posted_ts, event_id",
        (school_id, before),
    )
    return rows_as_dicts(t)


def forget_recording_txn(t: LoggingTransaction, event_id: str) -> None:
    t.execute("DELETE FROM parta_broadcast_recordings WHERE event_id = ?", (event_id,))
