"""The audit log's one writer: every feature appends through :func:`append_txn`.

The log is append-only and hash-chained (issue 12, item 4): each entry carries its
sequence number, the hash of the entry before it, and its own hash — SHA-256 of the
canonical form of ``(seq, prev_hash, audit_id, ts, actor, action, school_id, target,
details)``. ``synapse_module.privacy.verify`` checks it.

Two steps, so that the chain never makes the action's own transaction conflict:

1. :func:`append_txn` inserts the entry in the action's transaction (atomic with it),
   not yet chained (``seq`` NULL);
2. :func:`seal_txn`, right after that transaction commits (and from the background job
   for anything left), chains every entry not yet chained, in order of time. It runs
   READ COMMITTED and first updates the one row of ``parta_audit_head`` (the last
   entry's number and hash): sealers queue on that row lock (PostgreSQL; SQLite has one
   writer), each sees what the one before it sealed, and the chain stays linear. Sealing
   fills the three chain columns of a row once; nothing updates an entry.

Entries leave only from the front, by the retention rules (``privacy.store.trim_audit_txn``):
the oldest entries are deleted and an **anchor** records the last one removed (its number
and hash) together with the ``audit.trim`` entry that says so; the chain is then checked
from the anchor (:func:`chain_txn` returns it).
"""

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import attrs
from synapse.module_api import LoggingTransaction

from .store import rows_as_dicts

GENESIS = ""  # the prev_hash of the first entry
TRIM_ACTION = "audit.trim"  # the entry that records a trim of the chain's front


@attrs.frozen
class Entry:
    seq: int
    prev_hash: str
    audit_id: str
    ts: int
    actor: str
    action: str
    school_id: str | None
    target: str | None
    details: str  # JSON, as stored
    hash: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Entry":
        return cls(
            seq=int(row["seq"]),
            prev_hash=row["prev_hash"],
            audit_id=row["audit_id"],
            ts=int(row["ts"]),
            actor=row["actor"],
            action=row["action"],
            school_id=row["school_id"],
            target=row["target"],
            details=row["details"],
            hash=row["hash"],
        )

    def expected_hash(self) -> str:
        return entry_hash(
            self.seq,
            self.prev_hash,
            self.audit_id,
            self.ts,
            self.actor,
            self.action,
            self.school_id,
            self.target,
            self.details,
        )


def entry_hash(
    seq: int,
    prev_hash: str,
    audit_id: str,
    ts: int,
    actor: str,
    action: str,
    school_id: str | None,
    target: str | None,
    details: str,
) -> str:
    """SHA-256 (hex) of an entry's canonical form: a JSON array, no spaces, UTF-8."""
    canonical = json.dumps(
        [seq, prev_hash, audit_id, ts, actor, action, school_id, target, details],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Called after a transaction that appended an entry commits (set by privacy: it seals).
_on_append: list[Callable[[], object]] = []


def on_append(callback: Callable[[], object]) -> None:
    """Run ``callback`` (on the reactor thread) after each transaction that appended."""
    _on_append[:] = [callback]


def append_txn(
    txn: LoggingTransaction,
    ts: int,
    actor: str,
    action: str,
    school_id: str | None,
    target: str | None,
    details: dict[str, Any],
) -> str:
    """Append one entry (inside the caller's transaction); it is chained once committed."""
    audit_id = f"aud_{secrets.token_hex(6)}"
    txn.execute(
        "INSERT INTO parta_audit (audit_id, ts, actor, action, school_id, target, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            audit_id,
            ts,
            actor,
            action,
            school_id,
            target,
            json.dumps(details, ensure_ascii=False, sort_keys=True),
        ),
    )
    for callback in _on_append:
        txn.call_after(callback)
    return audit_id


def seal_txn(txn: LoggingTransaction) -> int:
    """Chain every entry not chained yet, oldest first; how many. Run READ COMMITTED."""
    # The head first: its row lock queues concurrent sealers until this one commits.
    txn.execute("UPDATE parta_audit_head SET seq = seq WHERE id = 1")
    txn.execute("SELECT seq, hash FROM parta_audit_head WHERE id = 1")
    row = txn.fetchone()
    assert row is not None, "parta_audit_head has no row (schema area privacy)"
    seq, prev_hash = int(row[0]), str(row[1])
    txn.execute(
        "SELECT audit_id, ts, actor, action, school_id, target, details FROM parta_audit"
        " WHERE seq IS NULL ORDER BY ts, audit_id"
    )
    pending = rows_as_dicts(txn)
    for r in pending:
        seq += 1
        digest = entry_hash(
            seq,
            prev_hash,
            r["audit_id"],
            int(r["ts"]),
            r["actor"],
            r["action"],
            r["school_id"],
            r["target"],
            r["details"],
        )
        txn.execute(
            "UPDATE parta_audit SET seq = ?, prev_hash = ?, hash = ?"
            " WHERE audit_id = ? AND seq IS NULL",
            (seq, prev_hash, digest, r["audit_id"]),
        )
        prev_hash = digest
    if pending:
        txn.execute("UPDATE parta_audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev_hash))
    return len(pending)


_COLUMNS = "seq, prev_hash, audit_id, ts, actor, action, school_id, target, details, hash"


@attrs.frozen
class Anchor:
    """Where the kept chain starts: the last entry removed by retention (its number and
    hash), when, and the ``audit.trim`` entry that recorded it."""

    seq: int
    hash: str
    ts: int
    removed: int
    audit_id: str

    def json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def anchor_txn(txn: LoggingTransaction) -> Anchor | None:
    """The latest anchor (``None``: nothing was ever trimmed; the chain starts at #1)."""
    txn.execute(
        "SELECT seq, hash, ts, removed, audit_id FROM parta_audit_anchors ORDER BY seq DESC LIMIT 1"
    )
    row = txn.fetchone()
    if row is None:
        return None
    return Anchor(int(row[0]), str(row[1]), int(row[2]), int(row[3]), str(row[4]))


def chain_txn(
    txn: LoggingTransaction,
) -> tuple[list[Entry], tuple[int, str], int, Anchor | None]:
    """Every chained entry after the anchor in order, the head ``(seq, hash)``, how many
    entries are not chained yet (written a moment ago, or before the chain existed), and
    the anchor."""
    anchor = anchor_txn(txn)
    txn.execute(
        f"SELECT {_COLUMNS} FROM parta_audit WHERE seq > ? ORDER BY seq",
        (anchor.seq if anchor else 0,),
    )
    entries = [Entry.from_row(r) for r in rows_as_dicts(txn)]
    txn.execute("SELECT seq, hash FROM parta_audit_head WHERE id = 1")
    head = txn.fetchone()
    txn.execute("SELECT COUNT(*) FROM parta_audit WHERE seq IS NULL")
    (pending,) = txn.fetchone() or (0,)
    return entries, (int(head[0]), str(head[1])) if head else (0, GENESIS), int(pending), anchor


def entries_after_txn(txn: LoggingTransaction, seq: int, limit: int) -> list[Entry]:
    """Up to ``limit`` chained entries after number ``seq``, in order."""
    txn.execute(
        f"SELECT {_COLUMNS} FROM parta_audit WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    )
    return [Entry.from_row(r) for r in rows_as_dicts(txn)]


def school_entries_txn(txn: LoggingTransaction, school_id: str) -> list[Entry]:
    """A school's chained entries, oldest first."""
    txn.execute(
        f"SELECT {_COLUMNS} FROM parta_audit WHERE school_id = ? AND seq IS NOT NULL ORDER BY seq",
        (school_id,),
    )
    return [Entry.from_row(r) for r in rows_as_dicts(txn)]
