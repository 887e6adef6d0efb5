"""SQL of read confirmations (indexed from room events)."""

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
) -> None:
    txn.execute("SELECT 1 FROM parta_confirm_requests WHERE event_id = ?", (event_id,))
    if txn.fetchone():
        return
    txn.execute(
        "INSERT INTO parta_confirm_requests (event_id, room_id, school_id, sender, ts, per_child)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, room_id, school_id, sender, ts, per_child),
    )


def get_request_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT event_id, room_id, school_id, sender, ts, per_child FROM parta_confirm_requests"
        " WHERE event_id = ?",
        (event_id,),
    )
    r = txn.fetchone()
    if r is None:
        return None
    return {
        "event_id": r[0],
        "room_id": r[1],
        "school_id": r[2],
        "sender": r[3],
        "ts": r[4],
        "per_child": bool(r[5]),
    }


def confirm_txn(
    txn: LoggingTransaction, request_id: str, user_id: str, children: Sequence[str], ts: int
) -> None:
    """The first confirmation of a person (for each child: ``children``, or ``[""]`` for
    themselves) counts; later ones change nothing."""
    for child_id in children:
        txn.execute(
            "SELECT 1 FROM parta_confirmations WHERE request_id = ? AND user_id = ?"
            " AND child_id = ?",
            (request_id, user_id, child_id),
        )
        if txn.fetchone():
            continue
        txn.execute(
            "INSERT INTO parta_confirmations (request_id, user_id, child_id, ts)"
            " VALUES (?, ?, ?, ?)",
            (request_id, user_id, child_id, ts),
        )


def confirmed_txn(txn: LoggingTransaction, request_id: str) -> dict[str, int]:
    """Who confirmed, by :func:`rules.who` (a person, or a parent for a child), and when."""
    txn.execute(
        "SELECT user_id, child_id, ts FROM parta_confirmations WHERE request_id = ?",
        (request_id,),
    )
    return {who(r[0], r[1]): int(r[2]) for r in txn.fetchall()}
