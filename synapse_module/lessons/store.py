"""Lessons and attendance sessions in SQL (area ``lessons``)."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
from synapse.module_api import LoggingTransaction

from ..store import rows_as_dicts

if TYPE_CHECKING:
    pass

from .rules import LIVE, Lesson, Session

LESSON_COLUMNS: Final = (
    "lesson_id, room_id, title, status, scheduled_start, started_at, ended_at, "
    "created_by, created_at"
)


def lesson_from_row(row: Sequence[Any]) -> Lesson:
    return Lesson(
        lesson_id=str(row[0]),
        room_id=str(row[1]),
        title=str(row[2]),
        status=str(row[3]),
        scheduled_start=int(row[4]),
        started_at=None if row[5] is None else int(row[5]),
        ended_at=None if row[6] is None else int(row[6]),
        created_by=str(row[7]),
        created_at=int(row[8]),
    )


def insert_lesson_txn(txn: LoggingTransaction, lesson: Lesson) -> Lesson | None:
    """Insert ``lesson``; when it is live and another lesson is live there, return that."""
    if lesson.status == LIVE:
        live = live_lesson_txn(txn, lesson.room_id)
        if live is not None:
            return live
    txn.execute(
        f"INSERT INTO parta_lessons ({LESSON_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attrs.astuple(lesson),
    )
    return None


def live_lesson_txn(txn: LoggingTransaction, room_id: str) -> Lesson | None:
    txn.execute(
        f"SELECT {LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ? AND status = ?"
        " ORDER BY started_at DESC",
        (room_id, LIVE),
    )
    row = txn.fetchone()
    return lesson_from_row(row) if row else None


def get_lesson_txn(txn: LoggingTransaction, room_id: str, lesson_id: str) -> Lesson | None:
    txn.execute(
        f"SELECT {LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ? AND lesson_id = ?",
        (room_id, lesson_id),
    )
    row = txn.fetchone()
    return lesson_from_row(row) if row else None


def list_lessons_txn(txn: LoggingTransaction, room_id: str) -> list[Lesson]:
    txn.execute(
        f"SELECT {LESSON_COLUMNS} FROM parta_lessons WHERE room_id = ?"
        " ORDER BY scheduled_start DESC, created_at DESC",
        (room_id,),
    )
    return [lesson_from_row(r) for r in txn.fetchall()]


def delete_lesson_txn(txn: LoggingTransaction, lesson_id: str) -> None:
    txn.execute("DELETE FROM parta_lessons WHERE lesson_id = ?", (lesson_id,))


def set_status_txn(
    txn: LoggingTransaction, lesson: Lesson, expected: str, new: Lesson
) -> Lesson | None:
    """Move ``lesson`` from ``expected`` to ``new``'s status; the conflicting lesson if any."""
    if new.status == LIVE:
        live = live_lesson_txn(txn, lesson.room_id)
        if live is not None and live.lesson_id != lesson.lesson_id:
            return live
    txn.execute(
        "UPDATE parta_lessons SET status = ?, started_at = ?, ended_at = ?"
        " WHERE lesson_id = ? AND status = ?",
        (new.status, new.started_at, new.ended_at, lesson.lesson_id, expected),
    )
    if txn.rowcount != 1:
        current = get_lesson_txn(txn, lesson.room_id, lesson.lesson_id)
        return current if current is not None else lesson
    return None


def record_attendance_txn(txn: LoggingTransaction, reports: list[dict[str, Any]]) -> int:
    """Store joins and leaves per room; a repeated report changes nothing."""
    recorded = 0
    for report in reports:
        room_id, user_id, session_id = report["room_id"], report["user_id"], report["session_id"]
        if report["kind"] == "join":
            txn.execute(
                "INSERT INTO parta_room_sessions"
                " (room_id, user_id, session_id, display_name, joined_at, left_at)"
                " VALUES (?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT (room_id, user_id, session_id, joined_at) DO NOTHING",
                (room_id, user_id, session_id, report.get("display_name"), report["ts"]),
            )
            recorded += max(txn.rowcount, 0)
            continue
        # A leave closes the latest open session of that connection (participant ids
        # start again when the SFU restarts).
        txn.execute(
            "SELECT MAX(joined_at) FROM parta_room_sessions WHERE room_id = ? AND user_id = ?"
            " AND session_id = ? AND left_at IS NULL AND joined_at <= ?",
            (room_id, user_id, session_id, report["ts"]),
        )
        row = txn.fetchone()
        if row is None or row[0] is None:
            continue
        txn.execute(
            "UPDATE parta_room_sessions SET left_at = ? WHERE room_id = ? AND user_id = ?"
            " AND session_id = ? AND joined_at = ? AND left_at IS NULL",
            (report["ts"], room_id, user_id, session_id, row[0]),
        )
        recorded += max(txn.rowcount, 0)
    return recorded


def sessions_txn(
    txn: LoggingTransaction, room_id: str, start: int, end: int | None
) -> list[Session]:
    """The room's sessions that overlap ``[start, end)`` (no end: still live), clipped."""
    txn.execute(
        "SELECT user_id, display_name, joined_at, left_at FROM parta_room_sessions"
        " WHERE room_id = ? AND joined_at < ? AND (left_at IS NULL OR left_at > ?)"
        " ORDER BY joined_at",
        (room_id, end if end is not None else 2**62, start),
    )
    sessions = []
    for row in rows_as_dicts(txn):
        left = row["left_at"]
        sessions.append(
            Session(
                user_id=row["user_id"],
                display_name=row["display_name"],
                joined_at=max(int(row["joined_at"]), start),
                left_at=None if left is None or (end is not None and left >= end) else int(left),
            )
        )
    return sessions


# -- the feature ----------------------------------------------------------------------


def held_between_txn(
    txn: LoggingTransaction, start: int, end: int, now: int
) -> list[tuple[str, int, int]]:
    """Lessons started in ``[start, end)``: room, minutes held (a live one until ``now``),
    and how many different people were in it (statistics, issue 11)."""
    txn.execute(
        "SELECT l.room_id, l.lesson_id, l.started_at, l.ended_at, COUNT(DISTINCT s.user_id)"
        " FROM parta_lessons l LEFT JOIN parta_room_sessions s ON s.room_id = l.room_id"
        " AND s.joined_at < COALESCE(l.ended_at, ?)"
        " AND (s.left_at IS NULL OR s.left_at > l.started_at)"
        " WHERE l.started_at >= ? AND l.started_at < ?"
        " GROUP BY l.room_id, l.lesson_id, l.started_at, l.ended_at",
        (now, start, end),
    )
    out = []
    for room_id, _lesson_id, started, ended, people in txn.fetchall():
        held_ms = (int(ended) if ended is not None else now) - int(started)
        out.append((str(room_id), max(held_ms, 0) // 60_000, int(people)))
    return out
