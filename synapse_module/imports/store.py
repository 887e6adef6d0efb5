"""SQL of roster imports: the import rows and the OneRoster people they made."""

import json
from typing import Any

import attrs
from synapse.module_api import LoggingTransaction


@attrs.frozen
class Import:
    import_id: str
    school_id: str
    actor: str
    created_ts: int
    state: str  # planned | running | done | failed
    files: dict[str, str]  # name → base64, as sent
    plan: dict[str, Any]
    stage: str
    done: int
    total: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None


@attrs.frozen
class ImportedPerson:
    source_id: str
    user_id: str
    display_name: str
    state: str  # claimed (named, account not made yet) | created
    sign_in_code: str
    import_id: str


_COLUMNS = (
    "import_id, school_id, actor, created_ts, state, files, plan, stage, done, total, result, error"
)


def insert_import_txn(txn: LoggingTransaction, imp: Import) -> None:
    txn.execute(
        f"INSERT INTO parta_imports ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            imp.import_id,
            imp.school_id,
            imp.actor,
            imp.created_ts,
            imp.state,
            json.dumps(imp.files),
            json.dumps(imp.plan),
            imp.stage,
            imp.done,
            imp.total,
            None,
            None,
        ),
    )


def get_import_txn(txn: LoggingTransaction, import_id: str) -> Import | None:
    txn.execute(f"SELECT {_COLUMNS} FROM parta_imports WHERE import_id = ?", (import_id,))
    r = txn.fetchone()
    if r is None:
        return None
    return Import(
        import_id=r[0],
        school_id=r[1],
        actor=r[2],
        created_ts=int(r[3]),
        state=r[4],
        files=json.loads(r[5]),
        plan=json.loads(r[6]),
        stage=r[7],
        done=int(r[8]),
        total=int(r[9]),
        result=json.loads(r[10]) if r[10] else None,
        error=json.loads(r[11]) if r[11] else None,
    )


def running_txn(txn: LoggingTransaction, school_id: str) -> str | None:
    """The school's import running now, if any (one at a time: a unique index)."""
    txn.execute(
        "SELECT import_id FROM parta_imports WHERE school_id = ? AND state = 'running'",
        (school_id,),
    )
    row = txn.fetchone()
    return str(row[0]) if row else None


def start_txn(txn: LoggingTransaction, import_id: str, actor: str) -> bool:
    """planned or failed → running, once: two clicks start one job. Another import of
    the school running already breaks ``parta_imports_running`` (unique)."""
    txn.execute(
        "UPDATE parta_imports SET state = 'running', actor = ?, error = NULL, stage = 'start',"
        " done = 0 WHERE import_id = ? AND state IN ('planned', 'failed')",
        (actor, import_id),
    )
    return txn.rowcount == 1


def progress_txn(
    txn: LoggingTransaction, import_id: str, stage: str, done: int, total: int
) -> None:
    txn.execute(
        "UPDATE parta_imports SET stage = ?, done = ?, total = ? WHERE import_id = ?",
        (stage, done, total, import_id),
    )


def finish_txn(
    txn: LoggingTransaction,
    import_id: str,
    state: str,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> None:
    txn.execute(
        "UPDATE parta_imports SET state = ?, result = ?, error = ? WHERE import_id = ?",
        (
            state,
            json.dumps(result) if result is not None else None,
            json.dumps(error) if error is not None else None,
            import_id,
        ),
    )


def interrupted_txn(txn: LoggingTransaction, error: dict[str, Any]) -> int:
    """Imports a restart cut short are failed: applying again resumes them."""
    txn.execute(
        "UPDATE parta_imports SET state = 'failed', error = ? WHERE state = 'running'",
        (json.dumps(error),),
    )
    return int(txn.rowcount)


def people_txn(txn: LoggingTransaction, school_id: str) -> dict[str, ImportedPerson]:
    """The school's people imported so far (claimed or made), by OneRoster ID."""
    txn.execute(
        "SELECT source_id, user_id, display_name, state, sign_in_code, import_id"
        " FROM parta_import_people WHERE school_id = ?",
        (school_id,),
    )
    return {r[0]: ImportedPerson(*r) for r in txn.fetchall()}


def user_id_taken_txn(txn: LoggingTransaction, user_id: str) -> bool:
    txn.execute("SELECT 1 FROM parta_import_people WHERE user_id = ?", (user_id,))
    return txn.fetchone() is not None


def claim_txn(txn: LoggingTransaction, school_id: str, person: ImportedPerson) -> None:
    """Name a new person (and their code) before their account is made, so an import
    stopped half-way and applied again neither duplicates nor loses anyone."""
    txn.execute(
        "INSERT INTO parta_import_people"
        " (school_id, source_id, user_id, display_name, state, sign_in_code, import_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            school_id,
            person.source_id,
            person.user_id,
            person.display_name,
            person.state,
            person.sign_in_code,
            person.import_id,
        ),
    )


def mark_created_txn(txn: LoggingTransaction, school_id: str, source_ids: list[str]) -> None:
    for sid in source_ids:
        txn.execute(
            "UPDATE parta_import_people SET state = 'created'"
            " WHERE school_id = ? AND source_id = ?",
            (school_id, sid),
        )


def rename_txn(txn: LoggingTransaction, school_id: str, source_id: str, display_name: str) -> None:
    txn.execute(
        "UPDATE parta_import_people SET display_name = ? WHERE school_id = ? AND source_id = ?",
        (display_name, school_id, source_id),
    )
