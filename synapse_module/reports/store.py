"""SQL of reports: the complaints rooms, the cursor over Synapse's ``event_reports``,
reporters' notice rooms.

Two reads are of Synapse's own tables (its schema, not its code): ``event_reports``
(where the report call stores each report, since Synapse 0.x; no module callback sees a
report) and ``event_json`` (the reported event, which the module API cannot fetch).
"""

import json
from typing import Any

import attrs
from synapse.module_api import LoggingTransaction

CURSOR = "event_reports"


@attrs.frozen
class Report:
    report_id: int
    room_id: str
    event_id: str
    user_id: str
    reason: str | None


def new_reports_txn(txn: LoggingTransaction, limit: int) -> tuple[int, list[Report]]:
    """The cursor and the reports Synapse stored after it (oldest first)."""
    txn.execute("SELECT last_report_id FROM parta_report_cursor WHERE name = ?", (CURSOR,))
    row = txn.fetchone()
    last = int(row[0]) if row else 0
    txn.execute(
        "SELECT id, room_id, event_id, user_id, reason FROM event_reports"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (last, limit),
    )
    return last, [Report(int(r[0]), r[1], r[2], r[3], r[4]) for r in txn.fetchall()]


def advance_cursor_txn(txn: LoggingTransaction, report_id: int) -> None:
    txn.execute(
        "UPDATE parta_report_cursor SET last_report_id = ? WHERE name = ? AND last_report_id < ?",
        (report_id, CURSOR, report_id),
    )


def event_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    """The reported event as Synapse stored it (type, sender, content)."""
    txn.execute("SELECT json FROM event_json WHERE event_id = ?", (event_id,))
    row = txn.fetchone()
    if row is None:
        return None
    event = json.loads(row[0])
    return event if isinstance(event, dict) else None


def complaint_room_txn(txn: LoggingTransaction, school_id: str, class_key: str) -> str | None:
    txn.execute(
        "SELECT room_id FROM parta_complaint_rooms WHERE school_id = ? AND class_id = ?",
        (school_id, class_key),
    )
    row = txn.fetchone()
    return None if row is None else str(row[0])


def put_complaint_room_txn(
    txn: LoggingTransaction, school_id: str, class_key: str, room_id: str
) -> None:
    txn.execute(
        "INSERT INTO parta_complaint_rooms (school_id, class_id, room_id) VALUES (?, ?, ?)",
        (school_id, class_key, room_id),
    )


def notice_room_txn(txn: LoggingTransaction, user_id: str) -> str | None:
    txn.execute("SELECT room_id FROM parta_notice_rooms WHERE user_id = ?", (user_id,))
    row = txn.fetchone()
    return None if row is None else str(row[0])


def put_notice_room_txn(txn: LoggingTransaction, user_id: str, room_id: str) -> None:
    txn.execute(
        "INSERT INTO parta_notice_rooms (user_id, room_id) VALUES (?, ?)", (user_id, room_id)
    )
