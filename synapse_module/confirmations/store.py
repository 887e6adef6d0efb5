"""SQL of read confirmations (indexed from room events)."""

from typing import Any

from synapse.module_api import LoggingTransaction


def insert_request_txn(
    txn: LoggingTransaction, event_id: str, room_id: str, school_id: str, sender: str, ts: int
) -> None:
    txn.execute("SELECT 1 FROM parta_confirm_requests WHERE event_id = ?", (event_id,))
    if txn.fetchone():
        return
    txn.execute(
        "INSERT INTO parta_confirm_requests (event_id, room_id, school_id, sender, ts)"
        " VALUES (?, ?, ?, ?, ?)",
        (event_id, room_id, school_id, sender, ts),
    )


def get_request_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT event_id, room_id, school_id, sender, ts FROM parta_confirm_requests"
        " WHERE event_id = ?",
        (event_id,),
    )
    r = txn.fetchone()
    if r is None:
        return None
    return {"event_id": r[0], "room_id": r[1], "school_id": r[2], "sender": r[3], "ts": r[4]}


def confirm_txn(txn: LoggingTransaction, request_id: str, user_id: str, ts: int) -> None:
    """The first confirmation of a person counts; later ones change nothing."""
    txn.execute(
        "SELECT 1 FROM parta_confirmations WHERE request_id = ? AND user_id = ?",
        (request_id, user_id),
    )
    if txn.fetchone():
        return
    txn.execute(
        "INSERT INTO parta_confirmations (request_id, user_id, ts) VALUES (?, ?, ?)",
        (request_id, user_id, ts),
    )


def confirmed_txn(txn: LoggingTransaction, request_id: str) -> dict[str, int]:
    txn.execute("SELECT user_id, ts FROM parta_confirmations WHERE request_id = ?", (request_id,))
    return {r[0]: int(r[1]) for r in txn.fetchall()}
