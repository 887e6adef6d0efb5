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
    t: LoggingTransaction, school_id: str | None, before: int
) -> list[dict[str, Any]]:
    """A school's recordings posted before ``before`` (ms), oldest first; ``None``:
    those of no school."""
    school = "school_id IS NULL" if school_id is None else "school_id = ?"
    t.execute(
        "SELECT event_id, broadcast_id, room_id, media_id, posted_ts"
        f" FROM parta_broadcast_recordings WHERE {school} AND posted_ts < ?"
        " ORDER BY posted_ts, event_id",
        (before,) if school_id is None else (school_id, before),
    )
    return rows_as_dicts(t)


def forget_recording_txn(t: LoggingTransaction, event_id: str) -> None:
    t.execute("DELETE FROM parta_broadcast_recordings WHERE event_id = ?", (event_id,))


# -- the one-time backfill of recordings posted before they were tracked ---------------

BACKFILL_SPAN = 5000


def backfill_state_txn(t: LoggingTransaction) -> tuple[int, int | None, int]:
    """How far the backfill has read (a stream position), when it was done (None: not
    yet), and Synapse's newest stream position now (where this run stops)."""
    t.execute("SELECT scanned_to, done_ts FROM parta_broadcast_backfill WHERE id = 1")
    row = t.fetchone()
    scanned, done = (int(row[0]), row[1]) if row else (0, None)
    t.execute("SELECT MAX(stream_ordering) FROM events")
    newest = t.fetchone()
    return scanned, None if done is None else int(done), int(newest[0] or 0) if newest else 0


def service_videos_txn(
    t: LoggingTransaction, sender: str, after: int, upto: int
) -> list[dict[str, Any]]:
    """Messages with a file that ``sender`` sent at stream positions ``(after, upto]``
    and no redaction names (one a retention removed stays removed): event, room, time,
    content. A range of Synapse's ``stream_ordering`` index per call, so each batch reads
    at most :data:`BACKFILL_SPAN` events."""
    t.execute(
        "SELECT e.event_id, e.room_id, e.origin_server_ts, j.json"
        " FROM events e JOIN event_json j ON j.event_id = e.event_id"
        " WHERE e.stream_ordering > ? AND e.stream_ordering <= ?"
        " AND e.sender = ? AND e.type = 'm.room.message' AND e.contains_url = ?"
        " AND e.outlier = ? AND e.state_key IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM redactions r WHERE r.redacts = e.event_id)"
        " ORDER BY e.stream_ordering",
        (after, upto, sender, True, False),
    )
    return [
        {
            "event_id": str(event_id),
            "room_id": str(room_id),
            "posted_ts": int(ts),
            "content": json.loads(raw).get("content", {}),
        }
        for event_id, room_id, ts, raw in t.fetchall()
    ]


def backfill_batch_txn(
    t: LoggingTransaction, found: list[dict[str, Any]], scanned_to: int, done_ts: int | None
) -> int:
    """Record the recordings found in one batch (one already tracked stays as it is) and
    how far the backfill has read; ``done_ts`` once it has read all. How many were new."""
    added = 0
    for row in found:
        t.execute(
            "INSERT INTO parta_broadcast_recordings (event_id, broadcast_id, room_id,"
            " school_id, media_id, posted_ts) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (
                row["event_id"],
                row["broadcast_id"],
                row["room_id"],
                row["school_id"],
                row["media_id"],
                row["posted_ts"],
            ),
        )
        added += max(t.rowcount, 0)
    t.execute(
        "UPDATE parta_broadcast_backfill SET scanned_to = ?, done_ts = ? WHERE id = 1",
        (scanned_to, done_ts),
    )
    return added
