"""Privacy's tables: consents (the audit log is :mod:`synapse_module.audit`)."""

import json
from typing import Any

from synapse.module_api import LoggingTransaction

from .. import audit
from ..store import rows_as_dicts


def consents_txn(txn: LoggingTransaction, school_id: str, user_id: str) -> dict[str, Any]:
    """The person's consents in the school by purpose (absent: never recorded)."""
    txn.execute(
        "SELECT purpose, granted, recorded_by, via, document_number, granted_ts, withdrawn_ts"
        " FROM parta_consents WHERE school_id = ? AND user_id = ?",
        (school_id, user_id),
    )
    out: dict[str, Any] = {}
    for row in rows_as_dicts(txn):
        purpose = row.pop("purpose")
        row["granted"] = bool(row["granted"])
        out[purpose] = row
    return out


def has_consent_txn(txn: LoggingTransaction, school_id: str, user_id: str, purpose: str) -> bool:
    txn.execute(
        "SELECT granted FROM parta_consents WHERE school_id = ? AND user_id = ? AND purpose = ?",
        (school_id, user_id, purpose),
    )
    row = txn.fetchone()
    return bool(row and row[0])


def put_consents_txn(
    txn: LoggingTransaction,
    now: int,
    actor: str,
    school_id: str,
    user_id: str,
    changes: dict[str, bool],
    via: str,
    document_number: str | None,
) -> dict[str, Any]:
    """Grant or withdraw each purpose in ``changes``; one audit entry for the change."""
    current = consents_txn(txn, school_id, user_id)
    for purpose, granted in changes.items():
        before = current.get(purpose)
        if before is not None and before["granted"] == granted:
            continue  # already so: the original record (who, when) stays
        granted_ts = now if granted else (before["granted_ts"] if before else None)
        withdrawn_ts = None if granted else now
        txn.execute(
            "DELETE FROM parta_consents WHERE school_id = ? AND user_id = ? AND purpose = ?",
            (school_id, user_id, purpose),
        )
        txn.execute(
            "INSERT INTO parta_consents (school_id, user_id, purpose, granted, recorded_by,"
            " via, document_number, granted_ts, withdrawn_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                school_id,
                user_id,
                purpose,
                granted,
                actor,
                via,
                document_number,
                granted_ts,
                withdrawn_ts,
            ),
        )
    details: dict[str, Any] = {"consents": changes, "via": via}
    if document_number is not None:
        details["document_number"] = document_number
    audit.append_txn(txn, now, actor, "consent.put", school_id, user_id, details)
    return consents_txn(txn, school_id, user_id)


def audit_read_txn(
    txn: LoggingTransaction,
    now: int,
    actor: str,
    action: str,
    school_id: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    audit.append_txn(txn, now, actor, action, school_id, target, details or {})


# -- a person's data, for the export (and the erasure) --------------------------------
#
# Privacy is the one feature that reads every feature's rows about one person: what
# Parta and Synapse hold about them is the export's very subject. Each query names the
# person and is limited to the school (its ID, or its rooms).


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


def person_rows_txn(
    txn: LoggingTransaction, school_id: str, user_id: str, room_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every row of Parta's tables about ``user_id`` in the school, by section."""
    rooms = room_ids or [""]
    r = _marks(rooms)
    queries: dict[str, tuple[str, tuple[Any, ...]]] = {
        "roles": (
            "SELECT role FROM parta_school_roles WHERE school_id = ? AND user_id = ? ORDER BY role",
            (school_id, user_id),
        ),
        "classes": (
            "SELECT c.class_id, c.grade, c.letter, c.year, m.role FROM parta_class_members m"
            " JOIN parta_classes c ON c.class_id = m.class_id"
            " WHERE c.school_id = ? AND m.user_id = ? ORDER BY c.grade, c.letter",
            (school_id, user_id),
        ),
        "guardians": (
            "SELECT parent_user_id, child_user_id FROM parta_guardians"
            " WHERE school_id = ? AND (parent_user_id = ? OR child_user_id = ?)"
            " ORDER BY parent_user_id, child_user_id",
            (school_id, user_id, user_id),
        ),
        "attendance": (
            f"SELECT room_id, session_id, display_name, joined_at, left_at"
            f" FROM parta_room_sessions WHERE user_id = ? AND room_id IN ({r})"
            f" ORDER BY joined_at",
            (user_id, *rooms),
        ),
        "poll_answers": (
            f"SELECT p.poll_id, p.room_id, p.question, p.answers AS choices, p.quiz,"
            f" p.correct, p.end_ts, a.answers, a.ts FROM content_poll_responses a"
            f" JOIN content_polls p ON p.poll_id = a.poll_id"
            f" WHERE a.user_id = ? AND p.room_id IN ({r}) ORDER BY a.ts",
            (user_id, *rooms),
        ),
        "homework_handins": (
            f"SELECT h.event_id, h.homework_id, h.name, h.url, h.ts FROM parta_handins h"
            f" JOIN parta_homework w ON w.event_id = h.homework_id"
            f" WHERE h.student = ? AND w.room_id IN ({r}) ORDER BY h.ts",
            (user_id, *rooms),
        ),
        "read_confirmations": (
            f"SELECT c.request_id, q.room_id, c.ts FROM parta_confirmations c"
            f" JOIN parta_confirm_requests q ON q.event_id = c.request_id"
            f" WHERE c.user_id = ? AND q.room_id IN ({r}) ORDER BY c.ts",
            (user_id, *rooms),
        ),
        "article_views": (
            f"SELECT v.article_id, a.title, v.ts FROM content_article_views v"
            f" JOIN content_articles a ON a.article_id = v.article_id"
            f" WHERE v.user_id = ? AND a.room_id IN ({r}) ORDER BY v.ts",
            (user_id, *rooms),
        ),
        "audit": (
            "SELECT seq, audit_id, ts, actor, action, target, details FROM parta_audit"
            " WHERE school_id = ? AND (actor = ? OR target = ?) ORDER BY ts, audit_id",
            (school_id, user_id, user_id),
        ),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for section, (sql, args) in queries.items():
        txn.execute(sql, args)
        out[section] = rows_as_dicts(txn)
    return out


def messages_txn(
    txn: LoggingTransaction, user_id: str, room_ids: list[str]
) -> list[dict[str, Any]]:
    """What the person sent in the school's rooms, oldest first, from Synapse's ``events``
    and ``event_json`` (per room: Synapse's ``(room_id, stream_ordering)`` index)."""
    out: list[dict[str, Any]] = []
    for room_id in room_ids:
        txn.execute(
            "SELECT e.event_id, e.type, e.origin_server_ts, e.state_key, j.json"
            " FROM events e JOIN event_json j ON j.event_id = e.event_id"
            " WHERE e.room_id = ? AND e.sender = ? AND e.outlier = ?"
            " ORDER BY e.stream_ordering",
            (room_id, user_id, False),
        )
        for event_id, kind, ts, state_key, raw in txn.fetchall():
            content = json.loads(raw).get("content", {})
            out.append(
                {
                    "event_id": event_id,
                    "room_id": room_id,
                    "type": kind,
                    "state_key": state_key,
                    "ts": ts,
                    "content": content,
                }
            )
    out.sort(key=lambda m: (m["ts"], m["event_id"]))
    return out


def uploads_txn(txn: LoggingTransaction, user_id: str) -> list[dict[str, Any]]:
    """The files the person uploaded (Synapse's ``local_media_repository``)."""
    txn.execute(
        "SELECT media_id, media_type, media_length, upload_name, created_ts"
        " FROM local_media_repository WHERE user_id = ? ORDER BY created_ts, media_id",
        (user_id,),
    )
    return rows_as_dicts(txn)
