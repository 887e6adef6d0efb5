"""SQL of read confirmations (indexed from room events)."""

import json
from collections.abc import Sequence
from typing import Any

from synapse.module_api import LoggingTransaction

from .rules import who


def insert_request_txn(
    txn: LoggingTransaction,
    event_id: str,
    room_id: str,
    school_id: str,
    sender: str,
    ts: int,
    per_child: bool = False,
    language: str = "ru",
) -> None:
    """Record a request once: the indexer and a route finding it first (see
    :func:`stored_event_txn`) may both try at the same moment."""
    txn.execute(
        "INSERT INTO parta_confirm_requests"
        " (event_id, room_id, school_id, sender, ts, per_child, language)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        (event_id, room_id, school_id, sender, ts, per_child, language),
    )


def stored_event_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    """An event as Synapse stored it (Synapse's ``events`` and ``event_json``, its schema,
    not its code: the module API cannot fetch an event), if accepted into its room.
    For a route asked about a request the indexer, which runs after the event is
    persisted, has not recorded yet."""
    txn.execute(
        "SELECT j.json FROM events e JOIN event_json j ON j.event_id = e.event_id"
        " WHERE e.event_id = ? AND e.outlier = ?"
        " AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.event_id = e.event_id)",
        (event_id, False),
    )
    row = txn.fetchone()
    if row is None:
        return None
    event = json.loads(row[0])
    return event if isinstance(event, dict) else None


_REQUEST_COLUMNS = "event_id, room_id, school_id, sender, ts, per_child, language"


def _request(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "event_id": r[0],
        "room_id": r[1],
        "school_id": r[2],
        "sender": r[3],
        "ts": r[4],
        "per_child": bool(r[5]),
        "language": r[6],
    }


def get_request_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    txn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM parta_confirm_requests WHERE event_id = ?",
        (event_id,),
    )
    r = txn.fetchone()
    return None if r is None else _request(r)


def unreminded_requests_txn(
    txn: LoggingTransaction, asked_before: int, limit: int
) -> list[dict[str, Any]]:
    """The oldest requests asked before ``asked_before`` (ms) whose reminder round is
    not done."""
    txn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM parta_confirm_requests"
        " WHERE reminders_done = ? AND ts <= ? ORDER BY ts LIMIT ?",
        (False, asked_before, limit),
    )
    return [_request(r) for r in txn.fetchall()]


def reminded_txn(txn: LoggingTransaction, request_id: str) -> set[str]:
    """Who has been reminded of a request, by :func:`rules.who`."""
    txn.execute(
        "SELECT user_id, child_id FROM parta_confirm_reminders WHERE request_id = ?",
        (request_id,),
    )
    return {who(r[0], r[1]) for r in txn.fetchall()}


def record_reminders_txn(
    txn: LoggingTransaction, request_id: str, people: Sequence[tuple[str, str]], ts: int
) -> list[tuple[str, str]]:
    """Record that the reminder round of a request is done and whom it reminds; the
    (person, child) pairs recorded now (a pair recorded before is not reminded again).

    Two bots (or a bot's retry) recording the same pairs at once: each pair is inserted
    with ``ON CONFLICT DO NOTHING`` and counted only where the row was inserted, so one
    of the calls gets it and the other an empty list, never a unique-key error. Run READ
    COMMITTED: the later insert waits for the earlier one and then does nothing."""
    new: list[tuple[str, str]] = []
    for user_id, child_id in dict.fromkeys(people):
        txn.execute(
            "INSERT INTO parta_confirm_reminders (request_id, user_id, child_id, ts)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (request_id, user_id, child_id) DO NOTHING",
            (request_id, user_id, child_id, ts),
        )
        if txn.rowcount == 1:
            new.append((user_id, child_id))
    mark_reminders_done_txn(txn, request_id)
    return new


def mark_reminders_done_txn(txn: LoggingTransaction, request_id: str) -> None:
    txn.execute(
        "UPDATE parta_confirm_requests SET reminders_done = ? WHERE event_id = ?",
        (True, request_id),
    )


def confirm_txn(
    txn: LoggingTransaction, request_id: str, user_id: str, children: Sequence[str], ts: int
) -> None:
    """The first confirmation of a person (for each child: ``children``, or ``[""]`` for
    themselves) counts; later ones change nothing."""
    for child_id in children:
        txn.execute(
            "INSERT INTO parta_confirmations (request_id, user_id, child_id, ts)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (request_id, user_id, child_id) DO NOTHING",
            (request_id, user_id, child_id, ts),
        )


def confirmed_txn(txn: LoggingTransaction, request_id: str) -> dict[str, int]:
    """Who confirmed, by :func:`rules.who` (a person, or a parent for a child), and when."""
    txn.execute(
        "SELECT user_id, child_id, ts FROM parta_confirmations WHERE request_id = ?",
        (request_id,),
    )
    return {who(r[0], r[1]): int(r[2]) for r in txn.fetchall()}
