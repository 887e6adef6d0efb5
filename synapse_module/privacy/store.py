"""Privacy's tables: consents (the audit log is :mod:`synapse_module.audit`).

Longer than 600 lines because it is the one place that reads and deletes every
feature's rows about one person (the export; the erasure by school and by account,
tests/test_layout.py's PERSON_ACROSS_FEATURES), beside consents, the erasure journal and
retention: splitting it would let a second file name other features' tables.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from synapse.module_api import LoggingTransaction

from .. import audit
from ..imports.rules import ErasedPerson, ImportBlobs, erase_from_import, names_in_plan
from ..store import rows_as_dicts
from .rules import DAY_MS, audit_trim_point, puts_in_school


def consents_txn(txn: LoggingTransaction, school_id: str, user_id: str) -> dict[str, Any]:
    """The person's consents in the school by purpose (absent: never recorded)."""
    return consents_of_txn(txn, school_id, [user_id]).get(user_id, {})


def consents_of_txn(
    txn: LoggingTransaction, school_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Each person's consents in the school by purpose (a person with none: absent)."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        txn.execute(
            "SELECT user_id, purpose, granted, recorded_by, via, document_number, granted_ts,"
            " withdrawn_ts FROM parta_consents"
            f" WHERE school_id = ? AND user_id IN ({_marks(chunk)})",
            (school_id, *chunk),
        )
        for row in rows_as_dicts(txn):
            uid = row.pop("user_id")
            purpose = row.pop("purpose")
            row["granted"] = bool(row["granted"])
            out.setdefault(uid, {})[purpose] = row
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
        # One statement, not a delete and an insert: two records at once where there was
        # none both inserted, and the second met the first's key (500 on PostgreSQL);
        # now the second waits for the first, fails to serialize and is run again by
        # Synapse, reading the first's record.
        txn.execute(
            "INSERT INTO parta_consents (school_id, user_id, purpose, granted, recorded_by,"
            " via, document_number, granted_ts, withdrawn_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (school_id, user_id, purpose) DO UPDATE SET"
            " granted = excluded.granted, recorded_by = excluded.recorded_by,"
            " via = excluded.via, document_number = excluded.document_number,"
            " granted_ts = excluded.granted_ts, withdrawn_ts = excluded.withdrawn_ts",
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
        # Messages quiet hours held: waiting (no ``sent_at``), sent when they ended, or
        # failed; the content as written (it may never have reached the room).
        "held_messages": (
            "SELECT held_id, room_id, event_type, content, held_at, release_at, sent_at,"
            " event_id, failed FROM parta_held_messages WHERE school_id = ? AND sender = ?"
            " ORDER BY held_at, held_id",
            (school_id, user_id),
        ),
        # The account's first sign-in the statistics noticed (one row, or none yet).
        "first_seen": (
            "SELECT first_seen_ts FROM parta_stats_seen WHERE user_id = ?",
            (user_id,),
        ),
        # Requests to erase about the person or made by them (a parent's for a child).
        "erasure_requests": (
            "SELECT request_id, user_id, requested_by, relation, status, created_ts,"
            " due_date, decided_by, decided_ts, reason, finished_ts"
            " FROM parta_erasure_requests WHERE school_id = ?"
            " AND (user_id = ? OR requested_by = ?) ORDER BY created_ts, request_id",
            (school_id, user_id, user_id),
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
    for held in out["held_messages"]:
        held["content"] = json.loads(held["content"])
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


# -- erasure: the journal, and what each step removes ------------------------------------


def subject_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()


def new_erasure_txn(
    txn: LoggingTransaction,
    now: int,
    erasure_id: str,
    school_id: str,
    user_id: str,
    actor: str,
    messages: str,
    asked: str = "school",
) -> None:
    """Journal a new erasure of ``user_id`` (``asked``: the school's part, or the whole
    account); audited (``privacy.erase``)."""
    txn.execute(
        "INSERT INTO parta_erasures (erasure_id, school_id, user_id, subject_sha256,"
        " requested_by, messages, done, started_ts, asked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (erasure_id, school_id, user_id, subject_hash(user_id), actor, messages, "[]", now, asked),
    )
    details = {"messages": messages, "asked": asked}
    audit.append_txn(txn, now, actor, "privacy.erase", school_id, user_id, details)


def latest_erasure_txn(
    txn: LoggingTransaction, school_id: str, user_id: str
) -> dict[str, Any] | None:
    """The person's latest erasure in the school (found by the SHA-256 of their ID)."""
    txn.execute(
        "SELECT erasure_id FROM parta_erasures WHERE school_id = ? AND subject_sha256 = ?"
        " ORDER BY started_ts DESC",
        (school_id, subject_hash(user_id)),
    )
    row = txn.fetchone()
    return erasure_txn(txn, row[0]) if row else None


def was_member_txn(
    txn: LoggingTransaction, school_id: str, user_id: str, room_ids: list[str], since: int
) -> bool:
    """Whether the school ever held ``user_id`` as a member after ``since`` (ms; the end
    of its last erasure of them, else 0), by what outlives the roster's row: the
    roster's history in the audit log (``member.put`` with a role, ``account.created``
    by an import), a request to erase filed for them in the school (only a member, or a
    member's child, can be named in one), or a join of theirs to one of the school's
    rooms (Synapse's ``room_memberships``; the roster lets no one else join them)."""
    txn.execute(
        "SELECT action, details FROM parta_audit WHERE school_id = ? AND target = ?"
        " AND action IN ('member.put', 'account.created') AND ts > ?",
        (school_id, user_id, since),
    )
    if any(puts_in_school(action, details) for action, details in txn.fetchall()):
        return True
    txn.execute(
        "SELECT 1 FROM parta_erasure_requests WHERE school_id = ? AND user_id = ?"
        " AND created_ts > ?",
        (school_id, user_id, since),
    )
    if txn.fetchone() is not None:
        return True
    if not room_ids:
        return False
    txn.execute(
        "SELECT 1 FROM room_memberships m JOIN events e ON e.event_id = m.event_id"
        f" WHERE m.user_id = ? AND m.membership = 'join' AND m.room_id IN ({_marks(room_ids)})"
        " AND e.origin_server_ts > ?",
        (user_id, *room_ids, since),
    )
    return txn.fetchone() is not None


def erasure_txn(txn: LoggingTransaction, erasure_id: str) -> dict[str, Any] | None:
    txn.execute(
        "SELECT erasure_id, school_id, user_id, subject_sha256, requested_by, messages,"
        " done, scope, asked, started_ts, finished_ts FROM parta_erasures WHERE erasure_id = ?",
        (erasure_id,),
    )
    rows = rows_as_dicts(txn)
    if not rows:
        return None
    row = rows[0]
    row["done"] = json.loads(row["done"])
    return row


def unfinished_erasures_txn(txn: LoggingTransaction) -> list[str]:
    txn.execute("SELECT erasure_id FROM parta_erasures WHERE finished_ts IS NULL")
    return [r[0] for r in txn.fetchall()]


def step_done_txn(txn: LoggingTransaction, erasure_id: str, step: str) -> None:
    txn.execute("SELECT done FROM parta_erasures WHERE erasure_id = ?", (erasure_id,))
    row = txn.fetchone()
    done = json.loads(row[0]) if row else []
    if step not in done:
        done.append(step)
    txn.execute(
        "UPDATE parta_erasures SET done = ? WHERE erasure_id = ?", (json.dumps(done), erasure_id)
    )


def decide_scope_txn(txn: LoggingTransaction, erasure_id: str, scope: str) -> str:
    """Journal the erasure's scope once (a run after a crash keeps the first decision)."""
    txn.execute(
        "UPDATE parta_erasures SET scope = ? WHERE erasure_id = ? AND scope IS NULL",
        (scope, erasure_id),
    )
    txn.execute("SELECT scope FROM parta_erasures WHERE erasure_id = ?", (erasure_id,))
    row = txn.fetchone()
    return str(row[0]) if row and row[0] else scope


def finish_erasure_txn(
    txn: LoggingTransaction, now: int, erasure_id: str, counts: dict[str, int]
) -> None:
    """The tombstone (``privacy.erased``), and the journal forgets whom it erased (only
    the SHA-256 of the ID stays, so asking again answers "done")."""
    txn.execute(
        "SELECT school_id, user_id, requested_by, messages, done, scope FROM parta_erasures"
        " WHERE erasure_id = ? AND finished_ts IS NULL",
        (erasure_id,),
    )
    row = txn.fetchone()
    if row is None:
        return  # finished already: the tombstone is written once
    school_id, user_id, actor, messages, done, scope = row
    txn.execute(
        "UPDATE parta_erasures SET user_id = NULL, finished_ts = ? WHERE erasure_id = ?",
        (now, erasure_id),
    )
    details = {
        "erasure_id": erasure_id,
        "messages": messages,
        "scope": scope,
        "steps": json.loads(done),
    }
    audit.append_txn(txn, now, actor, "privacy.erased", school_id, user_id, details)
    finish_erasure_requests_txn(txn, now, erasure_id, scope)


# -- requests to erase, from the person or their guardian ------------------------------

REQUEST_COLUMNS = (
    "r.request_id, r.school_id, r.user_id, r.requested_by, r.relation, r.language,"
    # Done when the linked erasure is, even if its finish did not see the link yet.
    " CASE WHEN r.status = 'in_progress' AND e.finished_ts IS NOT NULL THEN 'done'"
    " ELSE r.status END AS status,"
    " r.created_ts, r.due_date, r.erasure_id, r.decided_by, r.decided_ts, r.reason,"
    " COALESCE(r.finished_ts, e.finished_ts) AS finished_ts, r.told_ts"
    " FROM parta_erasure_requests r LEFT JOIN parta_erasures e ON e.erasure_id = r.erasure_id"
)


def finish_erasure_requests_txn(
    txn: LoggingTransaction, now: int, erasure_id: str, scope: str | None
) -> None:
    """The requests the erasure carried out are done and forget whom they were about
    (the SHA-256 stays). Who asked for themself and lost the whole account is not told
    (no account to tell): their ID goes too."""
    txn.execute(
        "UPDATE parta_erasure_requests SET status = 'done', user_id = NULL, finished_ts = ?"
        " WHERE erasure_id = ? AND status = 'in_progress'",
        (now, erasure_id),
    )
    if scope == "account":
        txn.execute(
            "UPDATE parta_erasure_requests SET requested_by = NULL, told_ts = ?"
            " WHERE erasure_id = ? AND relation = 'self' AND told_ts IS NULL",
            (now, erasure_id),
        )


def _request_rows(txn: LoggingTransaction, where: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    txn.execute(f"SELECT {REQUEST_COLUMNS} WHERE {where}", tuple(args))
    return rows_as_dicts(txn)


def erasure_request_txn(txn: LoggingTransaction, request_id: str) -> dict[str, Any] | None:
    rows = _request_rows(txn, "r.request_id = ?", (request_id,))
    return rows[0] if rows else None


def erasure_requests_txn(
    txn: LoggingTransaction, school_id: str, requested_by: str | None
) -> list[dict[str, Any]]:
    """The school's requests; only those ``requested_by`` asked, when given."""
    if requested_by is None:
        return _request_rows(txn, "r.school_id = ?", (school_id,))
    return _request_rows(txn, "r.school_id = ? AND r.requested_by = ?", (school_id, requested_by))


def new_erasure_request_txn(
    txn: LoggingTransaction,
    now: int,
    request_id: str,
    school_id: str,
    user_id: str,
    actor: str,
    relation: str,
    language: str,
    due_date: str,
) -> tuple[bool, dict[str, Any]]:
    """File a request to erase ``user_id`` in the school, or find the one still open
    (open or in progress) for them: ``(made now, the request)``. Audited when made."""
    subject = subject_hash(user_id)
    txn.execute(
        "INSERT INTO parta_erasure_requests (request_id, school_id, user_id, subject_sha256,"
        " requested_by, relation, language, status, created_ts, due_date)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)"
        " ON CONFLICT (school_id, subject_sha256)"
        " WHERE status IN ('open', 'in_progress') DO NOTHING",
        (request_id, school_id, user_id, subject, actor, relation, language, now, due_date),
    )
    made = txn.rowcount == 1
    if made:
        details = {"request_id": request_id, "relation": relation, "due_date": due_date}
        audit.append_txn(txn, now, actor, "privacy.erasure_request", school_id, user_id, details)
    rows = _request_rows(
        txn,
        "r.school_id = ? AND r.subject_sha256 = ? AND r.status IN ('open', 'in_progress')",
        (school_id, subject),
    )
    return made, rows[0]


def claim_erasure_request_txn(
    txn: LoggingTransaction, now: int, request_id: str, actor: str
) -> bool:
    """Take an open request for carrying out, before its erasure starts: from here a
    decline is refused, so the school's two answers cannot both land. Whether it was
    open (a claimed request not yet linked to its erasure is carried out again)."""
    txn.execute(
        "UPDATE parta_erasure_requests SET status = 'in_progress', decided_by = ?,"
        " decided_ts = ? WHERE request_id = ? AND status = 'open'",
        (actor, now, request_id),
    )
    return txn.rowcount == 1


def unclaim_erasure_request_txn(txn: LoggingTransaction, request_id: str) -> None:
    """The erasure could not start: the request waits again."""
    txn.execute(
        "UPDATE parta_erasure_requests SET status = 'open', decided_by = NULL,"
        " decided_ts = NULL WHERE request_id = ? AND status = 'in_progress'"
        " AND erasure_id IS NULL",
        (request_id,),
    )


def carry_out_erasure_request_txn(
    txn: LoggingTransaction, now: int, request_id: str, actor: str, erasure_id: str
) -> None:
    """Link a claimed request to the erasure that carries it out (done at once when that
    erasure had finished already). Audited."""
    txn.execute(
        "SELECT school_id, user_id FROM parta_erasure_requests"
        " WHERE request_id = ? AND status = 'in_progress' AND erasure_id IS NULL",
        (request_id,),
    )
    row = txn.fetchone()
    if row is None:
        return  # linked already
    txn.execute("SELECT finished_ts FROM parta_erasures WHERE erasure_id = ?", (erasure_id,))
    journal = txn.fetchone()
    finished = journal[0] if journal else None
    txn.execute(
        "UPDATE parta_erasure_requests SET erasure_id = ?, decided_by = ?, decided_ts = ?"
        " WHERE request_id = ?",
        (erasure_id, actor, now, request_id),
    )
    details = {"request_id": request_id, "erasure_id": erasure_id}
    audit.append_txn(
        txn, now, actor, "privacy.erasure_request_carried_out", row[0], row[1], details
    )
    if finished is not None:
        finish_erasure_requests_txn(txn, int(finished), erasure_id, None)


def decline_erasure_request_txn(
    txn: LoggingTransaction, now: int, request_id: str, actor: str, reason: str
) -> bool:
    """Decline an open request with the reason its requester reads. Audited."""
    txn.execute(
        "SELECT school_id, user_id FROM parta_erasure_requests"
        " WHERE request_id = ? AND status = 'open'",
        (request_id,),
    )
    row = txn.fetchone()
    if row is None:
        return False
    txn.execute(
        "UPDATE parta_erasure_requests SET status = 'declined', decided_by = ?, decided_ts = ?,"
        " reason = ?, finished_ts = ? WHERE request_id = ?",
        (actor, now, reason, now, request_id),
    )
    details = {"request_id": request_id, "reason": reason}
    audit.append_txn(txn, now, actor, "privacy.erasure_request_declined", row[0], row[1], details)
    return True


def erasure_requests_to_tell_txn(txn: LoggingTransaction, limit: int) -> list[dict[str, Any]]:
    """Answered requests (done or declined) whose requester has not been told yet."""
    return _request_rows(
        txn,
        "r.told_ts IS NULL AND r.requested_by IS NOT NULL AND r.requested_by <> ?"
        " AND (r.status IN ('done', 'declined')"
        " OR (r.status = 'in_progress' AND e.finished_ts IS NOT NULL))"
        f" ORDER BY r.created_ts LIMIT {int(limit)}",
        ("erased",),
    )


def erasure_request_told_txn(txn: LoggingTransaction, now: int, request_id: str) -> None:
    """The requester was told. Who asked for themself is forgotten then (their data is
    gone from the school; only the request's record stays)."""
    txn.execute(
        "UPDATE parta_erasure_requests SET told_ts = ? WHERE request_id = ? AND told_ts IS NULL",
        (now, request_id),
    )
    txn.execute(
        "UPDATE parta_erasure_requests SET requested_by = NULL"
        " WHERE request_id = ? AND relation = 'self' AND status = 'done'",
        (request_id,),
    )


def unredacted_txn(
    txn: LoggingTransaction, user_id: str, room_id: str, after: int | None, limit: int
) -> list[tuple[str, int]]:
    """Messages the person sent in a room that no redaction names yet (a redaction sent
    before a crash is not sent again), oldest first: ``(event_id, stream_ordering)``.
    ``after``: the last stream ordering of the previous batch, so each batch starts
    where the last one ended instead of walking past the redacted ones again."""
    since = "" if after is None else " AND e.stream_ordering > ?"
    txn.execute(
        "SELECT e.event_id, e.stream_ordering FROM events e WHERE e.room_id = ?"
        " AND e.sender = ? AND e.state_key IS NULL AND e.type != 'm.room.redaction'"
        f" AND e.outlier = ?{since}"
        " AND NOT EXISTS (SELECT 1 FROM redactions r WHERE r.redacts = e.event_id)"
        " ORDER BY e.stream_ordering LIMIT ?",
        (room_id, user_id, False, *(() if after is None else (after,)), limit),
    )
    return [(str(r[0]), int(r[1])) for r in txn.fetchall()]


# The same rows limited to one school: ``{school}`` is its ID, ``{rooms}`` its rooms.
_IN_SCHOOL = "school_id = {school}"
_IN_ROOMS = "room_id IN ({rooms})"
_SCHOOL_CLASSES = "class_id IN (SELECT class_id FROM parta_classes WHERE school_id = {school})"
_SCHOOL_POLLS = "poll_id IN (SELECT poll_id FROM content_polls WHERE room_id IN ({rooms}))"
_SCHOOL_ARTICLES = (
    "article_id IN (SELECT article_id FROM content_articles WHERE room_id IN ({rooms}))"
)
_SCHOOL_REQUESTS = (
    "request_id IN (SELECT event_id FROM parta_confirm_requests WHERE school_id = {school})"
)
SCHOOL_ERASE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("parta_school_roles", "user_id", _IN_SCHOOL),
    ("parta_class_members", "user_id", _SCHOOL_CLASSES),
    ("parta_guardians", "parent_user_id", _IN_SCHOOL),
    ("parta_guardians", "child_user_id", _IN_SCHOOL),
    ("parta_consents", "user_id", _IN_SCHOOL),
    ("parta_confirmations", "user_id", _SCHOOL_REQUESTS),
    ("content_article_views", "user_id", _SCHOOL_ARTICLES),
    ("content_poll_responses", "user_id", _SCHOOL_POLLS),
    ("content_poll_ballots", "user_id", _SCHOOL_POLLS),
    (
        "parta_handins",
        "student",
        "homework_id IN (SELECT event_id FROM parta_homework WHERE school_id = {school})",
    ),
    ("parta_room_sessions", "user_id", _IN_ROOMS),
    (
        "parta_invite_uses",
        "user_id",
        "code IN (SELECT code FROM parta_invites WHERE school_id = {school})",
    ),
    ("parta_invites", "child_user_id", _IN_SCHOOL),
    ("parta_parent_links", "child_user_id", _IN_SCHOOL),
    ("parta_parent_links", "parent_user_id", _IN_SCHOOL),
    ("parta_scheduled_posts", "author", _IN_ROOMS),
    ("content_documents", "sender", _IN_ROOMS),
    ("parta_held_messages", "sender", _IN_SCHOOL),
    ("parta_confirmations", "child_id", _SCHOOL_REQUESTS),
    ("parta_confirm_reminders", "user_id", _SCHOOL_REQUESTS),
    ("parta_confirm_reminders", "child_id", _SCHOOL_REQUESTS),
    ("parta_room_growth", "user_id", _IN_ROOMS),
    ("parta_import_people", "user_id", _IN_SCHOOL),
)
SCHOOL_MARK_ROWS: tuple[tuple[str, str, str], ...] = (
    ("parta_consents", "recorded_by", _IN_SCHOOL),
    ("parta_confirm_requests", "sender", _IN_SCHOOL),
    ("content_room_settings", "changed_by", _IN_ROOMS),
    ("content_articles", "author", _IN_ROOMS),
    ("content_article_revisions", "editor", _SCHOOL_ARTICLES),
    ("content_polls", "sender", _IN_ROOMS),
    ("parta_homework", "sender", _IN_SCHOOL),
    ("parta_lessons", "created_by", _IN_ROOMS),
    ("parta_broadcasts", "created_by", _IN_ROOMS),
    (
        "parta_viewer_links",
        "created_by",
        "broadcast_id IN (SELECT broadcast_id FROM parta_broadcasts WHERE room_id IN ({rooms}))",
    ),
    ("parta_invites", "created_by", _IN_SCHOOL),
    (
        "parta_sign_in_codes",
        "created_by",
        "user_id IN (SELECT user_id FROM parta_school_roles WHERE school_id = {school})",
    ),
    ("parta_parent_links", "decided_by", _IN_SCHOOL),
    ("parta_scheduled_posts", "created_by", _IN_ROOMS),
    ("parta_erasures", "requested_by", _IN_SCHOOL),
    ("parta_erasure_requests", "user_id", _IN_SCHOOL),
    ("parta_erasure_requests", "decided_by", _IN_SCHOOL),
    ("parta_imports", "actor", _IN_SCHOOL),
    ("parta_retention", "set_by", _IN_SCHOOL),
)


def school_scoped(where: str, school_id: str, room_ids: Sequence[str]) -> tuple[str, list[str]]:
    """``where`` with its ``{school}`` and ``{rooms}`` made placeholders, and their
    arguments in order (no room: a list that matches nothing)."""
    rooms = list(room_ids) or [""]
    args: list[str] = []

    def fill(match: "re.Match[str]") -> str:
        if match.group(1) == "school":
            args.append(school_id)
            return "?"
        args.extend(rooms)
        return ", ".join("?" for _ in rooms)

    return re.sub(r"\{(school|rooms)\}", fill, where), args


def unredacted_memberships_txn(
    txn: LoggingTransaction, user_id: str, room_id: str, after: int | None, limit: int
) -> list[tuple[str, int]]:
    """The person's membership events in a room (they carry their display name and
    avatar) that no redaction names yet: redacted, only ``membership`` stays.
    ``(event_id, stream_ordering)``, oldest first, from after ``after`` (as
    :func:`unredacted_txn`)."""
    since = "" if after is None else " AND e.stream_ordering > ?"
    txn.execute(
        "SELECT e.event_id, e.stream_ordering FROM events e WHERE e.room_id = ?"
        f" AND e.type = 'm.room.member' AND e.state_key = ? AND e.outlier = ?{since}"
        " AND NOT EXISTS (SELECT 1 FROM redactions r WHERE r.redacts = e.event_id)"
        " ORDER BY e.stream_ordering LIMIT ?",
        (room_id, user_id, False, *(() if after is None else (after,)), limit),
    )
    return [(str(r[0]), int(r[1])) for r in txn.fetchall()]


def erase_school_rows_txn(
    txn: LoggingTransaction, user_id: str, school_id: str, room_ids: list[str], marker: str
) -> int:
    """The school's rows about the person (:data:`SCHOOL_ERASE_ROWS`) deleted, its rows
    others need marked (:data:`SCHOOL_MARK_ROWS`); other schools' rows and the account's
    stay."""
    removed = erase_from_imports_txn(txn, user_id, school_id, marker)
    docs, doc_args = school_scoped(_IN_ROOMS, school_id, room_ids)
    txn.execute(
        "DELETE FROM content_document_tags WHERE doc_id IN"
        f" (SELECT doc_id FROM content_documents WHERE sender = ? AND {docs})",
        (user_id, *doc_args),
    )
    for table, column, where in SCHOOL_ERASE_ROWS:
        scoped, args = school_scoped(where, school_id, room_ids)
        txn.execute(f"DELETE FROM {table} WHERE {column} = ? AND {scoped}", (user_id, *args))
        removed += max(txn.rowcount, 0)
    for table, column, where in SCHOOL_MARK_ROWS:
        scoped, args = school_scoped(where, school_id, room_ids)
        txn.execute(
            f"UPDATE {table} SET {column} = ? WHERE {column} = ? AND {scoped}",
            (marker, user_id, *args),
        )
    txn.execute(
        "UPDATE parta_classes SET homeroom_user_id = NULL"
        " WHERE homeroom_user_id = ? AND school_id = ?",
        (user_id, school_id),
    )
    # Requests they made in the school: marked, but for the one this erasure carries out
    # for themself — they are told when it is done, and forgotten then (``…/told``).
    txn.execute(
        "UPDATE parta_erasure_requests SET requested_by = ? WHERE requested_by = ?"
        " AND school_id = ? AND NOT (relation = 'self' AND status = 'in_progress')",
        (marker, user_id, school_id),
    )
    rooms, room_args = school_scoped(_IN_ROOMS, school_id, room_ids)
    txn.execute(
        f"SELECT broadcast_id, speakers FROM parta_broadcasts WHERE speakers LIKE ? AND {rooms}",
        (f"%{user_id}%", *room_args),
    )
    for broadcast_id, speakers in txn.fetchall():
        kept = [s for s in json.loads(speakers) if s != user_id]
        txn.execute(
            "UPDATE parta_broadcasts SET speakers = ? WHERE broadcast_id = ?",
            (json.dumps(kept), broadcast_id),
        )
    return removed


def erase_from_imports_txn(
    txn: LoggingTransaction, user_id: str, school_id: str | None, marker: str
) -> int:
    """The person out of the roster imports' stored files, plans and errors (the school's
    with ``school_id``, else every school's): what the imports knew them by is read from
    the import's person map (before its rows go) and from the plans' entries naming their
    Matrix ID. How each import is rewritten: :func:`synapse_module.imports.rules.erase_from_import`.
    The number of imports changed."""
    args = (school_id,) if school_id else ()
    txn.execute(
        "SELECT school_id, source_id, display_name FROM parta_import_people"
        f" WHERE user_id = ?{' AND school_id = ?' if school_id else ''}",
        (user_id, *args),
    )
    known: dict[str, tuple[set[str], set[str]]] = {}
    for school, source_id, name in txn.fetchall():
        ids, names = known.setdefault(str(school), (set(), set()))
        ids.add(str(source_id))
        names.add(str(name))
    # Only imports that can name them: of a school whose person map has them, or with
    # their Matrix ID in the plan (a leaver, a rename); a school's files are read whole.
    schools = sorted(known)
    txn.execute(
        "SELECT import_id, school_id, files, plan, error FROM parta_imports"
        f" WHERE (school_id IN ({_marks(schools or [''])}) OR plan LIKE ?)"
        f"{' AND school_id = ?' if school_id else ''}",
        (*(schools or [""]), f"%{user_id}%", *args),
    )
    imports = [
        (
            str(import_id),
            str(school),
            ImportBlobs(json.loads(files), json.loads(plan), json.loads(error) if error else None),
        )
        for import_id, school, files, plan, error in txn.fetchall()
    ]
    people: dict[str, ErasedPerson] = {}
    for school in {school for _, school, _ in imports}:
        ids, names = known.get(school, (set(), set()))
        first = ErasedPerson(user_id, frozenset(ids), frozenset(names))
        for _, of_school, blobs in imports:
            if of_school == school:
                names |= names_in_plan(blobs.plan, first)
        people[school] = ErasedPerson(user_id, frozenset(ids), frozenset(names))
    changed = 0
    for import_id, school, blobs in imports:
        erased = erase_from_import(blobs, people[school], marker)
        if erased is None:
            continue
        txn.execute(
            "UPDATE parta_imports SET files = ?, plan = ?, error = ? WHERE import_id = ?",
            (
                json.dumps(erased.files),
                json.dumps(erased.plan),
                json.dumps(erased.error) if erased.error is not None else None,
                import_id,
            ),
        )
        changed += 1
    return changed


def delete_uploads_txn(txn: LoggingTransaction, media_ids: list[str]) -> None:
    """Synapse's rows of the person's uploads (after their files are gone)."""
    for media_id in media_ids:
        for table in ("local_media_repository_thumbnails", "local_media_repository"):
            txn.execute(f"DELETE FROM {table} WHERE media_id = ?", (media_id,))
        txn.execute("DELETE FROM content_media WHERE media_id = ?", (media_id,))


def erase_rows_txn(
    txn: LoggingTransaction,
    user_id: str,
    erase: Sequence[tuple[str, str]],
    mark: Sequence[tuple[str, str]],
    marker: str,
) -> int:
    """Delete the person's own rows, put ``marker`` where others' rows named them, take
    them out of every school's imports."""
    removed = erase_from_imports_txn(txn, user_id, None, marker)
    # A document's tags go with the document.
    txn.execute(
        "DELETE FROM content_document_tags WHERE doc_id IN"
        " (SELECT doc_id FROM content_documents WHERE sender = ?)",
        (user_id,),
    )
    for table, column in erase:
        txn.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))
        removed += max(txn.rowcount, 0)
    for table, column in mark:
        txn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (marker, user_id))
    txn.execute(
        "UPDATE parta_classes SET homeroom_user_id = NULL WHERE homeroom_user_id = ?", (user_id,)
    )
    # Every request they made (the one carried out for themself: the account goes, nobody
    # is told, and the erasure's finish forgets them there).
    txn.execute(
        "UPDATE parta_erasure_requests SET requested_by = ? WHERE requested_by = ?",
        (marker, user_id),
    )
    txn.execute(
        "SELECT broadcast_id, speakers FROM parta_broadcasts WHERE speakers LIKE ?",
        (f"%{user_id}%",),
    )
    for broadcast_id, speakers in txn.fetchall():
        kept = [s for s in json.loads(speakers) if s != user_id]
        txn.execute(
            "UPDATE parta_broadcasts SET speakers = ? WHERE broadcast_id = ?",
            (json.dumps(kept), broadcast_id),
        )
    return removed


# -- retention -------------------------------------------------------------------------


def retention_txn(txn: LoggingTransaction, school_id: str) -> dict[str, int]:
    txn.execute("SELECT kind, days FROM parta_retention WHERE school_id = ?", (school_id,))
    return {str(k): int(d) for k, d in txn.fetchall()}


def rules_of_kind_txn(txn: LoggingTransaction, kind: str) -> dict[str, int]:
    """Every school's rule for ``kind``: school → days (schools without one absent)."""
    txn.execute("SELECT school_id, days FROM parta_retention WHERE kind = ?", (kind,))
    return {str(s): int(d) for s, d in txn.fetchall()}


def put_retention_txn(
    txn: LoggingTransaction,
    now: int,
    actor: str,
    school_id: str,
    rules: dict[str, int | None],
) -> dict[str, int]:
    """Set (a number) or drop (null: kept as long as the operator's limit) each rule."""
    for kind, days in rules.items():
        if days is None:
            txn.execute(
                "DELETE FROM parta_retention WHERE school_id = ? AND kind = ?", (school_id, kind)
            )
        else:
            # One statement (as consents): two rules set at once where none was both
            # inserted, and the second met the first's key.
            txn.execute(
                "INSERT INTO parta_retention (school_id, kind, days, set_by, set_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (school_id, kind) DO UPDATE SET"
                " days = excluded.days, set_by = excluded.set_by, set_ts = excluded.set_ts",
                (school_id, kind, days, actor, now),
            )
    audit.append_txn(txn, now, actor, "retention.put", school_id, school_id, {"rules": rules})
    return retention_txn(txn, school_id)


def purge_attendance_txn(txn: LoggingTransaction, room_ids: list[str], cutoff: int) -> int:
    """Lesson sessions in these rooms that ended (or, still open, began) before ``cutoff``."""
    removed = 0
    for room_id in room_ids:
        txn.execute(
            "DELETE FROM parta_room_sessions WHERE room_id = ?"
            " AND COALESCE(left_at, joined_at) < ?",
            (room_id, cutoff),
        )
        removed += max(txn.rowcount, 0)
    return removed


def is_redacted_txn(txn: LoggingTransaction, event_id: str) -> bool:
    """Whether a redaction names the event already (one sent before a crash)."""
    txn.execute("SELECT 1 FROM redactions WHERE redacts = ?", (event_id,))
    return txn.fetchone() is not None


def event_sender_txn(txn: LoggingTransaction, event_id: str) -> str | None:
    """Who sent the event (Synapse's ``events``), ``None`` when the server has it not."""
    txn.execute("SELECT sender FROM events WHERE event_id = ?", (event_id,))
    row = txn.fetchone()
    return str(row[0]) if row is not None else None


def forget_recording_rows_txn(txn: LoggingTransaction, event_id: str, media_id: str) -> None:
    """The module's own rows about a removed recording: the documents list's (its
    redaction removes them too, a moment later) and the upload's."""
    txn.execute("DELETE FROM content_document_tags WHERE doc_id = ?", (event_id,))
    txn.execute("DELETE FROM content_documents WHERE doc_id = ?", (event_id,))
    txn.execute("DELETE FROM content_media WHERE media_id = ?", (media_id,))


TRIM_BATCH = 1000


def trim_audit_txn(
    txn: LoggingTransaction,
    now: int,
    ts: int,
    actor: str,
    rules: dict[str, int],
    limit_days: int,
) -> int:
    """Remove the front of the audit chain that every entry's rule lets go (at ``now``;
    ``rules``: school → days, others keep ``limit_days``), record the anchor and the
    ``audit.trim`` entry (written at ``ts``, chained here); how many entries went.

    Run READ COMMITTED: the seal first takes the head's row lock, so no entry is chained
    while the front goes, and the trim's own entry is chained before this commits — the
    anchor never exists without its record.
    """
    audit.seal_txn(txn)
    anchor = audit.anchor_txn(txn)
    start = (anchor.seq, anchor.hash) if anchor else (0, audit.GENESIS)
    cutoffs = {school: now - days * DAY_MS for school, days in rules.items()}
    default_cutoff = now - limit_days * DAY_MS
    after, last = start, None
    while True:
        batch = audit.entries_after_txn(txn, after[0], TRIM_BATCH)
        point = audit_trim_point(batch, after, cutoffs, default_cutoff)
        if point is None:
            break
        last, after = point, (point.seq, point.hash)
        if point is not batch[-1]:
            break
    if last is None:
        return 0
    txn.execute(
        "SELECT DISTINCT school_id FROM parta_audit WHERE seq > ? AND seq <= ?",
        (start[0], last.seq),
    )
    schools = sorted(str(r[0]) for r in txn.fetchall() if r[0] is not None)
    txn.execute("DELETE FROM parta_audit WHERE seq > ? AND seq <= ?", (start[0], last.seq))
    removed = last.seq - start[0]
    details = {
        "through_seq": last.seq,
        "through_hash": last.hash,
        "removed": removed,
        # The rules the removed entries' schools had (others: the operator's limit).
        "rules": {school: rules[school] for school in schools if school in rules},
        "limit_days": limit_days,
    }
    audit_id = audit.append_txn(txn, ts, actor, audit.TRIM_ACTION, None, None, details)
    audit.seal_txn(txn)
    txn.execute(
        "INSERT INTO parta_audit_anchors (seq, hash, ts, removed, audit_id) VALUES (?, ?, ?, ?, ?)",
        (last.seq, last.hash, ts, removed, audit_id),
    )
    return removed
