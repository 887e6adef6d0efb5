"""Privacy's tables: consents (the audit log is :mod:`synapse_module.audit`)."""

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
    txn: LoggingTransaction, now: int, actor: str, action: str, school_id: str, target: str
) -> None:
    audit.append_txn(txn, now, actor, action, school_id, target, {})
