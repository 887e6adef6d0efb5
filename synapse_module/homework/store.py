"""SQL of homework: assignments and hand-ins, indexed from the room events."""

import json
from collections.abc import Iterable
from typing import Any

from synapse.module_api import LoggingTransaction

_COLUMNS = "event_id, room_id, school_id, class_id, subject, body, due, files, sender, ts"


def _homework(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = [c.strip() for c in _COLUMNS.split(",")]
    item = dict(zip(keys, row, strict=True))
    item["files"] = json.loads(item["files"])
    item["text"] = item.pop("body")
    return item


def insert_homework_txn(txn: LoggingTransaction, item: dict[str, Any]) -> None:
    txn.execute("SELECT 1 FROM parta_homework WHERE event_id = ?", (item["event_id"],))
    if txn.fetchone():
        return
    txn.execute(
        f"INSERT INTO parta_homework ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item["event_id"],
            item["room_id"],
            item["school_id"],
            item["class_id"],
            item["subject"],
            item["text"],
            item["due"],
            json.dumps(item["files"], ensure_ascii=False),
            item["sender"],
            item["ts"],
        ),
    )


def get_homework_txn(txn: LoggingTransaction, event_id: str) -> dict[str, Any] | None:
    txn.execute(f"SELECT {_COLUMNS} FROM parta_homework WHERE event_id = ?", (event_id,))
    row = txn.fetchone()
    return None if row is None else _homework(row)


def homework_of_classes_txn(
    txn: LoggingTransaction, class_ids: Iterable[str]
) -> list[dict[str, Any]]:
    """The homework of these classes, in due order."""
    wanted = sorted(set(class_ids))
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    txn.execute(
        f"SELECT {_COLUMNS} FROM parta_homework WHERE class_id IN ({marks})"
        " ORDER BY due, ts, event_id",
        wanted,
    )
    return [_homework(r) for r in txn.fetchall()]


def insert_handin_txn(
    txn: LoggingTransaction,
    event_id: str,
    homework_id: str,
    student: str,
    name: str,
    url: str,
    ts: int,
) -> None:
    txn.execute("SELECT 1 FROM parta_handins WHERE event_id = ?", (event_id,))
    if txn.fetchone():
        return
    txn.execute(
        "INSERT INTO parta_handins (event_id, homework_id, student, name, url, ts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, homework_id, student, name, url, ts),
    )


def handins_txn(txn: LoggingTransaction, homework_id: str) -> list[dict[str, Any]]:
    txn.execute(
        "SELECT event_id, student, name, url, ts FROM parta_handins"
        " WHERE homework_id = ? ORDER BY ts, event_id",
        (homework_id,),
    )
    return [
        {"event_id": r[0], "student": r[1], "name": r[2], "url": r[3], "ts": r[4]}
        for r in txn.fetchall()
    ]


def delete_by_event_txn(txn: LoggingTransaction, event_id: str) -> None:
    """A redacted assignment or hand-in leaves the lists."""
    txn.execute("DELETE FROM parta_homework WHERE event_id = ?", (event_id,))
    txn.execute("DELETE FROM parta_handins WHERE event_id = ?", (event_id,))
